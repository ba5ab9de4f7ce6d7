import { describe, expect, it } from "vitest";
import { hmacSha256Hex, queryString, signQuery, signWsParams, wsPayload } from "../src/lib/sign";

// Vectors computed in Python: hmac.new(secret, payload, hashlib.sha256).hexdigest()
describe("HMAC-SHA256 signing", () => {
  it("matches Binance's documented example", async () => {
    const secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const payload =
      "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
    expect(await hmacSha256Hex(secret, payload)).toBe("c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
  });

  it("signs the exact query string it sends, in insertion order and percent-encoded", async () => {
    const params = { symbol: "LTCBTC", side: "BUY", type: "LIMIT", timeInForce: "GTC", quantity: "1", price: "0.1", recvWindow: 5000, timestamp: 1499827319559 };
    const signed = await signQuery("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j", params);
    expect(signed).toBe(
      "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559" +
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
    );
  });

  it("covers the encoded text, and UTF-8 secrets", async () => {
    const query = queryString({ newClientOrderId: "a/b:c", quantity: "0.01", symbol: "BTCUSDT", skipped: undefined });
    expect(query).toBe("newClientOrderId=a%2Fb%3Ac&quantity=0.01&symbol=BTCUSDT");
    expect(await hmacSha256Hex("s3cré t".replace(" ", ""), query)).toBe(
      "61fa25479f9d8d3fa97b3e42e3f12b7a4b3360a60760b9a83511ddf39b77b699",
    );
  });

  it("signs WebSocket API params sorted by name, without the signature", async () => {
    const params = { timestamp: 1700000000000, apiKey: "abc", recvWindow: 10000 };
    expect(wsPayload({ ...params, signature: "x" })).toBe("apiKey=abc&recvWindow=10000&timestamp=1700000000000");
    const signed = await signWsParams("secret", params);
    expect(signed.signature).toBe("8090539d7a914091165f2b7db3fff619a23d35e8d7448e3c3004705c3bf5be26");
    expect(signed.apiKey).toBe("abc");
  });
});
