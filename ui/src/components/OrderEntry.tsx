import { useEffect, useState, type FormEvent } from "react";
import { placeOrder, notify, refreshAccount } from "../account";
import { errorText } from "../lib/api";
import { checkDraft, type OrderDraft, type OrderKind, type TimeInForce } from "../lib/types";
import { currentSpec, useAccount, useMarket } from "../store";
import { fmtAmount, fmtQty } from "../format";
import { multiply, parseDec } from "../lib/decimal";

export function OrderEntry() {
  const creds = useAccount((s) => s.creds);
  const balances = useAccount((s) => s.balances);
  const notice = useAccount((s) => s.notice);
  const ticker = useMarket((s) => s.ticker);
  useMarket((s) => s.specs);
  useMarket((s) => s.symbol);
  const spec = currentSpec();
  const [side, setSide] = useState<"BUY" | "SELL">("BUY");
  const [kind, setKind] = useState<OrderKind>("LIMIT");
  const [tif, setTif] = useState<TimeInForce>("GTC");
  const [price, setPrice] = useState("");
  const [quantity, setQuantity] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const picked = useMarket((s) => s.picked);
  useEffect(() => {
    if (picked) {
      setPrice(picked.price);
      setKind((k) => (k === "MARKET" ? "LIMIT" : k));
    }
  }, [picked]);

  if (!spec) return <section className="panel entry">Loading symbols…</section>;
  const draft: OrderDraft = { side, kind, tif, price, quantity };
  const pays = side === "BUY" ? spec.quote : spec.base;
  const available = balances.find((b) => b.asset === pays)?.free;
  const value =
    kind !== "MARKET" && parseDec(price) && parseDec(quantity) && /^\d/.test(price) && /^\d/.test(quantity)
      ? multiply(price, quantity)
      : null;

  async function submit(e: FormEvent): Promise<void> {
    e.preventDefault();
    if (!spec) return;
    const check = checkDraft(spec, draft, ticker?.lastPrice ?? null);
    setProblem(check);
    if (check) return;
    setBusy(true);
    try {
      const order = await placeOrder(draft);
      notify("ok", `${order.side} ${order.type} #${order.orderId}: ${order.status}, filled ${fmtQty(spec, order.executedQty)} ${spec.base}`);
      if (order.status === "EXPIRED" || order.status === "FILLED") void refreshAccount().catch(() => {});
    } catch (err) {
      notify("error", errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel entry" data-testid="order-entry">
      <h2>Place order</h2>
      <form onSubmit={(e) => void submit(e)}>
        <div className="sides">
          <button type="button" className={side === "BUY" ? "buy active" : "buy"} onClick={() => setSide("BUY")} data-testid="side-buy">
            Buy
          </button>
          <button type="button" className={side === "SELL" ? "sell active" : "sell"} onClick={() => setSide("SELL")} data-testid="side-sell">
            Sell
          </button>
        </div>
        <label>
          Type
          <select value={kind} onChange={(e) => setKind(e.target.value as OrderKind)} data-testid="order-type">
            <option value="LIMIT">Limit</option>
            <option value="LIMIT_MAKER">Post-only (limit maker)</option>
            <option value="MARKET">Market</option>
          </select>
        </label>
        {kind === "LIMIT" && (
          <label>
            Time in force
            <select value={tif} onChange={(e) => setTif(e.target.value as TimeInForce)} data-testid="tif">
              <option value="GTC">GTC · good till canceled</option>
              <option value="IOC">IOC · immediate or cancel</option>
              <option value="FOK">FOK · fill or kill</option>
            </select>
          </label>
        )}
        {kind !== "MARKET" && (
          <label>
            Price ({spec.quote}) <small className="dim">tick {spec.tickSize}</small>
            <input inputMode="decimal" value={price} onChange={(e) => setPrice(e.target.value)} data-testid="price" placeholder={`0.${"0".repeat(spec.priceDecimals)}`} />
          </label>
        )}
        <label>
          Quantity ({spec.base}) <small className="dim">step {spec.stepSize}</small>
          <input inputMode="decimal" value={quantity} onChange={(e) => setQuantity(e.target.value)} data-testid="quantity" placeholder={`min ${spec.minQty}`} />
        </label>
        <div className="entry-info dim">
          <span>
            Value: {value ? `${fmtAmount(value, spec.quoteDecimals)} ${spec.quote}` : "—"} (min {fmtAmount(spec.minNotional, spec.quoteDecimals)})
          </span>
          <span>
            Available: {available !== undefined ? `${fmtAmount(available, pays === spec.base ? spec.qtyDecimals : spec.quoteDecimals)} ${pays}` : "—"}
          </span>
        </div>
        {problem && (
          <div className="error" role="alert" data-testid="entry-problem">
            {problem}
          </div>
        )}
        <button type="submit" className={side === "BUY" ? "submit buy" : "submit sell"} disabled={!creds || busy} data-testid="submit-order">
          {creds ? `${side === "BUY" ? "Buy" : "Sell"} ${spec.base}` : "Sign in to trade"}
        </button>
        {notice && (
          <div className={notice.kind === "error" ? "error" : "ok"} role="status" data-testid="notice">
            {notice.kind === "error" ? "Refused: " : ""}
            {notice.text}
          </div>
        )}
      </form>
    </section>
  );
}
