// REST calls: the gateway (same origin: signed trading calls) and the market-data feed (its URL from
// /ui-config.json). Errors come back as ApiError with the server's {"code","msg"}.

import { signQuery, type Params } from "./sign";

export class ApiError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly status: number,
  ) {
    super(msg);
    this.name = "ApiError";
  }
  /** As the venue says it: "-2015 Invalid API-key, IP, or permissions for action." */
  get display(): string {
    return `${this.code} ${this.message}`;
  }
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.display;
  if (err instanceof Error) return err.message;
  return String(err);
}

async function answer<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(-1, `HTTP ${response.status}: ${text.slice(0, 200)}`, response.status);
  }
  if (!response.ok) {
    const e = body as { code?: number; msg?: string } | null;
    throw new ApiError(e?.code ?? -1, e?.msg ?? `HTTP ${response.status}`, response.status);
  }
  return body as T;
}

export interface UiConfig {
  marketRest: string;
  marketWs: string;
  prometheus?: string; // Prometheus' HTTP API base (the Ops page); missing: not available
  research?: string; // the inference service's base (the Model panel); missing: not available
}

export async function getJson<T>(url: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new ApiError(-1, `cannot reach ${new URL(url, location.href).host}: ${String(err)}`, 0);
  }
  return answer<T>(response);
}

export interface Credentials {
  apiKey: string;
  secret: string;
}

export const RECV_WINDOW = 10000;

/** A signed gateway call: GET/DELETE in the query string, POST in a form body, as Binance. */
export async function signed<T>(
  creds: Credentials,
  method: "GET" | "POST" | "DELETE",
  path: string,
  params: Params = {},
): Promise<T> {
  const payload = await signQuery(creds.secret, { ...params, recvWindow: RECV_WINDOW, timestamp: Date.now() });
  const init: RequestInit = { method, headers: { "X-MBX-APIKEY": creds.apiKey } };
  let url = path;
  if (method === "POST") {
    init.body = payload;
    (init.headers as Record<string, string>)["Content-Type"] = "application/x-www-form-urlencoded";
  } else {
    url = `${path}?${payload}`;
  }
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(-1, `cannot reach the gateway: ${String(err)}`, 0);
  }
  return answer<T>(response);
}
