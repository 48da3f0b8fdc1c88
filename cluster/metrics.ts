/**
 * Clustering metrics exactly as the original's `evaluation/metrics.py` (reference §7): pairwise precision/recall/F
 * from the contingency matrix (a modified Fowlkes–Mallows), BCubed averaged over items, and NMI with arithmetic
 * averaging (sklearn ≥ 0.22). The contingency table is built by sorting pair keys, never as an N × C matrix, so
 * millions of labels take seconds.
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import { readLabels, readLabelsPadded } from "../shared/meta.ts";

/** Precision, recall and their harmonic mean. */
export interface PRF {
  precision: number;
  recall: number;
  fscore: number;
}

/** Every metric the original reports; the JSON shape `evaluate --json` writes. */
export interface AllMetrics {
  pairwise: PRF;
  bcubed: PRF;
  nmi: number;
}

/** Sparse contingency table: cluster sizes and the non-zero cells. */
interface Contingency {
  n: number;
  /** sizes of ground-truth classes a_i */
  gtSizes: Float64Array;
  /** sizes of predicted clusters b_j */
  predSizes: Float64Array;
  /** non-zero cells: class index, cluster index, count */
  cellGt: Int32Array;
  cellPred: Int32Array;
  cellCount: Float64Array;
}

/** Map arbitrary integer labels to dense ids 0..C-1 (in order of first appearance). */
function denseIds(labels: ArrayLike<number>): { ids: Int32Array; count: number } {
  const ids = new Int32Array(labels.length);
  let lo = Infinity, hi = -Infinity, ints = true;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (!Number.isInteger(v)) ints = false;
  }
  if (ints && hi - lo <= 4 * labels.length + 1024) {
    // Dense integer labels (the usual case): a lookup table is far faster than a Map.
    const table = new Int32Array(hi - lo + 1).fill(-1);
    let count = 0;
    for (let i = 0; i < labels.length; i++) {
      const k = labels[i]! - lo;
      let id = table[k]!;
      if (id < 0) table[k] = id = count++;
      ids[i] = id;
    }
    return { ids, count };
  }
  const map = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    let id = map.get(v);
    if (id === undefined) map.set(v, id = map.size);
    ids[i] = id;
  }
  return { ids, count: map.size };
}

/** Stable counting sort of `items` (default 0..n-1) by `keys[item]` in 0..count-1. */
function countingOrder(keys: Int32Array, count: number, items: Int32Array | null): Int32Array {
  const n = keys.length;
  const start = new Int32Array(count + 1);
  for (let i = 0; i < n; i++) start[keys[i]! + 1]!++;
  for (let c = 0; c < count; c++) start[c + 1]! += start[c]!;
  const out = new Int32Array(n);
  for (let t = 0; t < n; t++) {
    const i = items ? items[t]! : t;
    out[start[keys[i]!]!++] = i;
  }
  return out;
}

function contingency(gt: ArrayLike<number>, pred: ArrayLike<number>): Contingency {
  if (gt.length !== pred.length) {
    throw new LtcError(`label vectors differ in length: ground truth has ${gt.length}, prediction has ${pred.length}`);
  }
  const n = gt.length;
  if (n === 0) throw new LtcError("label vectors are empty");
  const g = denseIds(gt);
  const p = denseIds(pred);
  const gtSizes = new Float64Array(g.count);
  const predSizes = new Float64Array(p.count);
  for (let i = 0; i < n; i++) {
    gtSizes[g.ids[i]!]!++;
    predSizes[p.ids[i]!]!++;
  }
  // Two stable counting sorts (by cluster, then by class) group equal (class, cluster) pairs in O(n + C + K).
  const byPred = countingOrder(p.ids, p.count, null);
  const order = countingOrder(g.ids, g.count, byPred);
  const cg = new Int32Array(n), cp = new Int32Array(n), cc = new Float64Array(n);
  let cells = 0;
  for (let s = 0; s < n;) {
    const gi = g.ids[order[s]!]!, pj = p.ids[order[s]!]!;
    let e = s + 1;
    while (e < n && g.ids[order[e]!] === gi && p.ids[order[e]!] === pj) e++;
    cg[cells] = gi;
    cp[cells] = pj;
    cc[cells++] = e - s;
    s = e;
  }
  return {
    n,
    gtSizes,
    predSizes,
    cellGt: cg.subarray(0, cells),
    cellPred: cp.subarray(0, cells),
    cellCount: cc.subarray(0, cells),
  };
}

function harmonic(p: number, r: number): number {
  return (2 * p * r) / (p + r);
}

function pairwiseOf(c: Contingency): PRF {
  let tk = 0, pk = 0, qk = 0;
  for (const v of c.cellCount) tk += v * v;
  for (const v of c.predSizes) pk += v * v;
  for (const v of c.gtSizes) qk += v * v;
  tk -= c.n, pk -= c.n, qk -= c.n;
  const precision = tk / pk, recall = tk / qk;
  return { precision, recall, fscore: harmonic(precision, recall) };
}

function bcubedOf(c: Contingency): PRF {
  let pre = 0, rec = 0;
  for (let t = 0; t < c.cellCount.length; t++) {
    const nij = c.cellCount[t]!;
    pre += (nij * nij) / c.predSizes[c.cellPred[t]!]!;
    rec += (nij * nij) / c.gtSizes[c.cellGt[t]!]!;
  }
  const precision = pre / c.n, recall = rec / c.n;
  return { precision, recall, fscore: harmonic(precision, recall) };
}

