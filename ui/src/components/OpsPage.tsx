import { useEffect, useRef, useState } from "react";
import * as echarts from "echarts/core";
import { LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { hasNonZero, lastValue, PrometheusError, queryLines, rangeEnding, type Line, type Series } from "../lib/prometheus";
import { useMarket } from "../store";

echarts.use([LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

const WINDOW = 15 * 60; // seconds charted
const STEP = 5; // seconds between points: 180 per line
const REFRESH_MS = 5000;
const COLORS = ["#f0b90b", "#1fbf75", "#4ea1ff", "#f0506e", "#b48cff", "#5fd3c7"];

type Unit = "rate" | "count" | "seconds";

interface ChartSpec {
  id: string;
  title: string;
  unit: Unit;
  lines: Line[];
}

// Raw expressions rather than the recording rules (deploy/prometheus/rules/recording.yml): a rule's series only
// starts at its first evaluation, so a freshly started Prometheus would chart nothing for a minute. The windows are
// shorter than the rules' (30 s, 1 m) so that the lines follow a change within a few refreshes.
const histogram = (q: number, metric: string): string => `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket[1m])))`;
const CHARTS: ChartSpec[] = [
  {
    id: "commands",
    title: "Commands: enqueued vs processed",
    unit: "rate",
    lines: [
      // journaled only: refused commands (BUSY, DUPLICATE, ...) never reach the engine
      { name: "enqueued", expr: 'sum(rate(mercury_sequencer_commands_total{status="JOURNALED"}[30s]))' },
      { name: "processed", expr: "sum(rate(mercury_engine_commands_total[30s]))" },
    ],
  },
  {
    id: "lag",
    title: "Engine and persister lag",
    unit: "count",
    lines: [
      { name: "engine (commands)", expr: "max(mercury_sequencer_engine_lag)" },
      { name: "persister", by: "consumer", expr: "max by (consumer) (mercury_persister_lag_events)" },
    ],
  },
  {
    id: "latency",
    title: "Latency percentiles",
    unit: "seconds",
    lines: [
      { name: "gateway ack p50", expr: histogram(0.5, "mercury_gateway_ack_seconds") },
      { name: "gateway ack p99", expr: histogram(0.99, "mercury_gateway_ack_seconds") },
      { name: "HTTP p50", expr: histogram(0.5, "mercury_http_request_duration_seconds") },
      { name: "HTTP p99", expr: histogram(0.99, "mercury_http_request_duration_seconds") },
      { name: "engine publish p99", expr: histogram(0.99, "mercury_engine_publish_lag_seconds") },
    ],
  },
  {
    id: "feed-clients",
    title: "Feed clients",
    unit: "count",
    lines: [{ name: "clients", expr: "sum(mercury_feed_clients)" }],
  },
];

export function formatValue(unit: Unit, v: number | null): string {
  if (v === null) return "—";
  if (unit === "seconds") return v < 1 ? `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms` : `${v.toFixed(2)} s`;
  if (unit === "rate") return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)}/s`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

interface ChartState {
  series: Series[];
  error: string | null;
}

function OpsChart({ spec, state }: { spec: ChartSpec; state: ChartState | undefined }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const c = echarts.init(el, undefined, { renderer: "canvas" });
    chart.current = c;
    const axisLabel = { color: "#9aa4b2", fontSize: 10 };
    c.setOption({
      animation: false,
      backgroundColor: "transparent",
      color: COLORS,
      grid: { left: 8, right: 12, top: 30, bottom: 6, containLabel: true },
      legend: { top: 0, left: 0, textStyle: { color: "#c5ccd6", fontSize: 11 }, itemHeight: 8 },
      tooltip: { trigger: "axis", valueFormatter: (v: unknown) => formatValue(spec.unit, typeof v === "number" ? v : null) },
      xAxis: { type: "time", axisLabel, splitLine: { show: false } },
      yAxis: {
        type: "value",
        min: 0,
        axisLabel: { ...axisLabel, formatter: (v: number) => formatValue(spec.unit, v) },
        splitLine: { lineStyle: { color: "#1d232c" } },
      },
      series: [],
    });
    const resize = new ResizeObserver(() => c.resize());
    resize.observe(el);
    return () => {
      resize.disconnect();
      c.dispose();
      chart.current = null;
    };
  }, [spec]);

  useEffect(() => {
    if (!chart.current || !state) return;
    chart.current.setOption(
      {
        // the first line drawn wider: where two lines agree (enqueued = processed) both stay visible
        series: state.series.map((s, i) => ({
          name: s.name,
          type: "line",
          showSymbol: false,
          connectNulls: false,
          lineStyle: { width: i === 0 ? 4 : 1.5 },
          data: s.points,
        })),
      },
      { replaceMerge: ["series"] },
    );
  }, [state]);

  const points = state ? state.series.reduce((n, s) => n + s.points.filter(([, v]) => v !== null).length, 0) : 0;
  return (
    <section
      className="panel ops-chart"
      data-testid={`ops-chart-${spec.id}`}
      data-points={points}
      data-nonzero={state && hasNonZero(state.series) ? "true" : "false"}
      data-nonzero-series={state ? state.series.filter((s) => hasNonZero([s])).map((s) => s.name).join(",") : ""}
    >
      <h2>{spec.title}</h2>
      <div className="ops-last dim">
        {state && state.series.length > 0
          ? `now: ${state.series.map((s) => `${s.name} ${formatValue(spec.unit, lastValue(s))}`).join(" · ")}`
          : "\u00a0"}
      </div>
      <div className="ops-chart-box" ref={box} />
      {state?.error && <div className="error">{state.error}</div>}
      {state && !state.error && points === 0 && <div className="dim ops-empty">No data in the last 15 minutes.</div>}
    </section>
  );
}

type PageState = "loading" | "live" | "unreachable" | "unconfigured";

/** Prometheus' view of the venue over the last 15 minutes, refreshed every few seconds. */
export function OpsPage() {
  const config = useMarket((s) => s.config);
  const base = config?.prometheus;
  const [charts, setCharts] = useState<Record<string, ChartState>>({});
  const [page, setPage] = useState<{ state: PageState; message: string | null; updated: number | null }>({
    state: "loading",
    message: null,
    updated: null,
  });

  useEffect(() => {
    if (!config) return;
    if (!base) {
      setPage({ state: "unconfigured", message: null, updated: null });
      return;
    }
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const refresh = async (): Promise<void> => {
      const { start, end } = rangeEnding(Date.now(), WINDOW, STEP);
      const results = await Promise.allSettled(CHARTS.map((c) => queryLines(base, c.lines, start, end, STEP, abort.signal)));
      if (abort.signal.aborted) return;
      const next: Record<string, ChartState> = {};
      let unreachable: string | null = null;
      results.forEach((r, i) => {
        const id = (CHARTS[i] as ChartSpec).id;
        if (r.status === "fulfilled") next[id] = { series: r.value, error: null };
        else if (r.reason instanceof PrometheusError && r.reason.unreachable) unreachable = r.reason.message;
        else next[id] = { series: [], error: r.reason instanceof Error ? r.reason.message : String(r.reason) };
      });
      if (unreachable) {
        // the last charts stay up; the banner says why they no longer move
        setPage((p) => ({ state: "unreachable", message: unreachable, updated: p.updated }));
      } else {
        setCharts(next);
        setPage({ state: "live", message: null, updated: Date.now() });
      }
      timer = setTimeout(() => void refresh(), REFRESH_MS);
    };
    void refresh();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [config, base]);

  return (
    <main className="ops" data-testid="ops" data-state={page.state}>
      <div className="ops-head">
        <h1>Operations</h1>
        <span className="dim">
          {base ? (
            <>
              Prometheus <code>{base}</code>, last 15 minutes, every {REFRESH_MS / 1000} s
              {page.updated !== null && ` · updated ${new Date(page.updated).toLocaleTimeString()}`}
            </>
          ) : null}
        </span>
      </div>
      {page.state === "unconfigured" && (
        <div className="banner-inline dim" data-testid="ops-unconfigured">
          Metrics are not available: this venue's /ui-config.json names no Prometheus (or open the page with
          ?prometheus=http://host:port).
        </div>
      )}
      {page.state === "unreachable" && (
        <div className="error" role="alert" data-testid="ops-unreachable">
          Prometheus is unreachable ({page.message}); retrying every {REFRESH_MS / 1000} s.
        </div>
      )}
      {base && (
        <div className="ops-grid">
          {CHARTS.map((c) => (
            <OpsChart key={c.id} spec={c} state={charts[c.id]} />
          ))}
        </div>
      )}
    </main>
  );
}
