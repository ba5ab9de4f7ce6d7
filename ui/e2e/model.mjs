// End-to-end: the market view's Model panel in Debian's headless Chromium (Playwright with its executable path)
// against the real inference service (research/serve.py) over the real MongoDB-protocol server. tests/ui/test_model.py
// starts the exchange, a feed, the service (no model yet) with stored BTCUSDT klines, then runs this with:
//   UI_URL (the gateway, which serves the UI), RESEARCH_URL (the service), UNREACHABLE_URL (a port nothing listens
//   on), CHROMIUM (the browser's path), SCREENSHOTS (a directory; optional), FAILURE_SCREENSHOT (optional).
// It asks the runner to train a model with a line "@@train-model" (answered "ok" on stdin).
// Prints one line per step; exits 1 on the first failure, or if the page logged any unexpected console error.

import { askRunner, env, inBrowser, log, screenshots } from "./harness.mjs";

const base = env("UI_URL");
const research = env("RESEARCH_URL");
const unreachable = env("UNREACHABLE_URL");
const shots = screenshots();

const marketUrl = (service) => `${base}/ui/?research=${encodeURIComponent(service)}`;
const panel = (state) => `[data-testid=model-panel][data-state=${state}]`;
const service = async (path) => {
  const r = await fetch(`${research}${path}`);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
};
const pct = (v) => `${(v * 100).toFixed(1)}%`;

await inBrowser(async ({ page, allow }) => {
  const text = async (selector) => (await page.locator(selector).innerText()).trim();
  const pick = async (symbol) => {
    await page.getByTestId("symbol").selectOption(symbol);
    await page.waitForFunction((s) => document.querySelector("[data-testid=symbol]")?.value === s, symbol);
  };

  // 1. the service runs but has no model yet: the panel asks its /health first, so it says so without a single
  // failed request (no console error, not even the predict endpoint's 503)
  allow([]);
  await page.goto(marketUrl(research));
  await pick("BTCUSDT");
  await page.waitForSelector(panel("no-model"));
  const noModel = await text(panel("no-model"));
  if (!noModel.includes("No model trained yet")) throw new Error(`no-model panel says: ${noModel}`);
  log(`no model: ${noModel.replace(/\s+/g, " ")}`);

  // 2. a model trained (research.model's train, into the directory the service reads): on the next load the
  // panel shows the service's own call for BTCUSDT and the model's after-fee backtest next to buy-and-hold
  await askRunner("train-model");
  allow([]);
  await page.reload();
  await pick("BTCUSDT");
  await page.waitForSelector(panel("ok"));
  await page.getByTestId("model-prediction").waitFor();
  const info = await service("/api/v1/model");
  const call = await service(`/api/v1/predict?symbol=BTCUSDT&interval=${encodeURIComponent(info.interval)}`);
  const shown = await text("[data-testid=model-prediction]");
  const arrow = call.direction === "UP" ? "▲ up" : "▼ down";
  if (!shown.includes(arrow) || !shown.includes(`P(up) ${pct(call.p_up)}`)) {
    throw new Error(`the panel shows "${shown}", the service answers ${JSON.stringify(call)}`);
  }
  // the bar the call is made at, in the page's own clock format (the service answers ns)
  const asOf = new Date(Math.floor(call.as_of_open_time / 1e6)).toLocaleTimeString("en-US", { timeZone: "UTC" });
  if (!shown.includes(`as of ${asOf}`)) throw new Error(`the panel shows "${shown}", the call is as of ${asOf}`);
  const meta = await text(".model-meta");
  if (!meta.includes(info.version) || !meta.includes(`trained on ${info.symbol} ${info.interval}`)) {
    throw new Error(`model line "${meta}" for ${JSON.stringify({ version: info.version, symbol: info.symbol })}`);
  }
  const rows = await page.locator("[data-testid=model-backtest] tbody tr").allInnerTexts();
  const own = info.backtest_summary[info.model];
  const modelRow = rows.find((r) => r.startsWith("model"));
  if (!modelRow || !modelRow.includes(`${(own.total_return * 100).toFixed(2)}%`) || !modelRow.includes(String(own.trades))) {
    throw new Error(`backtest rows ${JSON.stringify(rows)} for ${JSON.stringify(own)}`);
  }
  if (!rows.some((r) => r.startsWith("buy & hold"))) throw new Error(`no buy-and-hold row: ${JSON.stringify(rows)}`);
  log(`prediction: ${shown.replace(/\s+/g, " ")}`);
  log(`model: ${meta.replace(/\s+/g, " ")}; backtest ${JSON.stringify(rows)}`);
  if (shots) await page.getByTestId("model-panel").screenshot({ path: `${shots}/model.png` });

  // 3. another symbol without history in the store: the service's 409 is shown plainly, the backtest stays
  allow([/status of 409/]);
  await pick("ETHUSDT");
  await page.waitForFunction(() => document.querySelector("[data-testid=model-panel]")?.textContent?.includes("No prediction for ETHUSDT"));
  await page.locator("[data-testid=model-backtest]").waitFor();
  log(`ETHUSDT: ${(await page.getByTestId("model-panel").innerText()).split("\n")[1]}`);

  // 4. the service unreachable: one plain message, no page error
  allow([/ERR_CONNECTION_REFUSED/]);
  await page.goto(marketUrl(unreachable));
  await page.waitForSelector(panel("error"));
  const down = await text(panel("error"));
  if (!down.includes("cannot reach the inference service")) throw new Error(`unreachable panel says: ${down}`);
  log(`unreachable: ${down}`);

  // 5. not configured (?research= empty): said so, nothing requested
  allow([]);
  await page.goto(marketUrl(""));
  await page.waitForSelector(panel("unconfigured"));
  log(`not configured: ${await text(panel("unconfigured"))}`);
}, { locale: "en-US", timezoneId: "UTC" }); // fixed, so that the times the page formats compare with this script's
