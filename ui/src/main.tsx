import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { connectMarket, loadConfig } from "./market";
import { restoreSession } from "./account";
import { getJson, errorText } from "./lib/api";
import { specOf, type ExchangeInfo } from "./lib/types";
import { useMarket } from "./store";
import "./styles.css";

async function start(): Promise<void> {
  try {
    const config = await loadConfig();
    const info = await getJson<ExchangeInfo>(`${config.marketRest}/api/v3/exchangeInfo`);
    const specs = info.symbols.map(specOf);
    const wanted = new URLSearchParams(location.search).get("symbol") ?? useMarket.getState().symbol;
    const symbol = specs.some((s) => s.symbol === wanted) ? wanted : (specs[0]?.symbol ?? wanted);
    useMarket.setState({ specs, symbol });
    connectMarket();
    restoreSession();
  } catch (err) {
    useMarket.setState({ error: `Cannot load the market: ${errorText(err)}`, marketConn: "offline" });
    setTimeout(() => void start(), 3000);
  }
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
void start();
