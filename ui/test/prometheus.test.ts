import { describe, expect, it } from "vitest";
import {
  hasNonZero,
  lastValue,
  parseMatrix,
  PrometheusError,
  queryRangeUrl,
  rangeEnding,
  sampleValue,
  seriesName,
  toSeries,
} from "../src/lib/prometheus";

// the shape Prometheus 2.42 answers /api/v1/query_range with
const answer = {
  status: "success",
  data: {
    resultType: "matrix",
    result: [
      { metric: { consumer: "pg" }, values: [[1000, "0"], [1010, "12.5"], [1015, "NaN"]] },
      { metric: { consumer: "mongo" }, values: [[1005, "+Inf"], [1015, "3"]] },
    ],
  },
};

describe("prometheus parsing", () => {
  it("reads sample strings, NaN and infinities as gaps", () => {
    expect(sampleValue("1.5")).toBe(1.5);
    expect(sampleValue("0")).toBe(0);
    expect(sampleValue("NaN")).toBeNull();
    expect(sampleValue("+Inf")).toBeNull();
    expect(sampleValue("-Inf")).toBeNull();
  });

  it("parses a matrix and refuses error answers and other result types", () => {
    expect(parseMatrix(answer)).toHaveLength(2);
    const bad = { status: "error", errorType: "bad_data", error: 'parse error: unexpected "}"' };
    expect(() => parseMatrix(bad)).toThrow(/bad_data: parse error/);
    expect(() => parseMatrix(bad)).toThrow(PrometheusError);
    expect(() => parseMatrix({ status: "success", data: { resultType: "vector", result: [] } })).toThrow(/matrix/);
    expect(() => parseMatrix(null)).toThrow(/not JSON/);
  });

  it("puts every result on the step grid, with gaps where a step has no sample", () => {
    const line = { name: "persister", by: "consumer", expr: "max by (consumer) (mercury_persister_lag_events)" };
    const series = toSeries(line, parseMatrix(answer), 1000, 1015, 5);
    expect(series.map((s) => s.name)).toEqual(["persister pg", "persister mongo"]);
    expect(series[0]?.points).toEqual([[1_000_000, 0], [1_005_000, null], [1_010_000, 12.5], [1_015_000, null]]);
    expect(series[1]?.points).toEqual([[1_000_000, null], [1_005_000, null], [1_010_000, null], [1_015_000, 3]]);
    expect(lastValue(series[0]!)).toBe(12.5);
    expect(lastValue({ name: "x", points: [[0, null]] })).toBeNull();
  });

  it("names a series by its line, and by the label's value when asked", () => {
    expect(seriesName({ name: "processed", expr: "x" }, { job: "engine" })).toBe("processed");
    expect(seriesName({ name: "p", by: "consumer", expr: "x" }, {})).toBe("p");
  });

  it("tells non-zero data from an all-zero or empty chart", () => {
    expect(hasNonZero([])).toBe(false);
    expect(hasNonZero([{ name: "a", points: [[0, 0], [1, null]] }])).toBe(false);
    expect(hasNonZero([{ name: "a", points: [[0, 0]] }, { name: "b", points: [[0, 0.2]] }])).toBe(true);
  });

  it("aligns the range to the step and builds the query URL", () => {
    expect(rangeEnding(1_000_007_300, 900, 5)).toEqual({ start: 999_105, end: 1_000_005 });
    const url = new URL(queryRangeUrl("http://h/prometheus/", 'sum(rate(m{status="J"}[30s]))', 10, 20, 5));
    expect(url.pathname).toBe("/prometheus/api/v1/query_range");
    expect(url.searchParams.get("query")).toBe('sum(rate(m{status="J"}[30s]))');
    expect([url.searchParams.get("start"), url.searchParams.get("end"), url.searchParams.get("step")]).toEqual(["10", "20", "5"]);
  });
});
