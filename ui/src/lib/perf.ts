// In-page latency probes for the benchmark (bench/ui.py): the time a WebSocket message arrived, and the time the
// book / trades it changed were committed to the DOM and then painted. Off unless the page was opened with
// ?perf=1; then a plain array on window. "Painted" is the first task after the frame that shows the commit: a
// MessageChannel message posted during an animation frame callback runs after that frame's rendering (the
// "afterFrame" technique); a commit outside a frame callback waits for the next frame first.

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
let inFrame = false;

/** market.ts commits the stream's updates inside a requestAnimationFrame callback and says so here. */
export function setInFrame(value: boolean): void {
  inFrame = value;
}

function afterPaint(callback: () => void): void {
  const channel = new MessageChannel();
  channel.port1.onmessage = callback;
  channel.port2.postMessage(null);
}

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
  const record = (): void => {
    const painted = performance.now();
    const probe = window.__mercuryPerf;
    if (probe) for (const arrived of arrivals) probe.samples.push({ kind, arrived, committed, painted });
  };
  if (inFrame) afterPaint(record);
  else requestAnimationFrame(() => afterPaint(record));
}
