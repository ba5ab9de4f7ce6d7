import { useLayoutEffect, useMemo, useState } from "react";
import { useMarket, currentSpec } from "../store";
import { fmtPrice, fmtQty } from "../format";
import { markCommitted } from "../lib/perf";
import type { Level } from "../lib/book";
import { compare, formatFixed, multiply } from "../lib/decimal";
import { aggregate } from "../lib/aggregate";

const ROWS = 10;

function Rows({ levels, side, max, mine }: { levels: Level[]; side: "bid" | "ask"; max: number; mine: Set<string> }) {
  const spec = currentSpec();
  // cumulative size from the spread outwards
  let total = 0;
  const rows = levels.map(([p, q]) => {
    total += Number(q);
    return { p, q, total };
  });
  if (side === "ask") rows.reverse(); // best ask at the bottom, next to the spread
  return (
    <>
      {rows.map(({ p, q, total }) => (
        <div
          className={`book-row ${side}`}
          key={p}
          data-price={p}
          data-testid={`${side}-row`}
          title="Click: use this price"
          onClick={() => useMarket.setState({ picked: { price: formatFixed(p, spec?.priceDecimals ?? 2), at: Date.now() } })}
        >
          <div className="bar" style={{ width: `${Math.min(100, (total / max) * 100)}%` }} />
          <span className="price">
            {mine.has(formatFixed(p, spec?.priceDecimals ?? 2)) && <span className="mine" title="your order">●</span>}
            {fmtPrice(spec, p)}
          </span>
          <span>{fmtQty(spec, q)}</span>
          <span className="dim">{fmtQty(spec, total)}</span>
        </div>
      ))}
    </>
  );
}

export function OrderBook({ myPrices }: { myPrices: Set<string> }) {
  const bids = useMarket((s) => s.bids);
  const asks = useMarket((s) => s.asks);
  const state = useMarket((s) => s.bookState);
  const resyncs = useMarket((s) => s.resyncs);
  const updateId = useMarket((s) => s.bookUpdateId);
  const symbol = useMarket((s) => s.symbol);
  const spec = currentSpec();
  const [grouping, setGrouping] = useState<{ symbol: string; step: string } | null>(null);
  const steps = useMemo(() => {
    const tick = spec?.tickSize ?? "0.01";
    return [tick, multiply(tick, "10"), multiply(tick, "100"), multiply(tick, "1000")];
  }, [spec]);
  const step = grouping && grouping.symbol === symbol ? grouping.step : steps[0] ?? "0.01";
  useLayoutEffect(() => markCommitted("book"), [bids, asks]);
  const pd = spec?.priceDecimals ?? 2;
  const qd = spec?.qtyDecimals ?? 5;
  const b = step === steps[0] ? bids.slice(0, ROWS) : aggregate(bids, step, "bid", pd, qd, ROWS);
  const a = step === steps[0] ? asks.slice(0, ROWS) : aggregate(asks, step, "ask", pd, qd, ROWS);
  const sum = (ls: Level[]) => ls.reduce((t, [, q]) => t + Number(q), 0);
  const max = Math.max(sum(b), sum(a), 1e-12);
  const bestBid = b[0]?.[0];
  const bestAsk = a[0]?.[0];
  let spread = "—";
  if (bestBid && bestAsk && spec) {
    const s = Number(bestAsk) - Number(bestBid);
    spread = `${fmtPrice(spec, s)} (${((s / Number(bestAsk)) * 100).toFixed(3)}%)`;
  }
  const crossed = bestBid && bestAsk ? compare(bestBid, bestAsk) >= 0 : false;
  return (
    <section className="panel book" data-testid="orderbook" data-update-id={updateId} data-state={state}>
      <h2>
        Order book <small className="dim">{state === "live" ? `#${updateId}` : state}{resyncs > 0 ? ` · ${resyncs} resync` : ""}</small>
        <select
          className="group"
          aria-label="Group prices"
          data-testid="book-group"
          value={step}
          onChange={(e) => setGrouping({ symbol, step: e.target.value })}
        >
          {steps.map((s) => (
            <option key={s} value={s}>
              {formatFixed(s, Math.max(0, pd - steps.indexOf(s)))}
            </option>
          ))}
        </select>
      </h2>
      <div className="book-head">
        <span>Price ({spec?.quote})</span>
        <span>Size ({spec?.base})</span>
        <span>Total</span>
      </div>
      <div className="book-side asks">
        <Rows levels={a} side="ask" max={max} mine={myPrices} />
      </div>
      <div className={`spread ${crossed ? "down" : ""}`} data-testid="spread">
        Spread {spread}
      </div>
      <div className="book-side bids">
        <Rows levels={b} side="bid" max={max} mine={myPrices} />
      </div>
    </section>
  );
}
