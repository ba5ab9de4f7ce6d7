// Market data from the feed: one combined WebSocket per symbol (depth diffs, trades, the chart's klines, the 24h
// ticker) with automatic reconnect; the local book follows the snapshot + diff procedure of lib/book.ts and is
// rebuilt on a gap, a checksum mismatch or a new connection. Updates reach the store once per animation frame.

import { getJson, errorText, type UiConfig } from "./lib/api";
import { BookFollower, type DepthDiff, type DepthSnapshot } from "./lib/book";
import { flushSync } from "react-dom";
import { markArrival, setInFrame } from "./lib/perf";
import type { Candle, Kline, Ticker, Trade } from "./lib/types";
import { useMarket, type Interval } from "./store";

export const BOOK_LEVELS = 200; // published to the store: the ladder groups them
const TRADES_KEPT = 60;

let config: UiConfig | null = null;
let socket: WebSocket | null = null;
let follower: BookFollower | null = null;
let connection = 0; // bumps on every (re)connect: late callbacks of an old one are ignored
let retryDelay = 500;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let trades: Trade[] = [];
let pendingTrades: Trade[] = [];
let dirty = false;
let frame = 0;

type CandleListener = (candle: Candle, replace: Candle[] | null) => void;
const candleListeners = new Set<CandleListener>();

export function onCandles(listener: CandleListener): () => void {
  candleListeners.add(listener);
  return () => candleListeners.delete(listener);
}

export function marketConfig(): UiConfig | null {
  return config;
}

export async function loadConfig(): Promise<UiConfig> {
  const params = new URLSearchParams(location.search);
  const fromQuery = params.get("marketRest") && params.get("marketWs");
  const loaded: UiConfig = fromQuery
    ? { marketRest: params.get("marketRest") as string, marketWs: params.get("marketWs") as string }
    : await getJson<UiConfig>("/ui-config.json");
  // ?prometheus=... / ?research=... win over the served config; an empty value switches that part off
  for (const key of ["prometheus", "research"] as const) {
    const v = params.get(key);
    if (v !== null) loaded[key] = v || undefined;
    if (!loaded[key]) delete loaded[key];
  }
  config = loaded;
  return config;
}

function schedule(): void {
  dirty = true;
  if (frame === 0) frame = requestAnimationFrame(flush);
}

/** Publish what changed since the last frame: the top of the book and the newest trades. */
function flush(): void {
  frame = 0;
  if (!dirty) return;
  dirty = false;
  const patch: Partial<ReturnType<typeof useMarket.getState>> = {};
  if (follower) {
    patch.bookState = follower.state;
    patch.resyncs = follower.resyncs;
    if (follower.state === "live") {
      patch.bids = follower.book.bids(BOOK_LEVELS);
      patch.asks = follower.book.asks(BOOK_LEVELS);
      patch.bookUpdateId = follower.book.updateId;
    }
  }
  if (pendingTrades.length > 0) {
    trades = [...pendingTrades.reverse(), ...trades].slice(0, TRADES_KEPT);
    pendingTrades = [];
    patch.trades = trades;
  }
  // committed inside this animation frame, so that it is painted in this frame rather than the next one
  setInFrame(true);
  try {
    flushSync(() => useMarket.setState(patch));
  } finally {
    setInFrame(false);
  }
}

/** The whole book's levels (for the depth chart), not only what the ladder shows. */
export function fullBook(levels: number): { bids: [string, string][]; asks: [string, string][] } {
  if (!follower || follower.state !== "live") return { bids: [], asks: [] };
  return { bids: follower.book.bids(levels), asks: follower.book.asks(levels) };
}

function toCandle(k: Kline): Candle {
  return { time: k[0] / 1000, open: +k[1], high: +k[2], low: +k[3], close: +k[4], volume: +k[5] };
}

