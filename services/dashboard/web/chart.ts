import uPlot from 'uplot';
import { flow, parseTime, pressure, type TimeFormat } from './format.ts';
import type { Series } from './types.ts';

type Data = [number[], (number | null)[], (number | null)[]];

function toData(series: Series): Data {
  const x: number[] = [];
  const f: (number | null)[] = [];
  const p: (number | null)[] = [];
  series.timestamps.forEach((t, i) => {
    const date = parseTime(t);
    if (date === undefined) return;
    x.push(date.getTime() / 1000);
    f.push(series.flow_rates[i] ?? null);
    p.push(series.pressures[i] ?? null);
  });
  return [x, f, p];
}

function sameData(a: Data, b: Data): boolean {
  return a.every((column, i) => {
    const other = b[i] as readonly (number | null)[];
    return column.length === other.length && column.every((v, j) => v === other[j]);
  });
}

/**
 * The node's 7-day hourly flow (L/s, left axis) and pressure (bar, right
 * axis, dashed line so the two differ without colour), in the
 * dashboard's time zone. uPlot draws on a canvas; the legend it keeps
 * under the chart gives the values as text.
 */
export class FlowPressureChart {
  readonly #container: HTMLElement;
  readonly #time: TimeFormat;
  #plot: uPlot | undefined;
  #data: Data | undefined;
  readonly #resize: ResizeObserver;

  constructor(container: HTMLElement, time: TimeFormat) {
    this.#container = container;
    this.#time = time;
    this.#resize = new ResizeObserver(() => {
      const width = this.#width();
      if (this.#plot && this.#plot.width !== width) this.#plot.setSize({ width, height: this.#plot.height });
    });
    this.#resize.observe(container);
  }

  /** Draws the series; does nothing when it has not changed (a redraw would drop the user's zoom). */
  update(series: Series): void {
    const data = toData(series);
    if (this.#data && sameData(this.#data, data)) return;
    this.#data = data;
    if (this.#plot) {
      this.#plot.setData(data);
      return;
    }
    const time = this.#time;
    this.#plot = new uPlot(
      {
        width: this.#width(),
        height: 280,
        // Ticks are placed at the zone's hours; labels are 24-hour, in the zone, like every time on the page.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), time.timeZone),
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: true }, flow: { auto: true }, bar: { auto: true } },
        series: [
          {
            label: 'Time',
            value: (_u, ts) => (ts == null ? '—' : time.dateTime(new Date(ts * 1000).toISOString())),
          },
          {
            label: 'Flow',
            scale: 'flow',
            stroke: '#1d4ed8',
            width: 1.5,
            value: (_u, v) => flow(v),
          },
          {
            label: 'Pressure',
            scale: 'bar',
            stroke: '#b45309',
            width: 1.5,
            dash: [6, 4],
            value: (_u, v) => pressure(v),
          },
        ],
        axes: [
          { values: (_u, splits) => splits.map((ts) => time.axisLabel(ts * 1000)) },
          { scale: 'flow', label: 'Flow (L/s)' },
          { scale: 'bar', side: 1, label: 'Pressure (bar)', grid: { show: false } },
        ],
      },
      data,
      this.#container,
    );
  }

  dispose(): void {
    this.#resize.disconnect();
    this.#plot?.destroy();
    this.#plot = undefined;
  }

  #width(): number {
    return Math.max(280, this.#container.clientWidth);
  }
}
