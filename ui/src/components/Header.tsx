import { selectMarket } from "../market";
import { notify, refreshAccount } from "../account";
import { errorText } from "../lib/api";
import { INTERVALS, useAccount, useMarket, type ConnState } from "../store";
import { fmtPrice, fmtQty } from "../format";
import { formatFixed } from "../lib/decimal";
import type { View } from "../route";

function Status({ label, state }: { label: string; state: ConnState | "signed-out" }) {
  return (
    <span className={`status status-${state}`} data-testid={`status-${label}`} title={`${label}: ${state}`}>
      <span className="dot" />
      {label} {state}
    </span>
  );
}

function Nav({ view }: { view: View }) {
  return (
    <nav className="views" aria-label="View">
      <a href="#/" className={view === "market" ? "active" : ""} data-testid="nav-market">
        Market
      </a>
      <a href="#/ops" className={view === "ops" ? "active" : ""} data-testid="nav-ops">
        Ops
      </a>
    </nav>
  );
}

export function Header({ view }: { view: View }) {
  const specs = useMarket((s) => s.specs);
  const symbol = useMarket((s) => s.symbol);
  const interval = useMarket((s) => s.interval);
  const ticker = useMarket((s) => s.ticker);
  const marketConn = useMarket((s) => s.marketConn);
  const userConn = useAccount((s) => s.userConn);
  const lastTrade = useMarket((s) => s.trades[0]);
  const spec = specs.find((s) => s.symbol === symbol);
  const change = ticker ? Number(ticker.priceChangePercent) : 0;
  return (
    <header className="header">
      <div className="brand">☿ Mercury</div>
      <Nav view={view} />
      {view === "market" && (
        <>
      <select
        aria-label="Symbol"
        data-testid="symbol"
        value={symbol}
        onChange={(e) => {
          selectMarket(e.target.value, interval);
          // the account's tables follow the selected symbol
          if (useAccount.getState().creds) refreshAccount().catch((err: unknown) => notify("error", errorText(err)));
        }}
      >
        {specs.map((s) => (
          <option key={s.symbol} value={s.symbol}>
            {s.base}/{s.quote}
          </option>
        ))}
      </select>
      <div className="ticker" data-testid="ticker">
        <div>
          <label>Last</label>
          <span className={`big ${lastTrade ? (lastTrade.isBuyerMaker ? "down" : "up") : ""}`} data-testid="last-price">
            {lastTrade ? fmtPrice(spec, lastTrade.price) : ticker ? fmtPrice(spec, ticker.lastPrice) : "—"}
          </span>
        </div>
        <div>
          <label>24h change</label>
          <span className={change > 0 ? "up" : change < 0 ? "down" : ""}>{ticker ? `${formatFixed(ticker.priceChangePercent, 2)}%` : "—"}</span>
        </div>
        <div>
          <label>24h high</label>
          <span>{ticker ? fmtPrice(spec, ticker.highPrice) : "—"}</span>
        </div>
        <div>
          <label>24h low</label>
          <span>{ticker ? fmtPrice(spec, ticker.lowPrice) : "—"}</span>
        </div>
        <div>
          <label>24h volume ({spec?.base ?? ""})</label>
          <span>{ticker ? fmtQty(spec, ticker.volume) : "—"}</span>
        </div>
      </div>
      <div className="intervals" role="group" aria-label="Candle interval">
        {INTERVALS.map((i) => (
          <button
            key={i}
            className={i === interval ? "active" : ""}
            data-testid={`interval-${i}`}
            onClick={() => selectMarket(symbol, i)}
          >
            {i}
          </button>
        ))}
      </div>
        </>
      )}
      {/* the Ops page connects neither stream: their states would only say "connecting" there */}
      {view === "market" && (
        <div className="conn">
          <Status label="market" state={marketConn} />
          <Status label="account" state={userConn} />
        </div>
      )}
    </header>
  );
}
