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

function chart(series: Series[], opts: ChartOptions, mode: "line" | "scatter"): string {
  const W = opts.width ?? 1000, H = opts.height ?? 500;
  const left = 70, right = 330, top = 40, bottom = 55;
  const pw = W - left - right, ph = H - top - bottom;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => (!opts.logX || x > 0) && (!opts.logY || y > 0));
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let [x0, x1] = opts.xRange ?? [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = opts.yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  if (opts.logX) x0 = Math.max(x0, 1e-12);
  if (opts.logY) y0 = Math.max(y0, 1e-12);
  const fx = (x: number) =>
    left +
    pw * (opts.logX ? (Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) : (x - x0) / (x1 - x0));
  const fy = (y: number) =>
    top + ph -
    ph * (opts.logY ? (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) : (y - y0) / (y1 - y0));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left + pw / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
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
  out.push(`<text x="${left + pw / 2}" y="${H - 14}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  out.push(
    `<text x="16" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + ph / 2})">` +
      `${esc(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter(([x, y]) => (!opts.logX || x > 0) && (!opts.logY || y > 0));
    if (mode === "line" && pts.length > 0) {
      const d = pts.map(([x, y], j) => `${j ? "L" : "M"}${fx(x).toFixed(1)},${fy(y).toFixed(1)}`).join(" ");
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="${s.dashed ? 2.5 : 1.5}"` +
          `${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      );
    } else {
      for (const [x, y] of pts) {
        out.push(`<circle cx="${fx(x).toFixed(1)}" cy="${fy(y).toFixed(1)}" r="5" fill="${color}" stroke="#222"/>`);
        out.push(
          `<text x="${(fx(x) + 7).toFixed(1)}" y="${(fy(y) - 5).toFixed(1)}" font-size="11">${i + 1}</text>`,
        );
      }
    }
    const ly = top + 14 + i * 18;
    out.push(`<rect x="${left + pw + 12}" y="${ly - 8}" width="14" height="10" fill="${color}"/>`);
    const label = mode === "scatter" ? `${i + 1}  ${s.name}` : s.name;
    out.push(`<text x="${left + pw + 32}" y="${ly}">${esc(label)}</text>`);
  });
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
