import { useEffect, useRef } from "react";
import { createChart, ColorType, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import { onCandles } from "../market";
import { currentSpec, useMarket } from "../store";
import type { Candle } from "../lib/types";

/** Candles from the feed's klines (history from REST, the open candle from the kline stream). */
export function CandleChart() {
  const box = useRef<HTMLDivElement>(null);
  const symbol = useMarket((s) => s.symbol);
  const interval = useMarket((s) => s.interval);
  const specs = useMarket((s) => s.specs);
  const counter = useRef<HTMLSpanElement>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const chart: IChartApi = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#12161c" }, textColor: "#9aa4b2", fontSize: 11 },
      grid: { vertLines: { color: "#1d232c" }, horzLines: { color: "#1d232c" } },
      timeScale: { timeVisible: true, secondsVisible: interval === "1s", borderColor: "#2a313c" },
      rightPriceScale: { borderColor: "#2a313c" },
      crosshair: { mode: 0 },
    });
    const spec = currentSpec();
    const places = spec?.priceDecimals ?? 2;
    const series: ISeriesApi<"Candlestick"> = chart.addCandlestickSeries({
      upColor: "#1fbf75",
      downColor: "#f0506e",
      borderVisible: false,
      wickUpColor: "#1fbf75",
      wickDownColor: "#f0506e",
      priceFormat: { type: "price", precision: places, minMove: 1 / 10 ** places },
    });
    const volume = chart.addHistogramSeries({ priceScaleId: "vol", color: "#2b3a4d", priceFormat: { type: "volume" } });
    chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    let updates = 0;
    let lastTime = 0;
    const toBar = (c: Candle) => ({ time: c.time as UTCTimestamp, open: c.open, high: c.high, low: c.low, close: c.close });
    const toVol = (c: Candle) => ({
      time: c.time as UTCTimestamp,
      value: c.volume,
      color: c.close >= c.open ? "#1d4d3a" : "#5a2533",
    });
    const off = onCandles((candle, all) => {
      if (all) {
        series.setData(all.map(toBar));
        volume.setData(all.map(toVol));
        lastTime = all[all.length - 1]?.time ?? 0;
        chart.timeScale().scrollToRealTime();
      } else {
        if (candle.time < lastTime) return; // older than what is drawn (history arrived after it)
        series.update(toBar(candle));
        volume.update(toVol(candle));
        lastTime = candle.time;
      }
      updates += 1;
      if (counter.current) counter.current.textContent = String(updates);
      el.dataset.lastClose = String(candle.close);
      el.dataset.lastTime = String(candle.time);
    });
    return () => {
      off();
      chart.remove();
    };
  }, [symbol, interval, specs]);

  return (
    <section className="panel chart">
      <h2>
        {symbol} · {interval} <small className="dim">updates <span ref={counter} data-testid="candle-updates">0</span></small>
      </h2>
      <div className="chart-box" ref={box} data-testid="candles" />
    </section>
  );
}
