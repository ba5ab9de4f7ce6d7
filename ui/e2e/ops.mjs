// End-to-end: the Ops page of the production UI in Debian's headless Chromium (Playwright with its executable
// path) charting from a real Prometheus that scrapes a real venue. tests/ui/test_ops.py starts them and runs this
// with: UI_URL (the gateway, which serves the UI), PROMETHEUS_URL, UNREACHABLE_URL (a port nothing listens on),
// CHROMIUM (the browser's path), SCREENSHOTS (a directory; optional), FAILURE_SCREENSHOT (optional),
// OPS_SETTLE_MS (optional: how long the charts fill before the screenshot).
// Prints one line per step; exits 1 on the first failure, or if the page logged any unexpected console error.

import { env, inBrowser, log, screenshots } from "./harness.mjs";

const base = env("UI_URL");
const prometheus = env("PROMETHEUS_URL");
const unreachable = env("UNREACHABLE_URL");
const shots = screenshots();

// the Ops page alone: ?research= (empty) switches the Model panel's service off, the feed is never needed
const opsUrl = (prom) => `${base}/ui/?prometheus=${encodeURIComponent(prom)}&research=#/ops`;
const chart = (id) => `[data-testid=ops-chart-${id}]`;

await inBrowser(async ({ page, allow }) => {
  // 1. the Ops page charts from Prometheus; the enqueued and processed lines both leave zero under the flow
  await page.goto(opsUrl(prometheus));
  await page.waitForSelector("[data-testid=ops][data-state=live]");
  await page.waitForFunction(
    (sel) => {
      const names = document.querySelector(sel)?.getAttribute("data-nonzero-series")?.split(",") ?? [];
      return names.includes("enqueued") && names.includes("processed");
    },
    chart("commands"),
    { timeout: 45_000 },
  );
  const points = await page.getAttribute(chart("commands"), "data-points");
  const legend = await page.locator(`${chart("commands")} .ops-last`).textContent();
  log(`commands chart: ${points} points, ${legend}`);
  await page.locator(`${chart("commands")} canvas`).first().waitFor();
  // the engine's lag and publish latency come from the same scrapes
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute("data-points")) > 0, chart("lag"));
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute("data-points")) > 0, chart("latency"));
  log(`lag chart: ${await page.locator(`${chart("lag")} .ops-last`).textContent()}`);
  log(`latency chart: ${await page.locator(`${chart("latency")} .ops-last`).textContent()}`);
  // a second refresh moves the "updated" time: the page keeps polling
  const updated = await page.locator(".ops-head .dim").textContent();
  await page.waitForFunction((before) => document.querySelector(".ops-head .dim")?.textContent !== before, updated, { timeout: 15_000 });
  log("refreshed");
  const settle = Number(process.env.OPS_SETTLE_MS ?? 0);
  if (settle > 0) {
    log(`letting the lines grow for ${settle / 1000} s before the screenshot`);
    await page.waitForTimeout(settle);
  }
  if (shots) await page.screenshot({ path: `${shots}/ops.png` });

  // 2. Prometheus unreachable: one plain message, no page error
  allow([/ERR_CONNECTION_REFUSED/]);
  await page.goto(opsUrl(unreachable));
  await page.getByTestId("ops-unreachable").waitFor();
  log(`unreachable: ${await page.getByTestId("ops-unreachable").textContent()}`);
  allow([]);

  // 3. not configured (?prometheus= empty): said so, nothing requested
  await page.goto(opsUrl(""));
  await page.getByTestId("ops-unconfigured").waitFor();
  log(`not configured: ${await page.getByTestId("ops-unconfigured").textContent()}`);
});
