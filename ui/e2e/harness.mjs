// What the browser scripts share: their settings from the environment, a line protocol to ask the Python test that
// runs them for a step of its own, and one headless Chromium page (Debian's, through playwright-core with its
// executable path: no browser is ever downloaded) whose console errors fail the run unless a step expects them.
// A script prints one line per step and exits 1 on its first failure, with a screenshot and the page's text.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";

export const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

/** The screenshots' directory (SCREENSHOTS, made if missing), or undefined: no screenshots. */
export function screenshots() {
  const shots = process.env.SCREENSHOTS;
  if (shots) mkdirSync(shots, { recursive: true });
  return shots;
}

const t0 = Date.now();
export const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

let stdinLines;
/** Ask the runner (tests/ui/conftest.py run_script) for ``request``: a line "@@<request>", answered "ok" on stdin. */
export async function askRunner(request) {
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(`@@${request}`);
  const answer = await stdinLines.next();
  if (answer.done || answer.value.trim() !== "ok") throw new Error(`the runner did not ${request}: ${answer.value}`);
}

/** Run ``steps({ page, allow })`` on a fresh 1280x800 page, then exit: 0 when they passed and the page logged no
 * console error but those ``allow([regexes])`` declared expected at the time (the browser logs every 4xx/5xx answer
 * and refused connection), else 1. ``contextOptions`` are added to the browser context's (a locale, say). */
export async function inBrowser(steps, contextOptions = {}) {
  const consoleErrors = [];
  let allowed = [];
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM", "/usr/bin/chromium"),
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  let failed = false;
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const text = m.text();
      if (allowed.some((re) => re.test(text))) log(`(expected console error: ${text})`);
      else consoleErrors.push(text);
    });
    page.on("pageerror", (err) => consoleErrors.push(`page error: ${err.message}`));
    page.setDefaultTimeout(20_000);
    await steps({ page, allow: (patterns) => (allowed = patterns) });
    if (consoleErrors.length > 0) throw new Error(`console errors:\n${consoleErrors.join("\n")}`);
    log("PASS: no console errors");
  } catch (err) {
    failed = true;
    console.error(`FAIL: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    if (consoleErrors.length > 0) console.error(`console errors:\n${consoleErrors.join("\n")}`);
    const where = process.env.FAILURE_SCREENSHOT;
    if (page && where) await page.screenshot({ path: where }).catch(() => {});
    if (page) console.error(`page text at the failure:\n${(await page.locator("body").innerText().catch(() => "")).slice(0, 3000)}`);
  } finally {
    await browser.close();
  }
  await stdinLines?.return?.();
  process.exit(failed ? 1 : 0);
}
