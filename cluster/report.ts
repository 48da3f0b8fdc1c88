/**
 * The results report: one row per method evaluated from its label file (wall time and parameters from its sidecar),
 * the seed's table in Markdown, and SVG figures (cluster sizes, precision/recall).
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { readLabels } from "../shared/meta.ts";
import { scatterChart, type Series, smallMultiples } from "../shared/svg.ts";
import { type AllMetrics, countClusters, evaluateAll, readPrediction } from "./metrics.ts";

/** One method of the table: its label file and the wall time of the stage that produced it. */
export interface MethodEntry {
  method: string;
  pred_labels: string;
  /** seconds, from the label file's sidecar (`timings_s.total`); NaN when it has none */
  wall_s: number;
  params?: Record<string, unknown>;
}

interface Sidecar {
  params?: Record<string, unknown>;
  timings_s?: { total?: number };
}

/** The sidecar `<file>.meta.json` written beside a label file by the stage that made it, if any. */
function readSidecarOf(path: string): Sidecar | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
  } catch {
    return undefined;
  }
}

/**
 * Parse `Label=path/to/pred_labels.txt` specs, in table order. The wall time and parameters come from the label
 * file's sidecar (`<file>.meta.json`) when there is one.
 */
export function parseMethodSpecs(specs: string[]): MethodEntry[] {
  if (specs.length === 0) throw new LtcError("report: give at least one --method LABEL=PRED_LABELS");
  return specs.map((spec) => {
    const eq = spec.lastIndexOf("=");
    if (eq <= 0) throw new LtcError(`report: --method '${spec}' must look like LABEL=path/to/pred_labels.txt`);
    const method = spec.slice(0, eq), path = spec.slice(eq + 1);
    const side = readSidecarOf(path);
    return { method, pred_labels: path, wall_s: Number(side?.timings_s?.total ?? NaN), params: side?.params };
  });
}

/** A row of the results table. */
export interface ResultRow extends MethodEntry {
  /** the predicted labels */
  pred: Int32Array;
  metrics: AllMetrics;
  clusters: number;
}

/** Evaluate every entry against the ground truth (label files of another length are refused unless padded). */
export function evaluateEntries(
  entries: MethodEntry[],
  gt: { path: string; labels: Int32Array },
  options: { padSingletons?: boolean } = {},
): ResultRow[] {
  return entries.map((e) => {
    const pred = readPrediction(e.pred_labels, gt, options);
    return { ...e, pred, metrics: evaluateAll(gt.labels, pred), clusters: countClusters(pred) };
  });
}

/** ×100 with two decimals; an undefined metric (e.g. precision with no predicted pair) shows as n/a. */
const pct = (v: number) => Number.isFinite(v) ? (v * 100).toFixed(2) : "n/a";

/** The results table in the seed's format (pairwise P/R/F), then BCubed F, NMI, clusters and wall time. */
export function formatTable(rows: ResultRow[]): string {
  const lines = [
    "| Method | Precision | Recall | F-score | BCubed F | NMI | #clusters | Time (s) |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const m = r.metrics;
    lines.push(
      `| ${r.method} | ${pct(m.pairwise.precision)} | ${pct(m.pairwise.recall)} | ${pct(m.pairwise.fscore)} | ` +
        `${pct(m.bcubed.fscore)} | ${pct(m.nmi)} | ${r.clusters} | ${
          Number.isFinite(r.wall_s) ? r.wall_s.toFixed(1) : "–"
        } |`,
    );
  }
  return lines.join("\n");
}

/**
 * Cluster-size histogram on doubling bins: [1], [2], [3,4], [5,8], … → (bin upper edge, clusters in bin), every bin
 * from 1 up to the largest cluster's, empty ones with count 0 (a log-axis chart leaves those out).
 */
export function sizeHistogram(labels: Int32Array): [number, number][] {
  const sizes = new Map<number, number>();
  for (const l of labels) sizes.set(l, (sizes.get(l) ?? 0) + 1);
  const bins = new Map<number, number>();
  let top = 1;
  for (const s of sizes.values()) {
    const edge = s <= 1 ? 1 : 2 ** Math.ceil(Math.log2(s));
    bins.set(edge, (bins.get(edge) ?? 0) + 1);
    top = Math.max(top, edge);
  }
  const out: [number, number][] = [];
  for (let edge = 1; edge <= top; edge *= 2) out.push([edge, bins.get(edge) ?? 0]);
  return out;
}

const lowerTenth = (vals: number[]) => Math.max(0, Math.floor(Math.min(...vals) * 10 - 0.5) / 10);

/** Write report.md, the two SVG figures and results.json into the run folder; returns the table text. */
export function writeReport(
  runDir: string,
  gtPath: string,
  options: { methods: string[]; title?: string; padSingletons?: boolean },
): string {
  const entries = parseMethodSpecs(options.methods);
  const gt = readLabels(gtPath);
  const rows = evaluateEntries(entries, { path: gtPath, labels: gt }, options);
  const table = formatTable(rows);
  writeFileAtomic(
    join(runDir, "cluster_sizes.svg"),
    smallMultiples(rows.map((r) => ({ name: r.method, points: sizeHistogram(r.pred) })), {
      title: "Cluster-size distribution of each method against the ground truth",
      reference: { name: "ground truth", points: sizeHistogram(gt) },
      xLabel: "cluster size (doubling bins)",
      yLabel: "clusters",
      logX: true,
      logY: true,
    }),
  );
  const prSeries: Series[] = rows.map((r) => ({
    name: r.method,
    points: [[r.metrics.pairwise.recall, r.metrics.pairwise.precision]],
  }));
  writeFileAtomic(
    join(runDir, "precision_recall.svg"),
    scatterChart(prSeries, {
      title: "Pairwise precision vs recall",
      xLabel: "recall",
      yLabel: "precision",
      // zoom to the methods (from a tenth below the lowest), up to 1
      xRange: [lowerTenth(rows.map((r) => r.metrics.pairwise.recall)), 1],
      yRange: [lowerTenth(rows.map((r) => r.metrics.pairwise.precision)), 1],
    }),
  );
  const title = options.title ?? `Results: ${gtPath}`;
  const md = [
    `# ${title}`,
    "",
    `Ground truth: \`${gtPath}\` (${gt.length} samples, ${countClusters(gt)} identities).`,
    "",
    "Pairwise precision / recall / F-score (the seed's table), then BCubed F-score, NMI (all ×100), the number of",
    "predicted clusters and the wall time of the method's own stages.",
    "",
    table,
    "",
    "![cluster sizes](cluster_sizes.svg)",
    "",
    "![precision vs recall](precision_recall.svg)",
    "",
    "## Parameters",
    "",
    ...rows.map((r) =>
      `- **${r.method}**: \`${r.pred_labels}\` ${r.params ? "`" + JSON.stringify(r.params) + "`" : ""}`
    ),
    "",
  ].join("\n");
  writeFileAtomic(join(runDir, "report.md"), md);
  const results = rows.map(({ pred: _pred, ...row }) => row);
  writeFileAtomic(join(runDir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  return table;
}
