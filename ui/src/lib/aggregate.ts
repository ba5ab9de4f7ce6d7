// Book levels grouped into coarser price buckets (the ladder's "group" setting): bids round down to the bucket,
// asks round up, so a bucket never shows a better price than the levels in it. Exact: BigInt units throughout.

import type { Level } from "./book";
import { formatFixed, parseDec } from "./decimal";

function units(text: string, scale: number): bigint {
  const d = parseDec(text);
  if (!d) throw new Error(`not a decimal: ${text}`);
  return scale >= d.scale ? d.units * 10n ** BigInt(scale - d.scale) : d.units / 10n ** BigInt(d.scale - scale);
}

function text(u: bigint, scale: number): string {
  const s = u.toString().padStart(scale + 1, "0");
  return scale > 0 ? `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}` : s;
}

/**
 * Levels (best first) merged into buckets of `step` (a multiple of the tick), at most `limit` buckets.
 * Prices come back with `priceDecimals` places, quantities with `qtyDecimals`.
 */
export function aggregate(levels: Level[], step: string, side: "bid" | "ask", priceDecimals: number,
                          qtyDecimals: number, limit: number): Level[] {
  const ps = Math.max(priceDecimals, parseDec(step)?.scale ?? 0);
  const bucket = units(step, ps);
  const out: Level[] = [];
  let current: bigint | null = null;
  let total = 0n;
  const flush = () => {
    if (current !== null) out.push([formatFixed(text(current, ps), priceDecimals), text(total, qtyDecimals)]);
  };
  for (const [p, q] of levels) {
    const price = units(p, ps);
    let key = price - (((price % bucket) + bucket) % bucket);
    if (side === "ask" && key !== price) key += bucket;
    if (key !== current) {
      flush();
      if (out.length >= limit) return out;
      current = key;
      total = 0n;
    }
    total += units(q, qtyDecimals);
  }
  flush();
  return out.slice(0, limit);
}
