/**
 * Tiny SVG chart writers for the run report (no plotting service): a log-log line chart of cluster-size
 * distributions and a precision/recall scatter. Output is plain, self-contained SVG that any browser opens.
 * @module
 */

/** One named series of (x, y) points. */
export interface Series {
  name: string;
  points: [number, number][];
  /** draw dashed (e.g. the ground truth) */
  dashed?: boolean;
}

const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#bcbd22",
  "#7f7f7f",
  "#393b79",
  "#637939",
];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Options shared by the charts. */
export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  logY?: boolean;
  /** fixed axis ranges (in data units); otherwise from the data */
  xRange?: [number, number];
  yRange?: [number, number];
  width?: number;
  height?: number;
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out.filter((t) => t >= lo * 0.999 && t <= hi * 1.001);
  }
  const span = hi - lo;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const mult = span / step > 25 ? 5 : span / step > 10 ? 2 : 1;
  const s = step * mult;
  const out: number[] = [];
  for (let t = Math.ceil(lo / s) * s; t <= hi + 1e-12; t += s) out.push(Number(t.toFixed(10)));
  return out;
}

/** Where a panel sits in the picture, and whether it carries its own legend. */
interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
  /** legend to the right of the plot (single charts) */
  legendLeft?: number;
}

/** Axis ranges of a set of series: the data's own, or the fixed ones asked for. */
function ranges(series: Series[], opts: ChartOptions): { x: [number, number]; y: [number, number] } {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => (!opts.logX || x > 0) && (!opts.logY || y > 0));
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let [x0, x1] = opts.xRange ?? [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = opts.yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  if (opts.logX) x0 = Math.max(x0, 1e-12);
  if (opts.logY) y0 = Math.max(y0, 1e-12);
  return { x: [x0, x1], y: [y0, y1] };
}

/**
 * Draw one plot into `out`: frame, grid, tick labels, the series (lines or points) and, with `box.legendLeft`, a
 * legend. On a log axis a point at 0 cannot be drawn: it is left out and the line breaks there rather than being
 * drawn at some arbitrary floor.
 */
function drawPanel(
  out: string[],
  series: Series[],
  opts: ChartOptions & { title: string },
  box: Box,
  mode: "line" | "scatter",
  colorOf: (i: number) => string,
): void {
  const { left, top, width: pw, height: ph } = box;
  const { x: [x0, x1], y: [y0, y1] } = ranges(series, opts);
  const fx = (x: number) =>
    left +
    pw * (opts.logX ? (Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) : (x - x0) / (x1 - x0));
  const fy = (y: number) =>
    top + ph -
    ph * (opts.logY ? (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) : (y - y0) / (y1 - y0));
  const drawable = ([x, y]: [number, number]) => (!opts.logX || x > 0) && (!opts.logY || y > 0);
  out.push(`<text x="${left + pw / 2}" y="${top - 8}" text-anchor="middle" font-size="13">${esc(opts.title)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  for (const t of ticks(x0, x1, !!opts.logX)) {
    const x = fx(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${top + ph + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of ticks(y0, y1, !!opts.logY)) {
    const y = fy(t).toFixed(1);
    out.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${t}</text>`);
  }
  out.push(`<text x="${left + pw / 2}" y="${top + ph + 36}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  const ymid = top + ph / 2;
  out.push(
    `<text x="${left - 48}" y="${ymid}" text-anchor="middle" transform="rotate(-90 ${left - 48} ${ymid})">` +
      `${esc(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = colorOf(i);
    if (mode === "line") {
      // one sub-path per run of drawable points
      let d = "", pen = false;
      for (const p of s.points) {
        if (!drawable(p)) {
          pen = false;
          continue;
        }
        d += `${pen ? "L" : " M"}${fx(p[0]).toFixed(1)},${fy(p[1]).toFixed(1)}`;
        pen = true;
      }
      if (d) {
        out.push(
          `<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="${s.dashed ? 2.5 : 1.5}"` +
            `${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
        );
      }
      for (const p of s.points.filter(drawable)) {
        out.push(`<circle cx="${fx(p[0]).toFixed(1)}" cy="${fy(p[1]).toFixed(1)}" r="2.5" fill="${color}"/>`);
      }
    } else {
      for (const [x, y] of s.points.filter(drawable)) {
        out.push(`<circle cx="${fx(x).toFixed(1)}" cy="${fy(y).toFixed(1)}" r="5" fill="${color}" stroke="#222"/>`);
        out.push(
          `<text x="${(fx(x) + 7).toFixed(1)}" y="${(fy(y) - 5).toFixed(1)}" font-size="11">${i + 1}</text>`,
        );
      }
    }
    if (box.legendLeft === undefined) return;
    const ly = top + 14 + i * 18;
    out.push(`<rect x="${box.legendLeft}" y="${ly - 8}" width="14" height="10" fill="${color}"/>`);
    const label = mode === "scatter" ? `${i + 1}  ${s.name}` : s.name;
    out.push(`<text x="${box.legendLeft + 20}" y="${ly}">${esc(label)}</text>`);
  });
}

function svgOpen(out: string[], W: number, H: number): void {
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
}

function chart(series: Series[], opts: ChartOptions, mode: "line" | "scatter"): string {
  const W = opts.width ?? 1000, H = opts.height ?? 500;
  const left = 70, right = 330, top = 40, bottom = 55;
  const out: string[] = [];
  svgOpen(out, W, H);
  const box = { left, top, width: W - left - right, height: H - top - bottom, legendLeft: W - right + 12 };
  drawPanel(out, series, opts, box, mode, (i) => PALETTE[i % PALETTE.length]!);
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** A line chart (e.g. cluster-size distributions on log-log axes). */
export function lineChart(series: Series[], opts: ChartOptions): string {
  return chart(series, opts, "line");
}

/** A scatter chart (e.g. precision vs recall of each method). */
export function scatterChart(series: Series[], opts: ChartOptions): string {
  return chart(series, opts, "scatter");
}

/** Options of {@linkcode smallMultiples}. */
export interface SmallMultiplesOptions extends Omit<ChartOptions, "title" | "width" | "height"> {
  /** title over the whole figure */
  title: string;
  /** drawn in every panel behind the panel's own series (e.g. the ground truth) */
  reference: Series;
  /** panels per row (default 3) */
  columns?: number;
}

/**
 * One small line chart per series, each with the `reference` series drawn behind it, all on the same axes so the
 * panels compare at a glance (many overlaid lines are hard to tell apart).
 */
export function smallMultiples(series: Series[], opts: SmallMultiplesOptions): string {
  const cols = opts.columns ?? 3, rows = Math.ceil(series.length / cols);
  const pw = 260, ph = 170, cellW = pw + 90, cellH = ph + 80, top = 50;
  const W = cols * cellW + 20, H = top + rows * cellH;
  // shared axes: the ranges of everything drawn anywhere
  const { x, y } = ranges([opts.reference, ...series], opts);
  const out: string[] = [];
  svgOpen(out, W, H);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
  series.forEach((s, i) => {
    const box = { left: 75 + (i % cols) * cellW, top: top + 20 + Math.floor(i / cols) * cellH, width: pw, height: ph };
    const panelOpts = { ...opts, title: s.name, xRange: x, yRange: y };
    const colors = ["#888", PALETTE[i % PALETTE.length]!];
    drawPanel(out, [{ ...opts.reference, dashed: true }, s], panelOpts, box, "line", (j) => colors[j]!);
  });
  out.push(`<text x="20" y="${H - 8}" font-size="11" fill="#555">dashed grey: ${esc(opts.reference.name)}</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
