import { describe, expect, it } from "vitest";
import { parseBacktest, parseModel, parsePrediction, parseTime, ResearchError } from "../src/lib/research";

// research.model's metadata.json, trimmed
const metadata = {
  version: "3f2a9c1d0b7e",
  model: "logreg",
  symbol: "BTCUSDT",
  interval: "1m",
  evaluation: {
    rows: 1000,
    models: {
      majority: { accuracy: 0.5, backtest: { total_return: 0, trades: 0 } },
      logreg: { accuracy: 0.512, roc_auc: 0.507, backtest: { total_return: -0.031, sharpe: -0.8, max_drawdown: -0.06, trades: 412 } },
    },
    buy_and_hold: { total_return: 0.02, sharpe: 0.3, max_drawdown: -0.1, trades: 1 },
  },
};

describe("research answers", () => {
  it("reads the model's own backtest out of the evaluation, and buy-and-hold beside it", () => {
    const m = parseModel(metadata);
    expect(m).toMatchObject({ version: "3f2a9c1d0b7e", model: "logreg", symbol: "BTCUSDT", interval: "1m", accuracy: 0.512, rocAuc: 0.507 });
    expect(m.backtest).toEqual({ totalReturn: -0.031, sharpe: -0.8, maxDrawdown: -0.06, trades: 412 });
    expect(m.buyAndHold?.totalReturn).toBe(0.02);
  });

  it("reads research/serve.py's answers", () => {
    // /api/v1/model: the metadata with backtest_summary by candidate; /api/v1/predict
    const summary = { majority: { total_return: 0, trades: 0 }, logreg: { total_return: -0.031, trades: 412 } };
    const m = parseModel({ ...metadata, evaluation: undefined, backtest_summary: summary });
    expect(m.backtest).toEqual({ totalReturn: -0.031, sharpe: null, maxDrawdown: null, trades: 412 });
    const p = parsePrediction({ symbol: "BTCUSDT", interval: "1m", model: "3f2a9c1d0b7e", as_of_open_time: 1_765_000_000_000,
      for_open_time: 1_765_000_060_000, p_up: 0.4821, direction: "DOWN", klines_used: 200 });  // prettier-ignore
    expect(p).toEqual({ direction: "down", probabilityUp: 0.4821, version: "3f2a9c1d0b7e", asOf: 1_765_000_000_000, horizon: "1m" });
  });

  it("reads a wrapped metadata or a flat summary", () => {
    expect(parseModel({ metadata }).backtest?.trades).toBe(412);
    const flat = parseModel({ model_version: "v1", backtest_summary: { total_return: "0.1", sharpe: 1.2, accuracy: 0.6 } });
    expect(flat.version).toBe("v1");
    expect(flat.backtest).toEqual({ totalReturn: 0.1, sharpe: 1.2, maxDrawdown: null, trades: null });
    expect(flat.accuracy).toBe(0.6);
    expect(parseModel({})).toMatchObject({ version: null, backtest: null, buyAndHold: null });
    expect(parseBacktest("nope")).toBeNull();
  });

  it("reads a prediction in its different spellings", () => {
    expect(parsePrediction({ symbol: "BTCUSDT", direction: "up", probability_up: 0.57, model_version: "v", as_of: 1_700_000_000_000, interval: "1m" }))
      .toEqual({ direction: "up", probabilityUp: 0.57, version: "v", asOf: 1_700_000_000_000, horizon: "1m" });
    // a probability of the predicted direction, seconds, ISO times, a signal of -1
    expect(parsePrediction({ direction: "DOWN", probability: 0.6 }).probabilityUp).toBeCloseTo(0.4);
    expect(parsePrediction({ prob_up: 0.7 }).direction).toBe("up");
    expect(parsePrediction({ prediction: { signal: -1 }, version: "w" })).toMatchObject({ direction: "down", version: "w" });
    expect(parsePrediction(null)).toEqual({ direction: null, probabilityUp: null, version: null, asOf: null, horizon: null });
    expect(parseTime(1_700_000_000)).toBe(1_700_000_000_000);
    expect(parseTime(1_700_000_000_123)).toBe(1_700_000_000_123);
    expect(parseTime(1_700_000_000_123_456)).toBe(1_700_000_000_123); // µs
    expect(parseTime(1_700_000_000_123_456_789)).toBe(1_700_000_000_123); // ns, as research/serve.py answers
    expect(parseTime("2026-12-06T03:00:00Z")).toBe(Date.parse("2026-12-06T03:00:00Z"));
    expect(parseTime("later")).toBeNull();
  });

  it("treats 503 as no model yet, other failures as errors", () => {
    expect(new ResearchError(503, 503, "no model").noModel).toBe(true);
    expect(new ResearchError(404, -1121, "Invalid symbol.").noModel).toBe(false);
    expect(new ResearchError(0, null, "cannot reach").noModel).toBe(false);
  });
});
