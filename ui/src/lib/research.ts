// The research inference service (research/serve.py): the current prediction for a symbol and the model's
// metadata with its after-fee backtest. Its answers are read tolerantly (fields may be missing or renamed slightly
// while that service evolves): whatever cannot be read is shown as "—", never thrown.

export interface Prediction {
  direction: "up" | "down" | null;
  probabilityUp: number | null; // P(next interval closes up), 0..1
  version: string | null;
  asOf: number | null; // unix ms of the bar the prediction is made at
  horizon: string | null; // e.g. "1m"
}

export interface Backtest {
  totalReturn: number | null;
  sharpe: number | null;
  maxDrawdown: number | null;
  trades: number | null;
}

export interface ModelInfo {
  version: string | null;
  model: string | null;
  symbol: string | null;
  interval: string | null;
  accuracy: number | null;
  rocAuc: number | null;
  backtest: Backtest | null;
  buyAndHold: Backtest | null;
}

/** A service answer that is not a success: 503 is "no model trained yet", a state of its own on the panel. */
export class ResearchError extends Error {
  constructor(
    readonly status: number, // 0: no answer
    readonly code: number | string | null,
    msg: string,
  ) {
    super(msg);
    this.name = "ResearchError";
  }
  get noModel(): boolean {
    return this.status === 503;
  }
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | null {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : null;
}

function num(v: unknown): number | null {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
}

function str(v: unknown): string | null {
  if (typeof v === "string" && v !== "") return v;
  return typeof v === "number" ? String(v) : null;
}

function first(o: Json, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) return o[k];
  return undefined;
}

/** A time as unix ms: epoch seconds, ms, µs or ns (research/serve.py answers kline open times in ns, Mercury's
 * unit), or an ISO string; the unit is told by the magnitude, each a thousand times the last. */
export function parseTime(v: unknown): number | null {
  const n = num(v);
  if (n !== null) {
    if (n >= 1e17) return Math.floor(n / 1e6); // ns: from 1973 on
    if (n >= 1e14) return Math.floor(n / 1e3); // µs
    return n < 1e11 ? n * 1000 : n; // seconds until the year 5138, else ms
  }
  if (typeof v === "string") {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

export function parsePrediction(body: unknown): Prediction {
  const outer = obj(body) ?? {};
  const o = obj(outer.prediction) ?? outer; // {"prediction": {...}, "model_version": ...} or flat
  let probabilityUp = num(first(o, "probability_up", "prob_up", "p_up", "probabilityUp"));
  const raw = first(o, "direction", "signal", "side");
  let direction: Prediction["direction"] = null;
  if (typeof raw === "string") {
    const d = raw.toLowerCase();
    if (d === "up" || d === "buy" || d === "long") direction = "up";
    else if (d === "down" || d === "sell" || d === "short") direction = "down";
  } else if (num(raw) !== null) {
    direction = (num(raw) as number) > 0 ? "up" : "down";
  }
  if (probabilityUp === null) {
    // a bare "probability" is that of the predicted direction
    const p = num(o.probability);
    if (p !== null && direction) probabilityUp = direction === "up" ? p : 1 - p;
  }
  if (direction === null && probabilityUp !== null) direction = probabilityUp > 0.5 ? "up" : "down";
  return {
    direction,
    probabilityUp,
    // research/serve.py names the model's version "model"
    version: str(first(o, "model_version", "version", "model") ?? first(outer, "model_version", "version")),
    asOf: parseTime(first(o, "as_of_open_time", "as_of", "asOf", "time", "open_time") ?? first(outer, "as_of", "asOf")),
    horizon: str(first(o, "interval", "horizon") ?? first(outer, "interval", "horizon")),
  };
}

export function parseBacktest(v: unknown): Backtest | null {
  const o = obj(v);
  if (!o) return null;
  return {
    totalReturn: num(first(o, "total_return", "return")),
    sharpe: num(o.sharpe),
    maxDrawdown: num(first(o, "max_drawdown", "drawdown")),
    trades: num(o.trades),
  };
}

/** The model endpoint: research.model's metadata.json (possibly wrapped in {"metadata": ...}) or a summary. */
export function parseModel(body: unknown): ModelInfo {
  const outer = obj(body) ?? {};
  const o = obj(outer.metadata) ?? outer;
  const model = str(first(o, "model", "name"));
  const evaluation = obj(o.evaluation);
  const models = obj(evaluation?.models);
  const chosen = (model && obj(models?.[model])) || null;
  // research/serve.py: backtest_summary is {candidate name: backtest}; a flat summary is the model's own
  const summary = obj(first(o, "backtest_summary", "summary")) ?? null;
  const ownSummary = (model && obj(summary?.[model])) || (summary && "total_return" in summary ? summary : null);
  const backtest = parseBacktest(chosen?.backtest ?? ownSummary ?? summary?.backtest ?? o.backtest);
  return {
    version: str(first(o, "version", "model_version")),
    model,
    symbol: str(o.symbol),
    interval: str(o.interval),
    accuracy: num(first(summary ?? {}, "accuracy") ?? chosen?.accuracy ?? o.accuracy),
    rocAuc: num(first(summary ?? {}, "roc_auc") ?? chosen?.roc_auc ?? o.roc_auc),
    backtest,
    buyAndHold: parseBacktest(first(summary ?? {}, "buy_and_hold") ?? evaluation?.buy_and_hold ?? o.buy_and_hold),
  };
}

async function getResearch(url: string, signal?: AbortSignal): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ResearchError(0, null, `cannot reach the inference service at ${new URL(url, location.href).host}`);
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page; the status says enough
  }
  if (!response.ok) {
    const e = obj(body);
    const msg = str(e?.msg) ?? str(e?.detail) ?? `HTTP ${response.status}`;
    throw new ResearchError(response.status, (e?.code as number | string | undefined) ?? null, msg);
  }
  return body;
}

export async function fetchPrediction(base: string, symbol: string, interval: string, signal?: AbortSignal): Promise<Prediction> {
  const q = new URLSearchParams({ symbol, interval });
  return parsePrediction(await getResearch(`${base.replace(/\/+$/, "")}/api/v1/predict?${q.toString()}`, signal));
}

/** The version of the model the service serves, null while it has none. Its /health answers 200 either way, so
 * a page waiting for the first model (the local run trains one minutes after it starts) logs no failed request. */
export async function fetchModelVersion(base: string, signal?: AbortSignal): Promise<string | null> {
  const health = obj(await getResearch(`${base.replace(/\/+$/, "")}/health`, signal));
  return str(health?.model) ?? null;
}

export async function fetchModel(base: string, signal?: AbortSignal): Promise<ModelInfo> {
  return parseModel(await getResearch(`${base.replace(/\/+$/, "")}/api/v1/model`, signal));
}
