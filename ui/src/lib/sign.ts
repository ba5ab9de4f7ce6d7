// Binance's HMAC-SHA256 request signing, in the browser with WebCrypto: the lowercase hex HMAC of the exact
// query string (REST) or of the params sorted by name and joined k=v&... (WebSocket API). The secret never leaves
// this module except to WebCrypto; it is never sent.

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

export async function hmacSha256Hex(secret: string, payload: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(payload));
  let hex = "";
  for (const byte of new Uint8Array(mac)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

export type Params = Record<string, string | number | boolean | undefined>;

/** The query string as it will be sent, in the given order, percent-encoded as URLSearchParams does. */
export function queryString(params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, String(v));
  return q.toString();
}

/** REST: `<query>&signature=<hex of HMAC(query)>`. */
export async function signQuery(secret: string, params: Params): Promise<string> {
  const query = queryString(params);
  return `${query}&signature=${await hmacSha256Hex(secret, query)}`;
}

/** WebSocket API: the payload is every param but `signature`, sorted by name, joined k=v& without encoding. */
export function wsPayload(params: Params): string {
  return Object.keys(params)
    .filter((k) => k !== "signature" && params[k] !== undefined)
    .sort()
    .map((k) => `${k}=${String(params[k])}`)
    .join("&");
}

export async function signWsParams(secret: string, params: Params): Promise<Params> {
  return { ...params, signature: await hmacSha256Hex(secret, wsPayload(params)) };
}
