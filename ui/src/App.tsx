import { lazy, Suspense, useMemo } from "react";
import { Header } from "./components/Header";
import { OrderBook } from "./components/OrderBook";
import { Trades } from "./components/Trades";
import { CandleChart } from "./components/CandleChart";
import { OrderEntry } from "./components/OrderEntry";
import { SignIn } from "./components/SignIn";
import { AccountTabs } from "./components/AccountTabs";
import { ModelPanel } from "./components/ModelPanel";
import { useView } from "./route";
import { currentSpec, useAccount, useMarket } from "./store";
import { formatFixed } from "./lib/decimal";

// ECharts is most of the bundle's weight: the depth chart loads after the first paint, in its own chunk
const DepthChart = lazy(() => import("./components/DepthChart").then((m) => ({ default: m.DepthChart })));
const OpsPage = lazy(() => import("./components/OpsPage").then((m) => ({ default: m.OpsPage })));

export function App() {
  const view = useView();
  const error = useMarket((s) => s.error);
  const open = useAccount((s) => s.openOrders);
  const specs = useMarket((s) => s.specs);
  const symbol = useMarket((s) => s.symbol);
  const myPrices = useMemo(() => {
    const places = currentSpec()?.priceDecimals ?? 2;
    return new Set(open.filter((o) => o.symbol === symbol).map((o) => formatFixed(o.price, places)));
  }, [open, specs, symbol]);
  return (
    <div className="app">
      <Header view={view} />
      {error && (
        <div className="banner error" role="alert">
          {error}
        </div>
      )}
      {view === "ops" ? (
        <Suspense fallback={<main className="ops" data-testid="ops" data-state="loading" />}>
          <OpsPage />
        </Suspense>
      ) : (
      <main className="grid">
        <div className="area-chart">
          <CandleChart />
          <Suspense fallback={<section className="panel depth"><h2>Depth</h2><div className="depth-box" /></section>}>
            <DepthChart />
          </Suspense>
        </div>
        <div className="area-book">
          <OrderBook myPrices={myPrices} />
        </div>
        <div className="area-trades">
          <Trades />
        </div>
        <div className="area-entry">
          <SignIn />
          <OrderEntry />
          <ModelPanel />
        </div>
        <div className="area-account">
          <AccountTabs />
        </div>
      </main>
      )}
    </div>
  );
}
