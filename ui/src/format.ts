// Numbers as the symbol's grids say: prices to the tick's places, quantities to the lot's, with separators.

import { formatFixed, groupThousands } from "./lib/decimal";
import type { SymbolSpec } from "./lib/types";

export function fmtPrice(spec: SymbolSpec | undefined, value: string | number): string {
  return groupThousands(formatFixed(value, spec?.priceDecimals ?? 2));
}

export function fmtQty(spec: SymbolSpec | undefined, value: string | number): string {
  return groupThousands(formatFixed(value, spec?.qtyDecimals ?? 5));
}

export function fmtAmount(value: string | number, places: number): string {
  return groupThousands(formatFixed(value, places));
}

export function fmtTime(ms: number): string {
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

export function fmtDateTime(ms: number): string {
  const d = new Date(ms);
  return `${d.toISOString().slice(5, 10)} ${d.toLocaleTimeString("en-GB", { hour12: false })}`;
}
