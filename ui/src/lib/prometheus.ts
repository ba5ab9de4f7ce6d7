// Prometheus' HTTP API (query_range) for the Ops page: the response parsed into named series of [ms, value]
// points, ready for ECharts. Kept free of React and ECharts so that vitest checks the parsing and shaping alone.

export type Point = [number, number | null]; // [unix ms, value]; null is a gap (NaN, ±Inf, or a missing step)

export interface Series {
  name: string;
  points: Point[];
}

/** What one chart asks for: each line is a PromQL expression and, optionally, the label that names its series. */
export interface Line {
  expr: string;
  name: string; // the legend's name; with `by`, a prefix to the label's value
  by?: string;
}

export class PrometheusError extends Error {
  constructor(
    msg: string,
    readonly unreachable: boolean, // no answer at all (down, wrong URL, CORS): the page says so once, plainly
  ) {
    super(msg);
    this.name = "PrometheusError";
  }
}

interface MatrixResult {
  metric: Record<string, string>;
  values: [number, string][];
}

interface QueryResponse {
  status: "success" | "error";
  data?: { resultType: string; result: unknown };
  errorType?: string;
  error?: string;
}

/** Prometheus writes sample values as strings, "NaN" and "+Inf" included: a chart can only draw finite ones. */
export function sampleValue(raw: string): number | null {
  const v = Number(raw);
  return Number.isFinite(v) ? v : null;
}

/** The matrix of a query_range answer; throws PrometheusError on an error answer or an unexpected shape. */
export function parseMatrix(body: unknown): MatrixResult[] {
  const r = body as QueryResponse | null;
  if (!r || typeof r !== "object") throw new PrometheusError("Prometheus answered something that is not JSON", false);
  if (r.status !== "success") {
    throw new PrometheusError(`Prometheus: ${r.errorType ?? "error"}: ${r.error ?? "no message"}`, false);
  }
  if (!r.data || r.data.resultType !== "matrix" || !Array.isArray(r.data.result)) {
    throw new PrometheusError(`Prometheus: expected a matrix, got ${r.data?.resultType ?? "nothing"}`, false);
  }
  return (r.data.result as MatrixResult[]).filter((m) => m && typeof m.metric === "object" && Array.isArray(m.values));
}

/** The legend's name of one result: the line's name, then the `by` label's value (e.g. "enqueued JOURNALED"). */
export function seriesName(line: Line, metric: Record<string, string>): string {
  if (!line.by) return line.name;
  const value = metric[line.by];
  return value ? `${line.name} ${value}` : line.name;
}

/**
 * The results on the step grid from start to end (seconds): a step without a sample becomes a gap (null), so that
 * ECharts breaks the line there instead of joining across it. Prometheus returns only the steps that have one.
 */
export function toSeries(line: Line, results: MatrixResult[], start: number, end: number, step: number): Series[] {
  return results.map((m) => {
    const byTime = new Map<number, number | null>();
    for (const [t, raw] of m.values) byTime.set(Math.round(t), sampleValue(raw));
    const points: Point[] = [];
    for (let t = start; t <= end; t += step) points.push([t * 1000, byTime.get(t) ?? null]);
    return { name: seriesName(line, m.metric), points };
  });
}

/** Whether any series has a point that is a number other than 0: the charts are "live" only then. */
export function hasNonZero(series: Series[]): boolean {
  return series.some((s) => s.points.some(([, v]) => v !== null && v !== 0));
}

/** The last finite value of a series (the legend shows it), or null. */
export function lastValue(series: Series): number | null {
  for (let i = series.points.length - 1; i >= 0; i--) {
    const v = series.points[i]?.[1];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

/** A range aligned to the step, so that successive refreshes put points on the same grid. */
export function rangeEnding(nowMs: number, windowSeconds: number, step: number): { start: number; end: number } {
  const end = Math.floor(nowMs / 1000 / step) * step;
  return { start: end - windowSeconds, end };
}

export function queryRangeUrl(base: string, expr: string, start: number, end: number, step: number): string {
  const q = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(step) });
  return `${base.replace(/\/+$/, "")}/api/v1/query_range?${q.toString()}`;
}

/** One chart's lines over [start, end], queried in parallel. */
export async function queryLines(
  base: string,
  lines: Line[],
  start: number,
  end: number,
  step: number,
  signal?: AbortSignal,
): Promise<Series[]> {
  const all = await Promise.all(
    lines.map(async (line) => {
      let response: Response;
      try {
        response = await fetch(queryRangeUrl(base, line.expr, start, end, step), { signal });
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new PrometheusError(`cannot reach Prometheus at ${base}`, true);
      }
      let body: unknown;
      try {
        body = await response.json();
      } catch {
        // a proxy's HTML error page, or Prometheus not being there at all (e.g. the front door's 502)
        throw new PrometheusError(`Prometheus at ${base} answered HTTP ${response.status}, not JSON`, response.status >= 500);
      }
      return toSeries(line, parseMatrix(body), start, end, step);
    }),
  );
  return all.flat();
}
