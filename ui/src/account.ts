// The signed-in account: API key and secret (kept in sessionStorage, the secret only ever given to WebCrypto),
// its balances, open orders, order history and fills from REST, then kept live from the user data stream of the
// gateway's WebSocket API (userDataStream.subscribe.signature); on a reconnect the REST state is read again.

import { ApiError, errorText, signed, type Credentials } from "./lib/api";
import { signWsParams } from "./lib/sign";
import type { Account, AccountPosition, ExecutionReport, MyTrade, Order, OrderDraft } from "./lib/types";
import { useAccount, useMarket } from "./store";

const STORAGE = "mercury.credentials";
const HISTORY = 50;

let socket: WebSocket | null = null;
let session = 0;
let retryDelay = 500;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let requestId = 0;

function creds(): Credentials {
  const c = useAccount.getState().creds;
  if (!c) throw new ApiError(-2014, "Sign in first.", 0);
  return c;
}

export async function refreshAccount(): Promise<void> {
  const c = creds();
  const symbol = useMarket.getState().symbol;
  const [account, open, orders, fills] = await Promise.all([
    signed<Account>(c, "GET", "/api/v3/account"),
    signed<Order[]>(c, "GET", "/api/v3/openOrders", { symbol }),
    signed<Order[]>(c, "GET", "/api/v3/allOrders", { symbol, limit: HISTORY }),
    signed<MyTrade[]>(c, "GET", "/api/v3/myTrades", { symbol, limit: HISTORY }),
  ]);
  useAccount.setState({
    balances: account.balances,
    openOrders: open.sort((a, b) => b.orderId - a.orderId),
    orders: orders.sort((a, b) => b.orderId - a.orderId).slice(0, HISTORY),
    fills: fills.sort((a, b) => b.id - a.id).slice(0, HISTORY),
  });
}

export async function signIn(apiKey: string, secret: string): Promise<boolean> {
  const c = { apiKey: apiKey.trim(), secret: secret.trim() };
  useAccount.setState({ signingIn: true, signInError: null });
  try {
    await signed<Account>(c, "GET", "/api/v3/account"); // a wrong key or secret is told here
  } catch (err) {
    useAccount.setState({ signingIn: false, signInError: errorText(err) });
    return false;
  }
  sessionStorage.setItem(STORAGE, JSON.stringify(c));
  useAccount.setState({ creds: c, signingIn: false, signInError: null });
  await refreshAccount().catch((err: unknown) => notify("error", errorText(err)));
  connectUserStream();
  return true;
}

export function signOut(): void {
  sessionStorage.removeItem(STORAGE);
  session++;
  clearTimeout(retryTimer);
  if (socket) {
    socket.onclose = null;
    socket.close();
    socket = null;
  }
  useAccount.setState({ creds: null, userConn: "signed-out", balances: [], openOrders: [], orders: [], fills: [] });
}

export function restoreSession(): void {
  const saved = sessionStorage.getItem(STORAGE);
  if (!saved) return;
  try {
    const c = JSON.parse(saved) as Credentials;
    void signIn(c.apiKey, c.secret);
  } catch {
    sessionStorage.removeItem(STORAGE);
  }
}

export function notify(kind: "ok" | "error", text: string): void {
  useAccount.setState({ notice: { kind, text } });
}

