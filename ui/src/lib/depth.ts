/** What the depth chart draws: the cumulative size by price on each side, within a window around the mid price
 * that both sides reach, so that one far order (an ask ten percent away, say) does not squeeze the book near the
 * touch into a sliver of the chart. */

export type Level = [string, string];
export type Point = [number, number];

export interface Depth {
  bids: Point[]; // best first, as the chart draws them from the mid outwards (reversed for the line)
  asks: Point[];
  min: number | undefined;
  max: number | undefined;
}

const MIN_HALF_WIDTH = 0.001; // of the mid price: the window is never narrower than 0.1% each side

function cumulative(levels: Level[], inside: (price: number) => boolean): Point[] {
  let total = 0;
  const out: Point[] = [];
  for (const [p, q] of levels) {
    const price = Number(p);
    if (!inside(price)) break; // levels come best first: the rest are further out
    total += Number(q);
    out.push([price, total]);
  }
  return out;
}

/** The chart's data from ``bids`` and ``asks`` (best first): the window is the mid plus or minus the smaller of
 * the two sides' reach (the other side is cut there), or the one side's reach when the other is empty. */
export function depthOf(bids: Level[], asks: Level[]): Depth {
  const bestBid = bids[0];
  const bestAsk = asks[0];
  const lastBid = bids[bids.length - 1];
  const lastAsk = asks[asks.length - 1];
  let mid: number;
  if (bestBid && bestAsk) mid = (Number(bestBid[0]) + Number(bestAsk[0])) / 2;
  else if (bestBid) mid = Number(bestBid[0]);
  else if (bestAsk) mid = Number(bestAsk[0]);
  else return { bids: [], asks: [], min: undefined, max: undefined };
  const bidReach = lastBid ? mid - Number(lastBid[0]) : Infinity;
  const askReach = lastAsk ? Number(lastAsk[0]) - mid : Infinity;
  const half = Math.max(Math.min(bidReach, askReach), mid * MIN_HALF_WIDTH);
  const low = mid - half;
  const high = mid + half;
  return {
    bids: cumulative(bids, (p) => p >= low),
    asks: cumulative(asks, (p) => p <= high),
    min: low,
    max: high,
  };
}
