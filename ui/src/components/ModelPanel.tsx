import { useEffect, useState } from "react";
import { fetchModel, fetchModelVersion, fetchPrediction, ResearchError, type Backtest, type ModelInfo, type Prediction } from "../lib/research";
import { useMarket } from "../store";

const REFRESH_MS = 15_000;
// an unreachable service, or one without a model, is asked again less often: each failed request is a line in
// the browser's console
const RETRY_MS = 60_000;

type PanelState =
  | { kind: "unconfigured" }
  | { kind: "loading" }
  | { kind: "no-model"; message: string }
  | { kind: "error"; message: string }
  | { kind: "ok"; prediction: Prediction | null; predictionError: string | null; model: ModelInfo };

const pct = (v: number | null, places = 1): string => (v === null ? "—" : `${(v * 100).toFixed(places)}%`);
const fixed = (v: number | null, places = 2): string => (v === null ? "—" : v.toFixed(places));

function BacktestRow({ label, b }: { label: string; b: Backtest | null }) {
  return (
    <tr>
      <td>{label}</td>
      <td className="num">{pct(b?.totalReturn ?? null, 2)}</td>
      <td className="num">{fixed(b?.sharpe ?? null)}</td>
      <td className="num">{pct(b?.maxDrawdown ?? null)}</td>
      <td className="num">{b?.trades ?? "—"}</td>
    </tr>
  );
}

/** The research model's current call on the selected symbol and its after-fee backtest (research/serve.py). */
export function ModelPanel() {
  const base = useMarket((s) => s.config?.research);
  const loaded = useMarket((s) => s.config !== null);
  const symbol = useMarket((s) => s.symbol);
  const [state, setState] = useState<PanelState>({ kind: "loading" });

  useEffect(() => {
    if (!loaded) return;
    if (!base) {
      setState({ kind: "unconfigured" });
      return;
    }
    setState({ kind: "loading" });
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // the model, its backtest at once, then the prediction (it reads klines from MongoDB and can take seconds)
    const show = async (): Promise<void> => {
      const model = await fetchModel(base, abort.signal);
      setState((prev) =>
        prev.kind === "ok" ? { ...prev, model } : { kind: "ok", prediction: null, predictionError: null, model },
      );
      let prediction: Prediction | null = null;
      let predictionError: string | null = null;
      try {
        // the model's own interval when it is a kline interval (a model trained on a sample names none)
        const interval = model.interval && /^\d+[smhdw]$/.test(model.interval) ? model.interval : "1m";
        prediction = await fetchPrediction(base, symbol, interval, abort.signal);
      } catch (err) {
        if (abort.signal.aborted) return;
        // e.g. a model trained on another symbol: the backtest still shows
        predictionError = err instanceof Error ? err.message : String(err);
      }
      setState({ kind: "ok", prediction, predictionError, model });
    };
    const refresh = async (): Promise<void> => {
      let next = REFRESH_MS;
      try {
        if ((await fetchModelVersion(base, abort.signal)) === null) {
          setState({ kind: "no-model", message: "the service trains one from the stored klines, or run python -m research.model train" });
        } else {
          await show();
        }
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof ResearchError && err.noModel) setState({ kind: "no-model", message: err.message });
        else setState({ kind: "error", message: err instanceof Error ? err.message : String(err) });
        next = RETRY_MS;
      }
      if (abort.signal.aborted) return; // unmounted or the symbol changed: the next effect refreshes
      timer = setTimeout(() => void refresh(), next);
    };
    void refresh();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [base, loaded, symbol]);

  return (
    <section className="panel model" data-testid="model-panel" data-state={state.kind}>
      <h2>Model</h2>
      {state.kind === "unconfigured" && <div className="dim">Not available: no inference service is configured.</div>}
      {state.kind === "loading" && <div className="dim">Loading…</div>}
      {state.kind === "no-model" && <div className="dim">No model trained yet ({state.message}).</div>}
      {state.kind === "error" && <div className="error">Inference service: {state.message}</div>}
      {state.kind === "ok" && (
        <>
          {state.prediction ? (
            <div className="model-call" data-testid="model-prediction">
              <span className={`big ${state.prediction.direction === "up" ? "up" : state.prediction.direction === "down" ? "down" : ""}`}>
                {state.prediction.direction === "up" ? "▲ up" : state.prediction.direction === "down" ? "▼ down" : "—"}
              </span>
              <span>P(up) {pct(state.prediction.probabilityUp)}</span>
              <span className="dim">
                next {state.prediction.horizon ?? state.model.interval ?? "interval"}
                {state.prediction.asOf !== null && ` · as of ${new Date(state.prediction.asOf).toLocaleTimeString()}`}
              </span>
            </div>
          ) : state.predictionError ? (
            <div className="dim">No prediction for {symbol}: {state.predictionError}</div>
          ) : (
            <div className="dim">Predicting…</div>
          )}
          <div className="dim model-meta">
            {state.model.model ?? "model"} {state.model.version ?? ""}
            {state.model.symbol && ` · trained on ${state.model.symbol} ${state.model.interval ?? ""}`}
            {` · accuracy ${pct(state.model.accuracy)} · AUC ${fixed(state.model.rocAuc, 3)}`}
          </div>
          <table className="compact" data-testid="model-backtest">
            <thead>
              <tr>
                <th>After fees</th>
                <th className="num">Return</th>
                <th className="num">Sharpe</th>
                <th className="num">Max DD</th>
                <th className="num">Trades</th>
              </tr>
            </thead>
            <tbody>
              <BacktestRow label="model" b={state.model.backtest} />
              {state.model.buyAndHold && <BacktestRow label="buy & hold" b={state.model.buyAndHold} />}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
