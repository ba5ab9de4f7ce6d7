// Binance's shapes, as much of them as the UI reads.

import { compare, decimalsOf, formatFixed, isMultipleOf, multiply } from "./decimal";

export interface Filter {
  filterType: string;
  [field: string]: unknown;
}

export interface SymbolInfo {
  symbol: string;
  baseAsset: string;
  quoteAsset: string;
  baseAssetPrecision: number;
  quotePrecision: number;
  filters: Filter[];
}

export interface ExchangeInfo {
  serverTime: number;
  symbols: SymbolInfo[];
}

/** What the UI needs of a symbol: its grids and limits as exact strings, and the places to show. */
export interface SymbolSpec {
  symbol: string;
  base: string;
  quote: string;
  tickSize: string;
  stepSize: string;
  minQty: string;
  maxQty: string;
  minPrice: string;
  maxPrice: string;
  minNotional: string;
  priceDecimals: number;
  qtyDecimals: number;
  quoteDecimals: number;
}

function filter(info: SymbolInfo, type: string): Filter {
  return info.filters.find((f) => f.filterType === type) ?? { filterType: type };
}

/** A decimal without its trailing zeros ("0.01000000" -> "0.01", "5.00000000" -> "5"); anything unparsable as sent. */
function trimmed(text: string): string {
  return formatFixed(text, decimalsOf(text));
}

export function specOf(info: SymbolInfo): SymbolSpec {
  const price = filter(info, "PRICE_FILTER");
  const lot = filter(info, "LOT_SIZE");
  const notional = filter(info, "NOTIONAL");
  // the venue pads every number to its asset's decimals, as Binance does ("0.01000000"): shown and checked at the
  // tick's and the step's own places ("0.01"), which is what a hint or an error message should say
  const tickSize = trimmed(String(price.tickSize ?? "0.01"));
  const stepSize = trimmed(String(lot.stepSize ?? "0.00001"));
  const priceDecimals = decimalsOf(tickSize);
  return {
    symbol: info.symbol,
    base: info.baseAsset,
    quote: info.quoteAsset,
    tickSize,
    stepSize,
    minQty: trimmed(String(lot.minQty ?? stepSize)),
    maxQty: String(lot.maxQty ?? "1e12"),
    minPrice: trimmed(String(price.minPrice ?? tickSize)),
    maxPrice: String(price.maxPrice ?? "1e12"),
    minNotional: String(notional.minNotional ?? "0"),
    priceDecimals,
    qtyDecimals: decimalsOf(stepSize),
    quoteDecimals: Math.min(info.quotePrecision, Math.max(priceDecimals, 2)),
  };
}

export type OrderKind = "LIMIT" | "MARKET" | "LIMIT_MAKER";
export type TimeInForce = "GTC" | "IOC" | "FOK";

export interface OrderDraft {
  side: "BUY" | "SELL";
  kind: OrderKind;
  tif: TimeInForce;
  price: string;
  quantity: string;
}

/** The symbol's filters checked in the browser, with Binance's filter names; null when the draft passes. */
export function checkDraft(spec: SymbolSpec, d: OrderDraft, lastPrice: string | null): string | null {
  const qty = d.quantity.trim();
  if (!/^\d+(\.\d+)?$/.test(qty)) return "Enter a quantity.";
  if (!isMultipleOf(qty, spec.stepSize)) return `LOT_SIZE: quantity must be a multiple of ${spec.stepSize}.`;
  if (compare(qty, spec.minQty) < 0) return `LOT_SIZE: quantity below the minimum ${spec.minQty}.`;
  if (compare(qty, spec.maxQty) > 0) return `LOT_SIZE: quantity above the maximum ${spec.maxQty}.`;
  let price: string | null = null;
  if (d.kind !== "MARKET") {
    price = d.price.trim();
    if (!/^\d+(\.\d+)?$/.test(price)) return "Enter a price.";
    if (!isMultipleOf(price, spec.tickSize)) return `PRICE_FILTER: price must be a multiple of ${spec.tickSize}.`;
    if (compare(price, spec.minPrice) < 0) return `PRICE_FILTER: price below ${spec.minPrice}.`;
    if (compare(price, spec.maxPrice) > 0) return `PRICE_FILTER: price above ${spec.maxPrice}.`;
  } else {
    price = lastPrice;
  }
  if (price !== null && compare(multiply(price, qty), spec.minNotional) < 0) {
    return `NOTIONAL: order value below the minimum ${spec.minNotional} ${spec.quote}.`;
  }
  return null;
}

export interface Order {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  price: string;
  origQty: string;
  executedQty: string;
  cummulativeQuoteQty?: string;
  status: string;
  timeInForce: string;
  type: string;
  side: string;
  time: number;
  updateTime: number;
}

export interface MyTrade {
  symbol: string;
  id: number;
  orderId: number;
  price: string;
  qty: string;
  commission: string;
  commissionAsset: string;
  time: number;
  isBuyer: boolean;
  isMaker: boolean;
}

export interface Balance {
  asset: string;
  free: string;
  locked: string;
}

export interface Account {
  balances: Balance[];
}

export interface Trade {
  id: number;
  price: string;
  qty: string;
  time: number;
  isBuyerMaker: boolean;
}

export interface Ticker {
  lastPrice: string;
  priceChangePercent: string;
  highPrice: string;
  lowPrice: string;
  volume: string;
  quoteVolume: string;
}

export interface Candle {
  time: number; // open time, seconds
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export type Kline = [number, string, string, string, string, string, ...unknown[]];

export interface ExecutionReport {
  e: "executionReport";
  E: number;
  s: string;
  c: string;
  C?: string;
  S: string;
  o: string;
  f: string;
  q: string;
  p: string;
  x: string;
  X: string;
  i: number;
  l: string;
  z: string;
  L: string;
  n: string;
  N: string | null;
  T: number;
  t: number;
  m: boolean;
  O: number;
  Z?: string;
  r?: string;
}

export interface AccountPosition {
  e: "outboundAccountPosition";
  E: number;
  B: { a: string; f: string; l: string }[];
}
