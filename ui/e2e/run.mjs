// End-to-end: the production UI in Debian's headless Chromium (Playwright with its executable path) against a
// real running exchange. tests/ui/test_ui.py starts the exchange, a feed and an order flow, then runs this with:
//   UI_URL (the gateway, e.g. http://127.0.0.1:8080), API_KEY, API_SECRET, CHROMIUM (the browser's path),
//   SCREENSHOTS (a directory; optional), RESEARCH_URL (the inference service for the Model panel; optional).
// Prints one line per step; exits 1 on the first failure, or if the page logged any unexpected console error.

import { askRunner, env, inBrowser, log, screenshots } from "./harness.mjs";

const base = env("UI_URL");
const key = env("API_KEY");
const secret = env("API_SECRET");
const shots = screenshots();
// RESTART_FEED=1 / RESTART_GATEWAY=1: the runner restarts the feed (the gateway) when asked "restart-feed"
// ("restart-gateway")

await inBrowser(async ({ page, allow }) => {
  const byTest = (id) => page.getByTestId(id);
  const number = (text) => Number(text.replace(/,/g, ""));

  // 1. load: the market view fills from the feed and keeps moving under the flow
  // ?research= (empty, unless RESEARCH_URL is set): no Model panel requests; the inference service is not part of
  // this exchange, and each refused request would be a console error (the Ops page's own test is e2e/ops.mjs)
  await page.goto(`${base}/ui/?research=${encodeURIComponent(process.env.RESEARCH_URL ?? "")}`);
  await page.waitForFunction(() => document.querySelector("[data-testid=status-market]")?.textContent?.includes("live"));
  await page.waitForSelector("[data-testid=orderbook][data-state=live]");
  await byTest("bid-row").first().waitFor();
  await byTest("ask-row").first().waitFor();
  const firstId = Number(await byTest("orderbook").getAttribute("data-update-id"));
  await page.waitForFunction(
    (id) => Number(document.querySelector("[data-testid=orderbook]")?.getAttribute("data-update-id")) > id,
    firstId,
  );
  log(`book live and moving (update id ${firstId} -> ${await byTest("orderbook").getAttribute("data-update-id")})`);
  const bestBid = number((await byTest("bid-row").first().locator(".price").textContent()) ?? "");
  const bestAsk = number((await byTest("ask-row").last().locator(".price").textContent()) ?? "");
  if (!(bestBid > 0 && bestAsk > bestBid)) throw new Error(`book not sane: bid ${bestBid} ask ${bestAsk}`);
  await byTest("trade-row").first().waitFor();
  const candles0 = Number(await byTest("candle-updates").textContent());
  await page.waitForFunction(
    (n) => Number(document.querySelector("[data-testid=candle-updates]")?.textContent) > n + 1,
    candles0,
  );
  log(`trades shown, candles moving (${await byTest("candle-updates").textContent()} updates), bid ${bestBid} ask ${bestAsk}`);
  await page.waitForFunction(() => !document.querySelector("[data-testid=last-price]")?.textContent?.includes("—"));
  const priceText = (await byTest("bid-row").first().locator(".price").textContent()) ?? "";
  if (!/^\d{1,3}(,\d{3})*\.\d{2}$/.test(priceText.replace("●", ""))) throw new Error(`price not at tick precision: ${priceText}`);
  await page.locator("[data-testid=depth] canvas").first().waitFor();
  // candles at 1s: history from REST again, then the open candle from the stream
  await byTest("interval-1s").click();
  await page.waitForSelector("[data-testid=orderbook][data-state=live]");
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=candle-updates]")?.textContent) > 3);
  log(`1s candles: ${await byTest("candle-updates").textContent()} updates`);
  if (shots) await page.screenshot({ path: `${shots}/market.png` });
  // the ladder grouped by 0.10: every bid and ask price on that grid
  await byTest("book-group").selectOption({ index: 1 });
  await page.waitForFunction(() => {
    const prices = [...document.querySelectorAll("[data-testid=bid-row], [data-testid=ask-row]")].map((r) => r.getAttribute("data-price") ?? "");
    return prices.length > 0 && prices.every((p) => /\.\d0$/.test(p));
  });
  log(`grouped by ${await byTest("book-group").inputValue()}: ${await byTest("bid-row").first().getAttribute("data-price")} best bid bucket`);
  await byTest("book-group").selectOption({ index: 0 });

  // 2. a wrong key is refused with the server's code and message
  allow([/status of 40[01]/]);
  await byTest("api-key").fill("not-a-key");
  await byTest("api-secret").fill("not-a-secret");
  await byTest("sign-in-button").click();
  const refusal = await byTest("sign-in-error").textContent();
  if (!/-20\d\d /.test(refusal ?? "")) throw new Error(`no clear refusal: ${refusal}`);
  log(`wrong key refused: ${refusal}`);
  allow([]);

  // 3. sign in
  await byTest("api-key").fill(key);
  await byTest("api-secret").fill(secret);
  await byTest("sign-in-button").click();
  await byTest("signed-in").waitFor();
  await page.waitForFunction(() => document.querySelector("[data-testid=status-account]")?.textContent?.includes("live"));
  await byTest("tab-balances").click();
  const btcBefore = number((await byTest("balance-BTC").getByTestId("free").textContent()) ?? "");
  const usdtBefore = number((await byTest("balance-USDT").getByTestId("free").textContent()) ?? "");
  log(`signed in; BTC ${btcBefore}, USDT ${usdtBefore}`);

  // 4. a client-side filter check: a price off the tick grid is stopped before it is sent
  await byTest("side-buy").click();
  await byTest("price").fill("1.001");
  await byTest("quantity").fill("0.01");
  await byTest("submit-order").click();
  const problem = await byTest("entry-problem").textContent();
  if (!problem?.startsWith("PRICE_FILTER")) throw new Error(`no filter message: ${problem}`);
  log(`filter checked in the browser: ${problem}`);

  // 5. a resting limit buy below the best bid: in open orders and in the book, then canceled
  // (clicking a level puts its price in the order entry)
  await byTest("bid-row").first().click();
  await page.waitForFunction(() => document.querySelector("[data-testid=price]")?.value !== "1.001");
  const picked = await byTest("price").inputValue();
  if (!/^\d+\.\d{2}$/.test(picked)) throw new Error(`clicking a level did not set the price: ${picked}`);
  const top = Number(picked);
  const limitPrice = (top - 0.03).toFixed(2);
  await byTest("price").fill(limitPrice);
  await byTest("quantity").fill("0.01");
  await byTest("tab-open").click();
  await byTest("submit-order").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=notice]")?.textContent?.includes("NEW"));
  const row = byTest("open-order").first();
  await row.waitFor();
  const rowText = await row.textContent();
  if (!rowText?.includes(Number(limitPrice).toLocaleString("en-US", { minimumFractionDigits: 2 }))) {
    throw new Error(`open order row does not show ${limitPrice}: ${rowText}`);
  }
  await page.locator(".book-row.bid .mine").first().waitFor();
  log(`limit buy ${limitPrice} open (${rowText}) and marked in the book`);
  if (shots) await page.screenshot({ path: `${shots}/open-order.png` });
  await row.getByTestId("cancel-order").click();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=open-order]").length === 0);
  await page.locator(".book-row.bid .mine").first().waitFor({ state: "detached" });
  await byTest("tab-history").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=history-order]")?.textContent?.includes("CANCELED"));
  log("canceled: gone from open orders and the book, CANCELED in the history");

  // 6. two resting orders, then cancel all
  await byTest("tab-open").click();
  const prices = [(top - 0.05).toFixed(2), (top - 0.06).toFixed(2)];
  for (const [i, p] of prices.entries()) {
    await byTest("price").fill(p);
    await byTest("submit-order").click();
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=open-order]").length === n, i + 1);
  }
  await byTest("cancel-all").click();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=open-order]").length === 0);
  log("cancel-all emptied the open orders");

  // 7. a post-only buy above the best ask would take: the server refuses it and its code and message are shown
  // (half a USDT above the best ask, so that it would still take if the book moves meanwhile)
  const ask = (Number(await byTest("ask-row").last().getAttribute("data-price")) + 0.5).toFixed(2);
  allow([/status of 400/]);
  await byTest("order-type").selectOption("LIMIT_MAKER");
  await byTest("price").fill(ask);
  await byTest("quantity").fill("0.001");
  await byTest("submit-order").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=notice]")?.textContent?.startsWith("Refused: -2010"));
  log(`post-only buy at ${ask}: ${await byTest("notice").textContent()}`);
  allow([]);

  // 8. a marketable order: the fill and the new balances
  await byTest("order-type").selectOption("MARKET");
  await byTest("quantity").fill("0.002");
  await byTest("submit-order").click();
  await page.waitForFunction(() => /FILLED|EXPIRED/.test(document.querySelector("[data-testid=notice]")?.textContent ?? ""));
  log(`market buy: ${await byTest("notice").textContent()}`);
  await byTest("tab-fills").click();
  await byTest("fill").first().waitFor();
  log(`fill shown: ${await byTest("fill").first().textContent()}`);
  await byTest("tab-balances").click();
  await page.waitForFunction(
    (before) => Number(document.querySelector("[data-testid=balance-BTC] [data-testid=free]")?.textContent?.replace(/,/g, "")) > before,
    btcBefore,
  );
  const btcAfter = number((await byTest("balance-BTC").getByTestId("free").textContent()) ?? "");
  const usdtAfter = number((await byTest("balance-USDT").getByTestId("free").textContent()) ?? "");
  if (!(usdtAfter < usdtBefore)) throw new Error(`USDT did not go down: ${usdtBefore} -> ${usdtAfter}`);
  log(`balances: BTC ${btcBefore} -> ${btcAfter}, USDT ${usdtBefore} -> ${usdtAfter}`);
  if (shots) await page.screenshot({ path: `${shots}/trading.png` });

  // 9. the feed restarts: the market status goes to reconnecting and back to live, the book is rebuilt
  if (process.env.RESTART_FEED === "1") {
    allow([/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/, /status of 503/]);
    const idBefore = Number(await byTest("orderbook").getAttribute("data-update-id"));
    const sawReconnecting = page.waitForFunction(
      () => document.querySelector("[data-testid=status-market]")?.textContent?.includes("reconnecting"),
      undefined,
      { timeout: 60_000 },
    );
    await askRunner("restart-feed");
    await sawReconnecting;
    await page.waitForFunction(() => document.querySelector("[data-testid=status-market]")?.textContent?.includes("live"), undefined, { timeout: 60_000 });
    await page.waitForFunction(
      (id) => {
        const book = document.querySelector("[data-testid=orderbook]");
        return book?.getAttribute("data-state") === "live" && Number(book.getAttribute("data-update-id")) > id;
      },
      idBefore,
      { timeout: 60_000 },
    );
    await byTest("bid-row").first().waitFor();
    log(`feed restarted: reconnected and resynced (book ${idBefore} -> ${await byTest("orderbook").getAttribute("data-update-id")})`);
    allow([]);
  }

  // 10. the gateway restarts: the account stream reconnects, subscribes again, and a new fill still arrives live
  if (process.env.RESTART_GATEWAY === "1") {
    allow([/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/, /status of 50[23]/]);
    const sawReconnecting = page.waitForFunction(
      () => document.querySelector("[data-testid=status-account]")?.textContent?.includes("reconnecting"),
      undefined,
      { timeout: 60_000 },
    );
    await askRunner("restart-gateway");
    await sawReconnecting;
    await page.waitForFunction(() => document.querySelector("[data-testid=status-account]")?.textContent?.includes("live"), undefined, { timeout: 60_000 });
    allow([]);
    await byTest("tab-balances").click();
    const btc = number((await byTest("balance-BTC").getByTestId("free").textContent()) ?? "");
    await byTest("side-sell").click();
    await byTest("order-type").selectOption("MARKET");
    await byTest("quantity").fill("0.001");
    await byTest("submit-order").click();
    await page.waitForFunction(
      (before) => Number(document.querySelector("[data-testid=balance-BTC] [data-testid=free]")?.textContent?.replace(/,/g, "")) < before,
      btc,
    );
    log(`gateway restarted: account stream live again; market sell moved BTC ${btc} -> ${number((await byTest("balance-BTC").getByTestId("free").textContent()) ?? "")}`);
  }

  // 11. another symbol, and a narrow screen
  // (the account's tables follow: no ETHUSDT fills, the BTCUSDT ones back after)
  await byTest("tab-fills").click();
  await byTest("symbol").selectOption("ETHUSDT");
  await page.waitForSelector("[data-testid=orderbook][data-state=live]");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=fill]").length === 0);
  const ethBid = (await byTest("bid-row").first().getAttribute("data-price")) ?? "";
  log(`ETHUSDT: book live (best bid ${ethBid}), no fills listed`);
  await byTest("symbol").selectOption("BTCUSDT");
  await page.waitForSelector("[data-testid=orderbook][data-state=live]");
  await byTest("fill").first().waitFor();
  await byTest("bid-row").first().waitFor();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(500);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`narrow layout scrolls sideways by ${overflow}px`);
  if (shots) await page.screenshot({ path: `${shots}/narrow.png`, fullPage: true });
  log("narrow layout fits (390 px)");
});
