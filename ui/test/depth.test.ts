import { describe, expect, it } from "vitest";
import { depthOf } from "../src/lib/depth";

describe("the depth chart's window", () => {
  it("is the mid plus or minus the shorter reach, so a far order does not squeeze the touch", () => {
    const bids: [string, string][] = [["99", "1"], ["98", "2"], ["97", "1"]];
    const asks: [string, string][] = [["101", "1"], ["102", "1"], ["150", "5"]]; // one far ask
    const d = depthOf(bids, asks);
    expect([d.min, d.max]).toEqual([97, 103]); // mid 100, the bids reach 3
    expect(d.bids).toEqual([[99, 1], [98, 3], [97, 4]]); // cumulative from the touch
    expect(d.asks).toEqual([[101, 1], [102, 2]]); // the far ask is outside the window
  });

  it("takes the one side's reach when the other is empty, and is never narrower than 0.1% of the mid", () => {
    expect(depthOf([], [["10", "1"], ["12", "1"]])).toMatchObject({ min: 8, max: 12 });
    const tight = depthOf([["99.99", "1"]], [["100.01", "1"]]);
    expect(tight.min).toBeCloseTo(99.9);
    expect(tight.max).toBeCloseTo(100.1);
    expect(depthOf([], [])).toEqual({ bids: [], asks: [], min: undefined, max: undefined });
  });
});