function connectUserStream(): void {
  const c = useAccount.getState().creds;
  if (!c) return;
  const id = ++session;
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws-api/v3`);
  socket = ws;
  useAccount.setState({ userConn: retryDelay > 500 ? "reconnecting" : "connecting" });
  ws.onopen = async () => {
    const params = await signWsParams(c.secret, { apiKey: c.apiKey, timestamp: Date.now(), recvWindow: 10000 });
    if (id !== session) return;
    ws.send(JSON.stringify({ id: `sub-${++requestId}`, method: "userDataStream.subscribe.signature", params }));
  };
  ws.onmessage = (message: MessageEvent<string>) => {
    if (id !== session) return;
    const msg = JSON.parse(message.data) as {
      id?: string;
      status?: number;
      error?: { code: number; msg: string };
      event?: ExecutionReport | AccountPosition | { e: string };
    };
    if (msg.id !== undefined) {
      if (msg.status === 200) {
        retryDelay = 500;
        useAccount.setState({ userConn: "live" });
        refreshAccount().catch((err: unknown) => notify("error", errorText(err))); // what happened while away
      } else if (msg.error) {
        notify("error", `user data stream: ${msg.error.code} ${msg.error.msg}`);
      }
      return;
    }
    if (msg.event) onEvent(msg.event);
  };
  ws.onclose = () => {
    if (id !== session) return;
    useAccount.setState({ userConn: "reconnecting" });
    retryTimer = setTimeout(connectUserStream, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10_000);
  };
  ws.onerror = () => {};
}

function orderOf(r: ExecutionReport, previous: Order | undefined): Order {
  return {
    symbol: r.s,
    orderId: r.i,
    clientOrderId: r.x === "CANCELED" && r.C ? r.C : r.c,
    price: r.p,
    origQty: r.q,
    executedQty: r.z,
    cummulativeQuoteQty: r.Z,
    status: r.X,
    timeInForce: r.f,
    type: r.o,
    side: r.S,
    time: previous?.time ?? r.O,
    updateTime: r.E,
  };
}

function onEvent(event: ExecutionReport | AccountPosition | { e: string }): void {
  if (event.e === "outboundAccountPosition") {
    const changed = new Map((event as AccountPosition).B.map((b) => [b.a, { asset: b.a, free: b.f, locked: b.l }]));
    const balances = useAccount.getState().balances.map((b) => changed.get(b.asset) ?? b);
    for (const [asset, b] of changed) if (!balances.some((x) => x.asset === asset)) balances.push(b);
    useAccount.setState({ balances });
    return;
  }
  if (event.e !== "executionReport") return;
  const r = event as ExecutionReport;
  if (r.s !== useMarket.getState().symbol) return; // the tables show the selected symbol
  const state = useAccount.getState();
  const previous = state.orders.find((o) => o.orderId === r.i) ?? state.openOrders.find((o) => o.orderId === r.i);
  const order = orderOf(r, previous);
  const open = order.status === "NEW" || order.status === "PARTIALLY_FILLED";
  const openOrders = state.openOrders.filter((o) => o.orderId !== r.i);
  if (open) openOrders.unshift(order);
  const orders = [order, ...state.orders.filter((o) => o.orderId !== r.i)].slice(0, HISTORY);
  let fills = state.fills;
  if (r.x === "TRADE" && !fills.some((f) => f.id === r.t && f.orderId === r.i)) {
    const fill: MyTrade = {
      symbol: r.s,
      id: r.t,
      orderId: r.i,
      price: r.L,
      qty: r.l,
      commission: r.n,
      commissionAsset: r.N ?? "",
      time: r.T,
      isBuyer: r.S === "BUY",
      isMaker: r.m,
    };
    fills = [fill, ...fills].slice(0, HISTORY);
  }
  useAccount.setState({
    openOrders: openOrders.sort((a, b) => b.orderId - a.orderId),
    orders: orders.sort((a, b) => b.orderId - a.orderId),
    fills,
  });
}

export async function placeOrder(d: OrderDraft): Promise<Order> {
  const { symbol } = useMarket.getState();
  const params: Record<string, string> = { symbol, side: d.side, quantity: d.quantity.trim() };
  if (d.kind === "MARKET") params.type = "MARKET";
  else if (d.kind === "LIMIT_MAKER") Object.assign(params, { type: "LIMIT_MAKER", price: d.price.trim() });
  else Object.assign(params, { type: "LIMIT", timeInForce: d.tif, price: d.price.trim() });
  params.newOrderRespType = "RESULT";
  return signed<Order>(creds(), "POST", "/api/v3/order", params);
}

export async function cancelOrder(order: Order): Promise<void> {
  await signed(creds(), "DELETE", "/api/v3/order", { symbol: order.symbol, orderId: order.orderId });
}

export async function cancelAll(): Promise<void> {
  await signed(creds(), "DELETE", "/api/v3/openOrders", { symbol: useMarket.getState().symbol });
}
