import { describe, expect, it } from "vitest";
import { compare, decimalsOf, formatFixed, groupThousands, isMultipleOf, multiply, parseDec } from "../src/lib/decimal";
import { checkDraft, specOf, type SymbolInfo } from "../src/lib/types";
import { fmtPrice, fmtQty } from "../src/format";
import { aggregate } from "../src/lib/aggregate";

const BTCUSDT: SymbolInfo = {
  symbol: "BTCUSDT",
  baseAsset: "BTC",
  quoteAsset: "USDT",
  baseAssetPrecision: 8,
  quotePrecision: 8,
  filters: [
    // as Mercury's exchangeInfo writes them: padded to the assets' 8 decimals, like Binance's
    { filterType: "PRICE_FILTER", minPrice: "0.01000000", maxPrice: "10000000.00000000", tickSize: "0.01000000" },
    { filterType: "LOT_SIZE", minQty: "0.00001000", maxQty: "9000.00000000", stepSize: "0.00001000" },
    { filterType: "NOTIONAL", minNotional: "5.00000000" },
  ],
};
const ETHBTC: SymbolInfo = {
  ...BTCUSDT,
  symbol: "ETHBTC",
  baseAsset: "ETH",
  quoteAsset: "BTC",
  filters: [
    { filterType: "PRICE_FILTER", minPrice: "0.00001", maxPrice: "100", tickSize: "0.00001000" },
    { filterType: "LOT_SIZE", minQty: "0.001", maxQty: "100000", stepSize: "1E-3" },
    { filterType: "NOTIONAL", minNotional: "0.0001" },
  ],
};

describe("decimals", () => {
  it("parses plain and exponent notation exactly", () => {
    expect(parseDec("123.450")).toEqual({ units: 123450n, scale: 3 });
    expect(parseDec("1E-7")).toEqual({ units: 1n, scale: 7 });
    expect(parseDec("-2.5e2")).toEqual({ units: -250n, scale: 0 });
    expect(parseDec("abc")).toBeNull();
    expect(parseDec(".")).toBeNull();
  });
  it("counts a step's places, trailing zeros ignored", () => {
    expect(decimalsOf("0.01000000")).toBe(2);
    expect(decimalsOf("0.00001")).toBe(5);
    expect(decimalsOf("1E-3")).toBe(3);
    expect(decimalsOf("1.00000000")).toBe(0);
    expect(decimalsOf("10")).toBe(0);
  });
  it("formats to a fixed number of places, truncating, never through a float", () => {
    expect(formatFixed("50000.1", 2)).toBe("50000.10");
    expect(formatFixed("0.123456789", 5)).toBe("0.12345");
    expect(formatFixed("12345678901234567.89", 2)).toBe("12345678901234567.89");
    expect(formatFixed("-0.5", 0)).toBe("0");
    expect(formatFixed("-1.25", 1)).toBe("-1.2");
    expect(formatFixed(0.1 + 0.2, 2)).toBe("0.30");
    expect(groupThousands("1234567.891")).toBe("1,234,567.891");
    expect(groupThousands("999")).toBe("999");
  });
  it("checks grids and multiplies exactly", () => {
    expect(isMultipleOf("50000.01", "0.01")).toBe(true);
    expect(isMultipleOf("50000.015", "0.01")).toBe(false);
    expect(isMultipleOf("0.3", "0.1")).toBe(true); // 0.3 % 0.1 is not 0 in floats
    expect(multiply("50000.01", "0.0001")).toBe("5.000001");
    expect(compare("0.10", "0.1")).toBe(0);
    expect(compare("9.99", "10")).toBe(-1);
  });
});

describe("symbol precision", () => {
  const btc = specOf(BTCUSDT);
  const eth = specOf(ETHBTC);
  it("takes places from the tick and the step", () => {
    expect([btc.priceDecimals, btc.qtyDecimals]).toEqual([2, 5]);
    // padded filters are trimmed for the order entry's hints and the client-side errors
    expect([btc.tickSize, btc.stepSize, btc.minQty, btc.minPrice]).toEqual(["0.01", "0.00001", "0.00001", "0.01"]);
    expect([eth.priceDecimals, eth.qtyDecimals]).toEqual([5, 3]);
    expect(fmtPrice(btc, "50000")).toBe("50,000.00");
    expect(fmtQty(btc, "0.1")).toBe("0.10000");
    expect(fmtPrice(eth, "0.05")).toBe("0.05000");
    expect(fmtQty(eth, "12")).toBe("12.000");
    // the venue's padded strings are shown at the symbol's places, not the 8 decimals they are sent with
    expect(fmtPrice(btc, "50000.10000000")).toBe("50,000.10");
    expect(fmtQty(btc, "0.00023000")).toBe("0.00023");
  });
  it("checks an order against the filters before it is sent", () => {
    const limit = { side: "BUY" as const, kind: "LIMIT" as const, tif: "GTC" as const, price: "50000.00", quantity: "0.001" };
    expect(checkDraft(btc, limit, null)).toBeNull();
    expect(checkDraft(btc, { ...limit, price: "50000.005" }, null)).toMatch(/^PRICE_FILTER/);
    expect(checkDraft(btc, { ...limit, quantity: "0.000015" }, null)).toMatch(/^LOT_SIZE/);
    expect(checkDraft(btc, { ...limit, quantity: "0.00001" }, null)).toMatch(/^NOTIONAL/);
    expect(checkDraft(btc, { ...limit, quantity: "" }, null)).toBe("Enter a quantity.");
    expect(checkDraft(btc, { ...limit, kind: "MARKET", price: "" }, "50000")).toBeNull();
    expect(checkDraft(btc, { ...limit, kind: "MARKET", quantity: "0.00001" }, "50000")).toMatch(/^NOTIONAL/);
  });
});

describe("book grouping", () => {
  const bids: [string, string][] = [["50000.07", "0.10000"], ["50000.01", "0.20000"], ["49999.99", "0.00001"], ["49999.90", "1.00000"]];
  const asks: [string, string][] = [["50000.10", "0.50000"], ["50000.11", "0.25000"], ["50000.20", "0.00002"], ["50001.00", "3.00000"]];
  it("leaves levels alone at the tick", () => {
    expect(aggregate(bids, "0.01", "bid", 2, 5, 10)).toEqual(bids);
  });
  it("rounds bids down and asks up into buckets, summing exactly", () => {
    expect(aggregate(bids, "0.1", "bid", 2, 5, 10)).toEqual([["50000.00", "0.30000"], ["49999.90", "1.00001"]]);
    expect(aggregate(asks, "0.1", "ask", 2, 5, 10)).toEqual([["50000.10", "0.50000"], ["50000.20", "0.25002"], ["50001.00", "3.00000"]]);
    expect(aggregate(asks, "1", "ask", 2, 5, 1)).toEqual([["50001.00", "3.75002"]]);
    expect(aggregate(bids, "10", "bid", 2, 5, 10)).toEqual([["50000.00", "0.30000"], ["49990.00", "1.00001"]]);
  });
});
