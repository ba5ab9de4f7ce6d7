// The browser half of bench/ui.py: opens the production UI in Debian's headless Chromium with ?perf=1 (see
// src/lib/perf.ts), lets it warm up, then records for DURATION seconds the in-page probes: for each WebSocket
// message, when it arrived, when the book / trades it changed were committed to the DOM, and the next animation
// frame after that (painted); and every animation frame's time. Prints one JSON object.
//   PAGE_URL, CHROMIUM, DURATION (s, default 20), WARMUP (s, default 3)

import { chromium } from "playwright-core";

const url = process.env.PAGE_URL;
const duration = Number(process.env.DURATION ?? 20);
const warmup = Number(process.env.WARMUP ?? 3);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector("[data-testid=orderbook][data-state=live]", { timeout: 30_000 });
  await page.waitForTimeout(warmup * 1000);
  await page.evaluate(() => {
    const p = window.__mercuryPerf;
    p.samples.length = 0;
    p.frames.length = 0;
  });
  const start = await page.evaluate(() => performance.now());
  await page.waitForTimeout(duration * 1000);
  const result = await page.evaluate(() => {
    const p = window.__mercuryPerf;
    return { samples: p.samples.slice(), frames: p.frames.slice(), now: performance.now() };
  });
  const resyncs = await page.evaluate(() => document.querySelector("[data-testid=orderbook]")?.textContent?.match(/(\d+) resync/)?.[1] ?? "0");
  console.log(JSON.stringify({ start, ...result, resyncs: Number(resyncs), errors }));
} finally {
  await browser.close();
}
