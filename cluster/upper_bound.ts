/**
 * The GCN-D upper bound (reference §8): candidate clusters from partitions, cluster lists or proposal folders, scored
 * by their exact ground-truth IoU and de-overlapped — what the pipeline would give if GCN-D were perfect.
 * @module
 */
import { join } from "node:path";
import { isDir } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { readLabels } from "../shared/meta.ts";
import { type NdArray, toNumbers } from "../shared/ndarray.ts";
import { readNpzArray } from "../shared/npy.ts";
import { listProposalFiles, readProposalNodes } from "../shared/proposal_io.ts";
import { deoverlap } from "./deoverlap.ts";
import { type AllMetrics, evaluateAll } from "./metrics.ts";

/** Label groups of a partition file, in order of first appearance, members ascending. */
export function partitionGroups(labels: ArrayLike<number>): Int32Array[] {
  const map = new Map<number, number>();
  const ids = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    let g = map.get(labels[i]!);
    if (g === undefined) map.set(labels[i]!, g = map.size);
    ids[i] = g;
  }
  const sizes = new Int32Array(map.size);
  for (const g of ids) sizes[g]!++;
  const groups = Array.from(sizes, (s) => new Int32Array(s));
  const fill = new Int32Array(map.size);
  for (let i = 0; i < ids.length; i++) groups[ids[i]!]![fill[ids[i]!]!++] = i;
  return groups;
}

/** Clusters of a `.npz` list (object array of index arrays, or a 2-D integer array with one cluster per row). */
function npzClusters(path: string): Int32Array[] {
  const arr = readNpzArray(path);
  const asIndices = (a: NdArray, where: string): Int32Array => {
    const v = toNumbers(a);
    const out = new Int32Array(v.length);
    for (let t = 0; t < v.length; t++) {
      if (!Number.isInteger(v[t]!) || v[t]! < 0) throw new LtcError(`${path}: ${where} holds bad index ${v[t]}`);
      out[t] = v[t]!;
    }
    return out;
  };
  if (arr.dtype === "O") {
    return (arr.data as unknown[]).map((c, i) => {
      if (Array.isArray(c)) {
        return asIndices({ dtype: "f8", shape: [c.length], data: Float64Array.from(c) }, `cluster ${i}`);
      }
      const a = c as NdArray;
      if (!a || !Array.isArray(a.shape)) throw new LtcError(`${path}: cluster ${i} is not an index array`);
      return asIndices(a, `cluster ${i}`);
    });
  }
  if (arr.shape.length !== 2) throw new LtcError(`${path}: expected a list of clusters, got shape (${arr.shape})`);
  const [rows, cols] = arr.shape as [number, number];
  const all = asIndices(arr, "the array");
  return Array.from({ length: rows }, (_, r) => all.slice(r * cols, (r + 1) * cols));
}

/**
 * Candidate clusters from each source (see the module doc), concatenated in the given order. Backslashes in paths
 * are dropped, as the original does.
 */
export function readCandidateClusters(paths: string[]): Int32Array[] {
  if (paths.length === 0) throw new LtcError("upper-bound: no --cluster-path given");
  const out: Int32Array[] = [];
  for (const raw of paths) {
    const path = raw.replaceAll("\\", "");
    if (isDir(path)) {
      const folder = isDir(join(path, "proposals")) ? join(path, "proposals") : path;
      for (const f of listProposalFiles([folder])) out.push(readProposalNodes(f.node));
    } else if (path.endsWith(".npz")) {
      // one push per cluster: spreading millions of them into one call overflows the stack (scale 9: 5.2M rows)
      for (const c of npzClusters(path)) out.push(c);
    } else {
      for (const c of partitionGroups(readLabels(path))) out.push(c);
    }
  }
  return out;
}

/**
 * IoU of each cluster with the ground-truth class of its majority label: the label met first among those with the
 * highest count (the original's `get_majority`), IoU = |P ∩ G| / |P ∪ G|; −1e6 for an empty cluster.
 */
export function clusterIous(clusters: ArrayLike<number>[], gt: ArrayLike<number>): Float64Array {
  const n = gt.length;
  const gtSize = new Map<number, number>();
  for (let i = 0; i < n; i++) gtSize.set(gt[i]!, (gtSize.get(gt[i]!) ?? 0) + 1);
  const out = new Float64Array(clusters.length);
  const counts = new Map<number, number>();
  clusters.forEach((c, ci) => {
    counts.clear();
    for (let t = 0; t < c.length; t++) {
      const v = c[t]!;
      if (v >= n) throw new LtcError(`cluster ${ci} holds node ${v}, but the ground truth has ${n} labels`);
      counts.set(gt[v]!, (counts.get(gt[v]!) ?? 0) + 1);
    }
    let best = 0, lb = 0;
    for (const [l, cnt] of counts) {
      if (cnt > best) {
        best = cnt;
        lb = l;
      }
    }
    out[ci] = best === 0 ? -1e6 : best / (c.length + gtSize.get(lb)! - best);
  });
  return out;
}

/** Result of {@linkcode upperBound}. */
export interface UpperBoundResult {
  labels: Int32Array;
  ious: Float64Array;
  metrics: AllMetrics;
}

/** The upper bound of a candidate set against ground truth `gt` (reference §8). */
export function upperBound(
  clusters: ArrayLike<number>[],
  gt: ArrayLike<number>,
  options: { thPos?: number; thIou?: number } = {},
): UpperBoundResult {
  if (clusters.length === 0) throw new LtcError("upper-bound: the candidate set is empty");
  const ious = clusterIous(clusters, gt);
  const labels = deoverlap(ious, clusters, gt.length, {
    thPos: options.thPos ?? -1,
    thIou: options.thIou ?? 1,
    strictPos: true,
  });
  return { labels, ious, metrics: evaluateAll(gt, labels) };
}
