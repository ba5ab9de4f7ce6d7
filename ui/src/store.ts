// The UI's state (zustand). Market data arrives much faster than the screen can change, so the stream handlers
// (market.ts) keep their own structures and publish here at most once per animation frame.

import { create } from "zustand";
import type { Level } from "./lib/book";
import type { Balance, MyTrade, Order, SymbolSpec, Ticker, Trade } from "./lib/types";
import type { Credentials, UiConfig } from "./lib/api";

export type ConnState = "connecting" | "live" | "reconnecting" | "offline";
export type BookState = "waiting" | "snapshot" | "live";

export const INTERVALS = ["1s", "1m", "5m", "15m", "1h"] as const;
export type Interval = (typeof INTERVALS)[number];

export interface MarketState {
  specs: SymbolSpec[];
  symbol: string;
  interval: Interval;
  marketConn: ConnState;
  bookState: BookState;
  bookUpdateId: number;
  resyncs: number;
  bids: Level[];
  asks: Level[];
  trades: Trade[];
  ticker: Ticker | null;
  error: string | null;
  picked: { price: string; at: number } | null; // a book row clicked: the order entry takes its price
  config: UiConfig | null; // /ui-config.json with the query's overrides, once loaded
}

export const useMarket = create<MarketState>(() => ({
  specs: [],
  symbol: "BTCUSDT",
  interval: "1m",
  marketConn: "connecting",
  bookState: "waiting",
  bookUpdateId: 0,
  resyncs: 0,
  bids: [],
  asks: [],
  trades: [],
  ticker: null,
  error: null,
  picked: null,
  config: null,
}));

export interface AccountState {
  creds: Credentials | null;
  userConn: ConnState | "signed-out";
  signingIn: boolean;
  signInError: string | null;
  balances: Balance[];
  openOrders: Order[];
  orders: Order[];
  fills: MyTrade[];
  notice: { kind: "ok" | "error"; text: string } | null;
}

export const useAccount = create<AccountState>(() => ({
  creds: null,
  userConn: "signed-out",
  signingIn: false,
  signInError: null,
  balances: [],
  openOrders: [],
  orders: [],
  fills: [],
  notice: null,
}));

export function currentSpec(): SymbolSpec | undefined {
  const { specs, symbol } = useMarket.getState();
  return specs.find((s) => s.symbol === symbol);
}
