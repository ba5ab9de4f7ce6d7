import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { connectMarket, loadConfig } from "./market";
import { restoreSession } from "./account";
import { getJson, errorText } from "./lib/api";
import { specOf, type ExchangeInfo } from "./lib/types";
import { onceMarketShown } from "./route";
import { useMarket } from "./store";
import "./styles.css";

async function startMarket(): Promise<void> {
  const config = useMarket.getState().config;
  if (!config) return;
  try {
    const info = await getJson<ExchangeInfo>(`${config.marketRest}/api/v3/exchangeInfo`);
    const specs = info.symbols.map(specOf);
    const wanted = new URLSearchParams(location.search).get("symbol") ?? useMarket.getState().symbol;
    const symbol = specs.some((s) => s.symbol === wanted) ? wanted : (specs[0]?.symbol ?? wanted);
    useMarket.setState({ specs, symbol });
    connectMarket();
    restoreSession();
  } catch (err) {
    useMarket.setState({ error: `Cannot load the market: ${errorText(err)}`, marketConn: "offline" });
    setTimeout(() => void startMarket(), 3000);
  }
}

async function start(): Promise<void> {
  try {
    useMarket.setState({ config: await loadConfig(), error: null });
  } catch (err) {
    useMarket.setState({ error: `Cannot load the market: ${errorText(err)}`, marketConn: "offline" });
    setTimeout(() => void start(), 3000);
    return;
  }
  // the Ops page needs no market data: the feed is connected when the market view is first shown
  onceMarketShown(() => void startMarket());
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