async function loadHistory(id: number, symbol: string, interval: Interval): Promise<void> {
  if (!config) return;
  const rest = config.marketRest;
  const [klines, recent, ticker] = await Promise.all([
    getJson<Kline[]>(`${rest}/api/v3/klines?symbol=${symbol}&interval=${interval}&limit=500`),
    getJson<{ id: number; price: string; qty: string; time: number; isBuyerMaker: boolean }[]>(
      `${rest}/api/v3/trades?symbol=${symbol}&limit=${TRADES_KEPT}`,
    ),
    getJson<Ticker>(`${rest}/api/v3/ticker/24hr?symbol=${symbol}`),
  ]);
  if (id !== connection) return;
  const candles = klines.map(toCandle);
  const last = candles[candles.length - 1];
  if (last) for (const l of candleListeners) l(last, candles);
  trades = recent.map((t) => ({ id: t.id, price: t.price, qty: t.qty, time: t.time, isBuyerMaker: t.isBuyerMaker })).reverse();
  // a trade that arrived on the stream before this answer stays, once
  const known = new Set(trades.map((t) => t.id));
  trades = [...pendingTrades.filter((t) => !known.has(t.id)).reverse(), ...trades].slice(0, TRADES_KEPT);
  pendingTrades = [];
  useMarket.setState({ trades, ticker, error: null });
}

function onMessage(id: number, raw: string): void {
  if (id !== connection) return;
  const msg = JSON.parse(raw) as { stream?: string; data?: Record<string, unknown> };
  if (!msg.stream || !msg.data) return;
  const data = msg.data;
  const kind = msg.stream.slice(msg.stream.indexOf("@") + 1);
  if (kind.startsWith("depth")) {
    markArrival("book");
    follower?.push(data as unknown as DepthDiff);
    schedule();
  } else if (kind === "trade") {
    markArrival("trade");
    pendingTrades.push({
      id: Number(data.t),
      price: String(data.p),
      qty: String(data.q),
      time: Number(data.T),
      isBuyerMaker: Boolean(data.m),
    });
    schedule();
  } else if (kind.startsWith("kline_")) {
    const k = data.k as { t: number; o: string; h: string; l: string; c: string; v: string };
    const candle = { time: k.t / 1000, open: +k.o, high: +k.h, low: +k.l, close: +k.c, volume: +k.v };
    for (const l of candleListeners) l(candle, null);
  } else if (kind === "ticker") {
    const t = data as Record<string, string>;
    useMarket.setState({
      ticker: {
        lastPrice: t.c ?? "0",
        priceChangePercent: t.P ?? "0",
        highPrice: t.h ?? "0",
        lowPrice: t.l ?? "0",
        volume: t.v ?? "0",
        quoteVolume: t.q ?? "0",
      },
    });
  }
}

/** (Re)connect to the feed for the store's symbol and interval; called on start, on a change, and on a drop. */
export function connectMarket(): void {
  if (!config) return;
  clearTimeout(retryTimer);
  const id = ++connection;
  const { symbol, interval } = useMarket.getState();
  const s = symbol.toLowerCase();
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  trades = [];
  pendingTrades = [];
  const rest = config.marketRest;
  follower = new BookFollower(
    symbol,
    () => getJson<DepthSnapshot>(`${rest}/api/v3/depth?symbol=${symbol}&limit=1000`),
    () => schedule(),
    (reason) => {
      console.info(`book resync: ${reason}`);
      schedule();
    },
  );
  useMarket.setState({ bookState: "waiting", bids: [], asks: [], trades: [], ticker: null, bookUpdateId: 0 });
  const streams = [`${s}@depth@100ms`, `${s}@trade`, `${s}@kline_${interval}`, `${s}@ticker`].join("/");
  const ws = new WebSocket(`${config.marketWs}/stream?streams=${streams}`);
  socket = ws;
  useMarket.setState({ marketConn: retryDelay > 500 ? "reconnecting" : "connecting" });
  ws.onopen = () => {
    if (id !== connection) return;
    retryDelay = 500;
    useMarket.setState({ marketConn: "live" });
    follower?.start();
    loadHistory(id, symbol, interval).catch((err: unknown) => {
      if (id === connection) useMarket.setState({ error: `market data: ${errorText(err)}` });
    });
  };
  ws.onmessage = (event: MessageEvent<string>) => onMessage(id, event.data);
  ws.onclose = () => {
    if (id !== connection) return;
    useMarket.setState({ marketConn: "reconnecting" });
    retryTimer = setTimeout(connectMarket, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10_000);
  };
  ws.onerror = () => {}; // onclose follows and reconnects
}

export function selectMarket(symbol: string, interval: Interval): void {
  useMarket.setState({ symbol, interval });
  connectMarket();
}
