import { useEffect, useRef } from "react";
import * as echarts from "echarts/core";
import { LineChart } from "echarts/charts";
import { GridComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { depthOf } from "../lib/depth";
import { fullBook } from "../market";
import { currentSpec, useMarket } from "../store";

echarts.use([LineChart, GridComponent, TooltipComponent, CanvasRenderer]);

const LEVELS = 100;

/** Cumulative bid and ask size by price, from the local book, around the mid (lib/depth); redrawn at most twice a
 * second. */
export function DepthChart() {
  const box = useRef<HTMLDivElement>(null);
  const symbol = useMarket((s) => s.symbol);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const chart = echarts.init(el, undefined, { renderer: "canvas" });
    const places = currentSpec()?.priceDecimals ?? 2;
    chart.setOption({
      animation: false,
      backgroundColor: "transparent",
      grid: { left: 8, right: 8, top: 10, bottom: 22, containLabel: true },
      tooltip: { trigger: "axis", valueFormatter: (v: unknown) => String(v) },
      xAxis: {
        type: "value",
        scale: true,
        axisLabel: { color: "#9aa4b2", fontSize: 10, formatter: (v: number) => v.toFixed(places) },
        splitLine: { show: false },
      },
      yAxis: { type: "value", axisLabel: { color: "#9aa4b2", fontSize: 10 }, splitLine: { lineStyle: { color: "#1d232c" } } },
      series: [
        { name: "bids", type: "line", step: "end", symbol: "none", lineStyle: { color: "#1fbf75" }, areaStyle: { color: "rgba(31,191,117,0.25)" }, data: [] },
        { name: "asks", type: "line", step: "start", symbol: "none", lineStyle: { color: "#f0506e" }, areaStyle: { color: "rgba(240,80,110,0.25)" }, data: [] },
      ],
    });
    let lastId = -1;
    const timer = setInterval(() => {
      const id = useMarket.getState().bookUpdateId;
      if (id === lastId) return;
      lastId = id;
      const { bids, asks } = fullBook(LEVELS);
      const d = depthOf(bids, asks);
      chart.setOption({ xAxis: { min: d.min, max: d.max }, series: [{ data: d.bids.reverse() }, { data: d.asks }] });
    }, 500);
    const resize = new ResizeObserver(() => chart.resize());
    resize.observe(el);
    return () => {
      clearInterval(timer);
      resize.disconnect();
      chart.dispose();
    };
  }, [symbol]);

  return (
    <section className="panel depth">
      <h2>Depth</h2>
      <div className="depth-box" ref={box} data-testid="depth" />
    </section>
  );
}