function entropy(sizes: Float64Array, n: number): number {
  let h = 0;
  const logN = Math.log(n);
  for (const v of sizes) if (v > 0) h -= (v / n) * (Math.log(v) - logN);
  return h;
}

function nmiOf(c: Contingency): number {
  const C = c.gtSizes.length, K = c.predSizes.length;
  // sklearn: both labellings a single cluster (or none) is a perfect match.
  if (C === K && (C === 1 || C === 0)) return 1;
  const n = c.n, logN = Math.log(n);
  let mi = 0;
  for (let t = 0; t < c.cellCount.length; t++) {
    const nij = c.cellCount[t]!;
    const outer = c.gtSizes[c.cellGt[t]!]! * c.predSizes[c.cellPred[t]!]!;
    const term = (nij / n) * (Math.log(nij) - logN) + (nij / n) * (-Math.log(outer) + 2 * logN);
    if (Math.abs(term) >= Number.EPSILON) mi += term;
  }
  mi = Math.max(0, mi);
  if (mi === 0) return 0;
  const hTrue = entropy(c.gtSizes, n), hPred = entropy(c.predSizes, n);
  const normalizer = Math.max((hTrue + hPred) / 2, Number.EPSILON);
  return mi / normalizer;
}

/** Pairwise precision/recall/F (the original's `pairwise`). */
export function pairwise(gt: ArrayLike<number>, pred: ArrayLike<number>): PRF {
  return pairwiseOf(contingency(gt, pred));
}

/** BCubed precision/recall/F (the original's `bcubed`). */
export function bcubed(gt: ArrayLike<number>, pred: ArrayLike<number>): PRF {
  return bcubedOf(contingency(gt, pred));
}

/** Normalised mutual information, arithmetic mean of the entropies (the original's `nmi`). */
export function nmi(gt: ArrayLike<number>, pred: ArrayLike<number>): number {
  return nmiOf(contingency(gt, pred));
}

/** All three metrics from one contingency table. */
export function evaluateAll(gt: ArrayLike<number>, pred: ArrayLike<number>): AllMetrics {
  const c = contingency(gt, pred);
  return { pairwise: pairwiseOf(c), bcubed: bcubedOf(c), nmi: nmiOf(c) };
}

/** Number of distinct labels. */
export function countClusters(labels: ArrayLike<number>): number {
  return denseIds(labels).count;
}

/** Human-readable metrics table (×100, two decimals, like the original's README). */
export function formatMetrics(m: Partial<AllMetrics>): string {
  const f = (v: number) => (v * 100).toFixed(2).padStart(7);
  const lines = ["metric      precision  recall  fscore"];
  if (m.pairwise) {
    lines.push(`pairwise      ${f(m.pairwise.precision)} ${f(m.pairwise.recall)} ${f(m.pairwise.fscore)}`);
  }
  if (m.bcubed) lines.push(`bcubed        ${f(m.bcubed.precision)} ${f(m.bcubed.recall)} ${f(m.bcubed.fscore)}`);
  if (m.nmi !== undefined) lines.push(`nmi           ${f(m.nmi)}`);
  return lines.join("\n");
}

/** Pearson correlation of two equally long series (0 when either is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (n !== b.length) throw new LtcError(`pearson: lengths differ (${n} vs ${b.length})`);
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let cov = 0, va = 0, vb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma, db = b[i]! - mb;
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  return va > 0 && vb > 0 ? cov / Math.sqrt(va * vb) : 0;
}

/** Which metrics to compute. */
export type MetricName = "all" | "pairwise" | "bcubed" | "nmi";

/** Compute the requested metrics of `pred` against `gt`. */
export function evaluateLabels(
  gt: ArrayLike<number>,
  pred: ArrayLike<number>,
  metric: MetricName = "all",
): Partial<AllMetrics> {
  switch (metric) {
    case "all":
      return evaluateAll(gt, pred);
    case "pairwise":
      return { pairwise: pairwise(gt, pred) };
    case "bcubed":
      return { bcubed: bcubed(gt, pred) };
    case "nmi":
      return { nmi: nmi(gt, pred) };
  }
}

/**
 * Read a predicted label file to be compared with `gt` (read from `gtPath`): a length mismatch is an error naming
 * both files, unless `padSingletons` (the original's iter-0 `pred_labels.txt` omits trailing unclustered rows).
 */
export function readPrediction(
  predPath: string,
  gt: { path: string; labels: Int32Array },
  options: { padSingletons?: boolean } = {},
): Int32Array {
  const pred = options.padSingletons ? readLabelsPadded(predPath, gt.labels.length) : readLabels(predPath);
  if (gt.labels.length !== pred.length) {
    throw new LtcError(
      `${predPath}: has ${pred.length} labels but ${gt.path} has ${gt.labels.length} (use --pad-singletons for an ` +
        `original iter-0 pred_labels.txt that omits trailing singletons)`,
    );
  }
  return pred;
}

/** Read both files and evaluate; a length mismatch is an error naming both files. */
export function evaluateFiles(
  gtPath: string,
  predPath: string,
  options: { metric?: MetricName; padSingletons?: boolean } = {},
): Partial<AllMetrics> {
  const gt = readLabels(gtPath);
  const pred = readPrediction(predPath, { path: gtPath, labels: gt }, options);
  return evaluateLabels(gt, pred, options.metric ?? "all");
}
