import { useState } from "react";
import { cancelAll, cancelOrder, notify } from "../account";
import { errorText } from "../lib/api";
import type { Order } from "../lib/types";
import { currentSpec, useAccount, useMarket } from "../store";
import { fmtAmount, fmtDateTime, fmtPrice, fmtQty } from "../format";

type Tab = "open" | "history" | "fills" | "balances";

function OrderRow({ o, cancel }: { o: Order; cancel?: (o: Order) => void }) {
  const spec = currentSpec();
  return (
    <tr data-testid={cancel ? "open-order" : "history-order"} data-order-id={o.orderId}>
      <td>{fmtDateTime(o.time)}</td>
      <td className={o.side === "BUY" ? "up" : "down"}>{o.side}</td>
      <td>{o.type === "LIMIT" ? `LIMIT ${o.timeInForce}` : o.type}</td>
      <td className="num">{o.type === "MARKET" ? "market" : fmtPrice(spec, o.price)}</td>
      <td className="num">{fmtQty(spec, o.origQty)}</td>
      <td className="num">{fmtQty(spec, o.executedQty)}</td>
      <td>{o.status}</td>
      {cancel && (
        <td>
          <button className="link" onClick={() => cancel(o)} data-testid="cancel-order">
            Cancel
          </button>
        </td>
      )}
    </tr>
  );
}

export function AccountTabs() {
  const [tab, setTab] = useState<Tab>("open");
  const creds = useAccount((s) => s.creds);
  const open = useAccount((s) => s.openOrders);
  const orders = useAccount((s) => s.orders);
  const fills = useAccount((s) => s.fills);
  const balances = useAccount((s) => s.balances);
  useMarket((s) => s.specs);
  const symbol = useMarket((s) => s.symbol);
  const spec = currentSpec();
  const run = (what: () => Promise<void>) => what().catch((err: unknown) => notify("error", errorText(err)));
  const cancel = (o: Order) => void run(() => cancelOrder(o));
  const tabs: [Tab, string][] = [
    ["open", `Open orders (${open.length})`],
    ["history", "Order history"],
    ["fills", "Fills"],
    ["balances", "Balances"],
  ];
  return (
    <section className="panel account" data-testid="account">
      <div className="tabs">
        {tabs.map(([t, label]) => (
          <button key={t} className={t === tab ? "active" : ""} onClick={() => setTab(t)} data-testid={`tab-${t}`}>
            {label}
          </button>
        ))}
        {tab === "open" && open.length > 0 && (
          <button className="link right" onClick={() => void run(cancelAll)} data-testid="cancel-all">
            Cancel all {symbol}
          </button>
        )}
      </div>
      {!creds ? (
        <p className="dim">Sign in with an API key to see your orders, fills and balances.</p>
      ) : (
        <div className="table-wrap">
          {(tab === "open" || tab === "history") && (
            <table>
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Side</th>
                  <th>Type</th>
                  <th className="num">Price</th>
                  <th className="num">Qty</th>
                  <th className="num">Filled</th>
                  <th>Status</th>
                  {tab === "open" && <th />}
                </tr>
              </thead>
              <tbody>
                {(tab === "open" ? open : orders).map((o) => (
                  <OrderRow key={o.orderId} o={o} cancel={tab === "open" ? cancel : undefined} />
                ))}
              </tbody>
            </table>
          )}
          {tab === "fills" && (
            <table>
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Side</th>
                  <th className="num">Price</th>
                  <th className="num">Qty</th>
                  <th className="num">Fee</th>
                  <th>Role</th>
                </tr>
              </thead>
              <tbody>
                {fills.map((f) => (
                  <tr key={`${f.orderId}-${f.id}`} data-testid="fill">
                    <td>{fmtDateTime(f.time)}</td>
                    <td className={f.isBuyer ? "up" : "down"}>{f.isBuyer ? "BUY" : "SELL"}</td>
                    <td className="num">{fmtPrice(spec, f.price)}</td>
                    <td className="num">{fmtQty(spec, f.qty)}</td>
                    <td className="num">
                      {f.commission} {f.commissionAsset}
                    </td>
                    <td>{f.isMaker ? "maker" : "taker"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {tab === "balances" && (
            <table>
              <thead>
                <tr>
                  <th>Asset</th>
                  <th className="num">Free</th>
                  <th className="num">Locked</th>
                </tr>
              </thead>
              <tbody>
                {balances.map((b) => (
                  <tr key={b.asset} data-testid={`balance-${b.asset}`}>
                    <td>{b.asset}</td>
                    <td className="num" data-testid="free">{fmtAmount(b.free, 8)}</td>
                    <td className="num" data-testid="locked">{fmtAmount(b.locked, 8)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </section>
  );
}
