import { useLayoutEffect } from "react";
import { currentSpec, useMarket } from "../store";
import { fmtPrice, fmtQty, fmtTime } from "../format";
import { markCommitted } from "../lib/perf";

export function Trades() {
  const trades = useMarket((s) => s.trades);
  const spec = currentSpec();
  useLayoutEffect(() => markCommitted("trade"), [trades]);
  return (
    <section className="panel trades" data-testid="trades">
      <h2>Recent trades</h2>
      <div className="book-head">
        <span>Price ({spec?.quote})</span>
        <span>Size ({spec?.base})</span>
        <span>Time</span>
      </div>
      <div className="trade-list">
        {trades.slice(0, 40).map((t) => (
          <div className={`trade-row ${t.isBuyerMaker ? "down" : "up"}`} key={t.id} data-testid="trade-row">
            <span>{fmtPrice(spec, t.price)}</span>
            <span>{fmtQty(spec, t.qty)}</span>
            <span className="dim">{fmtTime(t.time)}</span>
          </div>
        ))}
      </div>
    </section>
  );
}
