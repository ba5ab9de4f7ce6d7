// In-page latency probes for the benchmark (bench/ui.py): the time a WebSocket message arrived, and the time the
// book / trades it changed were committed to the DOM and then painted (the next animation frame after the
// commit: an upper bound). Off unless the page was opened with ?perf=1; then a plain array on window.

export interface PerfSample {
  kind: "book" | "trade";
  arrived: number;
  committed: number;
  painted: number;
}

interface Probe {
  samples: PerfSample[];
  frames: number[];
}

declare global {
  interface Window {
    __mercuryPerf?: Probe;
  }
}

export const perfOn = typeof location !== "undefined" && new URLSearchParams(location.search).has("perf");

const pending: Record<PerfSample["kind"], number[]> = { book: [], trade: [] };

if (perfOn) {
  const probe: Probe = { samples: [], frames: [] };
  window.__mercuryPerf = probe;
  const tick = (t: number): void => {
    probe.frames.push(t);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

export function markArrival(kind: PerfSample["kind"]): void {
  if (perfOn) pending[kind].push(performance.now());
}

/** Called in a layout effect once the component's DOM shows everything that arrived so far. */
export function markCommitted(kind: PerfSample["kind"]): void {
  if (!perfOn || pending[kind].length === 0) return;
  const arrivals = pending[kind];
  pending[kind] = [];
  const committed = performance.now();
  requestAnimationFrame(() => {
    const painted = performance.now();
    const probe = window.__mercuryPerf;
    if (probe) for (const arrived of arrivals) probe.samples.push({ kind, arrived, committed, painted });
  });
}
