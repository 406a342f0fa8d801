// A line chart that follows its container's width: a thin wrapper over uPlot (bundled, no CDN).

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface SeriesSpec {
  label: string;
  color: string;
  dash?: number[];
  width?: number;
  /** Scale key (default "y"). */
  scale?: string;
  /** Format for the legend value. */
  format?: (v: number) => string;
  points?: boolean;
  /** Draw the line across null values (for series sampled less often than x). */
  spanGaps?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  series: SeriesSpec[];
  /** Scales other than x: {y: {log: true}} or fixed ranges. */
  scales?: Record<string, { log?: boolean; range?: [number, number] }>;
  /** Axis labels per scale key; the second scale key gets a right-hand axis. */
  axes?: { scale: string; label: string; format?: (v: number) => string }[];
  height?: number;
  /** Show uPlot's legend (live values under the cursor); default true. */
  legend?: boolean;
}

export class LineChart {
  readonly plot: uPlot;
  private readonly observer: ResizeObserver;

  constructor(
    readonly el: HTMLElement,
    spec: ChartSpec,
  ) {
    const height = spec.height ?? 220;
    const scales: uPlot.Scales = { x: { time: false } };
    for (const [k, s] of Object.entries(spec.scales ?? { y: {} })) {
      // uPlot's Distr and Side are ambient const enums, which isolatedModules cannot reference: use their values.
      scales[k] = {
        // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- Distr.Logarithmic = 3
        ...(s.log ? { distr: 3 as const, log: 10 as const } : {}),
        ...(s.range ? { range: s.range } : { auto: true }),
      };
    }
    const axisStyle = {
      stroke: "#5f6779",
      grid: { stroke: "#eceef4", width: 1 },
      ticks: { stroke: "#e3e6ee", width: 1 },
      font: "11px system-ui, sans-serif",
      labelFont: "12px system-ui, sans-serif",
    };
    const axes: uPlot.Axis[] = [{ ...axisStyle, label: spec.xLabel, labelSize: 18 }];
    (spec.axes ?? [{ scale: "y", label: "" }]).forEach((a, i) => {
      axes.push({
        ...axisStyle,
        scale: a.scale,
        label: a.label,
        labelSize: a.label ? 18 : 0,
        size: 52,
        // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- Side.Right = 1
        ...(i > 0 ? { side: 1 as const, grid: { show: false } } : {}),
        ...(a.format ? { values: (_u: uPlot, vals: number[]) => vals.map((v) => a.format!(v)) } : {}),
      });
    });
    const opts: uPlot.Options = {
      title: spec.title,
      width: Math.max(200, el.clientWidth),
      height,
      scales,
      axes,
      legend: { show: spec.legend ?? true, live: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        { label: spec.xLabel },
        ...spec.series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 2,
          scale: s.scale ?? "y",
          points: s.points ? { show: true, size: 7, fill: s.color, stroke: s.color } : { show: false },
          spanGaps: s.spanGaps ?? false,
          ...(s.dash ? { dash: s.dash } : {}),
          ...(s.format ? { value: (_u: uPlot, v: number | null) => (v === null ? "–" : s.format!(v)) } : {}),
        })),
      ],
    };
    const empty: uPlot.AlignedData = [[], ...spec.series.map(() => [])];
    this.plot = new uPlot(opts, empty, el);
    this.observer = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - this.plot.width) > 1) this.plot.setSize({ width: w, height });
    });
    this.observer.observe(el);
  }

  setData(xs: readonly number[], ys: readonly (readonly (number | null)[])[]): void {
    this.plot.setData([xs as number[], ...(ys as (number | null)[][])]);
  }
}
