// Exact decimal arithmetic on the strings the venue sends: a value is a BigInt of units of 10^-scale. No floats
// touch a price or a quantity that is shown, checked or sent; floats are used only to sort and to draw.

export interface Dec {
  units: bigint;
  scale: number;
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Parse "123.45", "-0.5", "1E-7"; null for anything that is not a finite decimal. */
export function parseDec(text: string): Dec | null {
  const m = DECIMAL.exec(text.trim());
  if (!m) return null;
  const [, sign = "", int = "", frac = "", exp = "0"] = m;
  if (int === "" && frac === "") return null;
  let digits = (int + frac).replace(/^0+(?=\d)/, "") || "0";
  let scale = frac.length - Number(exp);
  if (scale < 0) {
    digits += "0".repeat(-scale);
    scale = 0;
  }
  const units = BigInt(digits);
  return { units: sign === "-" ? -units : units, scale };
}

function rescale(d: Dec, scale: number): bigint {
  return scale >= d.scale ? d.units * 10n ** BigInt(scale - d.scale) : d.units / 10n ** BigInt(d.scale - scale);
}

/** Number of decimals a step such as "0.01000000" or "1E-5" stands for (trailing zeros ignored). */
export function decimalsOf(step: string): number {
  const d = parseDec(step);
  if (!d || d.units === 0n) return 0;
  let { units, scale } = d;
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  return scale;
}

/** The value with exactly `places` decimals, truncated toward zero (never rounded up past what was sent). */
export function formatFixed(value: string | number, places: number): string {
  const d = typeof value === "number" ? parseDec(value.toFixed(Math.min(places + 2, 20))) : parseDec(value);
  if (!d) return String(value);
  const units = rescale(d, places);
  const negative = units < 0n;
  const abs = (negative ? -units : units).toString().padStart(places + 1, "0");
  const text = places > 0 ? `${abs.slice(0, abs.length - places)}.${abs.slice(abs.length - places)}` : abs;
  return negative && units !== 0n ? `-${text}` : text;
}

/** Thousands separators for the integer part of a formatted decimal. */
export function groupThousands(text: string): string {
  const [int = "", frac] = text.split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

export function compare(a: string, b: string): number {
  const x = parseDec(a);
  const y = parseDec(b);
  if (!x || !y) throw new Error(`not a decimal: ${x ? b : a}`);
  const scale = Math.max(x.scale, y.scale);
  const d = rescale(x, scale) - rescale(y, scale);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export function isZero(text: string): boolean {
  const d = parseDec(text);
  return d !== null && d.units === 0n;
}

/** True when `value` is a whole multiple of `step` (the venue refuses, never rounds, a value off its grid). */
export function isMultipleOf(value: string, step: string): boolean {
  const v = parseDec(value);
  const s = parseDec(step);
  if (!v || !s || s.units === 0n) return false;
  const scale = Math.max(v.scale, s.scale);
  return rescale(v, scale) % rescale(s, scale) === 0n;
}

/** price * qty as an exact decimal string. */
export function multiply(a: string, b: string): string {
  const x = parseDec(a);
  const y = parseDec(b);
  if (!x || !y) throw new Error("not a decimal");
  const scale = x.scale + y.scale;
  return toText({ units: x.units * y.units, scale });
}

function toText(d: Dec): string {
  const negative = d.units < 0n;
  const abs = (negative ? -d.units : d.units).toString().padStart(d.scale + 1, "0");
  const body = d.scale > 0 ? `${abs.slice(0, abs.length - d.scale)}.${abs.slice(abs.length - d.scale)}` : abs;
  return negative ? `-${body}` : body;
}
