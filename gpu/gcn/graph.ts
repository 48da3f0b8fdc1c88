/**
 * Per-proposal samples exactly as the original's `ClusterDetProcessor.build_graph` (reference §4.2): adjacency =
 * identity with every edge's weight `1 − dist` (or 1 with `wo_weight`) written symmetrically (a later duplicate
 * overwrites, as numpy assignment does), divided by its row sums in float64 and stored as float32; the node features
 * are rows of the L2-normalised features. Target: IoU (or IoP) of the proposal with the whole ground-truth class of
 * its majority label. Proposals are then packed, many per dispatch, as CSR over concatenated node rows.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { ProposalEdges } from "../../shared/proposal_io.ts";

/** One proposal's graph: node ids and its normalised adjacency (CSR, self-loops included). */
export interface ProposalGraph {
  /** global node indices, in file order */
  nodes: Int32Array;
  /** CSR row pointers (n + 1) */
  rowPtr: Int32Array;
  /** CSR column (local node index) of each stored entry */
  cols: Int32Array;
  /** float32 adjacency value of each stored entry (row-normalised unless `normAdj` was off) */
  vals: Float32Array;
  /** the original's `D`: float32 row sums of the stored adjacency (≈ 1 when normalised) */
  deg: Float32Array;
}

/** Options of {@linkcode buildProposalGraph}. */
export interface BuildGraphOptions {
  /** use weight 1 for every edge instead of `1 − dist` */
  woWeight?: boolean;
  /** row-normalise (the original's `is_norm_adj`, default true) */
  normAdj?: boolean;
  /** file named in errors */
  path?: string;
}

/**
 * Global → local index map reused across proposals (an Int32Array over all N nodes, reset after each use), so
 * building a graph costs O(n² + E) with no hashing.
 */
export class LocalIndex {
  #map: Int32Array;
  #dense = new Float64Array(0);
  constructor(n: number) {
    this.#map = new Int32Array(n).fill(-1);
  }
  /** number of global nodes */
  get size(): number {
    return this.#map.length;
  }
  /** @internal */
  get map(): Int32Array {
    return this.#map;
  }
  /** @internal scratch dense matrix of at least n² entries */
  dense(n: number): Float64Array {
    if (this.#dense.length < n * n) this.#dense = new Float64Array(Math.max(n * n, this.#dense.length * 2));
    return this.#dense;
  }
}

/** Build one proposal's graph (see module doc). Errors name the file. */
export function buildProposalGraph(
  nodes: Int32Array,
  edges: ProposalEdges,
  index: LocalIndex,
  options: BuildGraphOptions = {},
): ProposalGraph {
  const path = options.path ?? "<proposal>";
  const n = nodes.length;
  if (n < 2) throw new LtcError(`${path}: a proposal needs at least 2 nodes, this one has ${n}`);
  const map = index.map;
  for (let i = 0; i < n; i++) {
    const g = nodes[i]!;
    if (g < 0 || g >= map.length) {
      resetMap(map, nodes, i);
      throw new LtcError(`${path}: node ${g} is outside the ${map.length} feature rows`);
    }
    if (map[g] !== -1) {
      resetMap(map, nodes, i);
      throw new LtcError(`${path}: node ${g} is listed twice`);
    }
    map[g] = i;
  }
  const a = index.dense(n);
  a.fill(0, 0, n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = 1;
  const { e1, e2, dist } = edges;
  for (let k = 0; k < e1.length; k++) {
    const u = e1[k]!, v = e2[k]!;
    const lu = u >= 0 && u < map.length ? map[u]! : -1;
    const lv = v >= 0 && v < map.length ? map[v]! : -1;
    if (lu < 0 || lv < 0) {
      resetMap(map, nodes, n);
      throw new LtcError(`${path}: edge ${k} (${u}, ${v}) joins a node outside the proposal`);
    }
    const d = dist[k]!;
    if (!Number.isFinite(d)) {
      resetMap(map, nodes, n);
      throw new LtcError(`${path}: edge ${k} has a non-finite distance`);
    }
    const w = options.woWeight ? 1 : 1 - d;
    a[lu * n + lv] = w;
    a[lv * n + lu] = w;
  }
  resetMap(map, nodes, n);
  const norm = options.normAdj ?? true;
  const rowPtr = new Int32Array(n + 1);
  let nnz = 0;
  for (let i = 0; i < n * n; i++) if (a[i] !== 0) nnz++;
  const cols = new Int32Array(nnz), vals = new Float32Array(nnz), deg = new Float32Array(n);
  let p = 0;
  for (let i = 0; i < n; i++) {
    let rowSum = 0;
    for (let j = 0; j < n; j++) rowSum += a[i * n + j]!;
    if (norm && rowSum === 0) throw new LtcError(`${path}: adjacency row ${i} sums to 0 and cannot be normalised`);
    let d = 0;
    for (let j = 0; j < n; j++) {
      const x = a[i * n + j]!;
      if (x === 0) continue;
      const v = Math.fround(norm ? x / rowSum : x);
      cols[p] = j;
      vals[p++] = v;
      d += v;
    }
    rowPtr[i + 1] = p;
    deg[i] = Math.fround(d);
    if (!(deg[i]! > 0)) throw new LtcError(`${path}: adjacency row ${i} has a non-positive sum`);
  }
  return { nodes, rowPtr, cols, vals, deg };
}

function resetMap(map: Int32Array, nodes: Int32Array, upto: number): void {
  for (let i = 0; i < upto; i++) {
    const g = nodes[i]!;
    if (g >= 0 && g < map.length) map[g] = -1;
  }
}

/** Ground truth needed for training targets: each node's label and each label's class size. */
export interface GroundTruth {
  labels: Int32Array;
  classSize: Map<number, number>;
}

/** Class sizes of a label vector. */
export function groundTruth(labels: Int32Array): GroundTruth {
  const classSize = new Map<number, number>();
  for (const l of labels) classSize.set(l, (classSize.get(l) ?? 0) + 1);
  return { labels, classSize };
}

/**
 * The original's target for a proposal: the majority label is the first label, in order of first appearance among
 * the nodes, to reach the strict maximum count; G is that label's whole class. Returns IoU `|P∩G| / |P∪G|`, or IoP
 * `|P∩G| / |P|`.
 */
export function proposalTarget(nodes: Int32Array, gt: GroundTruth, mode: "iou" | "iop"): number {
  const counts = new Map<number, number>();
  for (const g of nodes) {
    const l = gt.labels[g]!;
    counts.set(l, (counts.get(l) ?? 0) + 1);
  }
  let best = -1, bestLabel = 0;
  for (const [l, c] of counts) if (c > best) best = c, bestLabel = l;
  const inter = best;
  if (mode === "iop") return inter / nodes.length;
  return inter / (nodes.length + gt.classSize.get(bestLabel)! - inter);
}

/** Many proposals packed for one dispatch: concatenated node rows, CSR with batch-absolute columns. */
export interface PackedBatch {
  /** number of proposals */
  count: number;
  /** proposal p owns packed rows rowStart[p] … rowStart[p+1]−1 */
  rowStart: Int32Array;
  /** per packed row: the row it reads (global node id, or a row of the shared first-layer table) */
  rowSource: Int32Array;
  rowPtr: Int32Array;
  cols: Int32Array;
  vals: Float32Array;
  deg: Float32Array;
  /** targets (training only) */
  labels?: Float32Array;
}

/** Total packed rows of a batch. */
export function packedRows(b: PackedBatch): number {
  return b.rowStart[b.count]!;
}

/**
 * Pack graphs into one batch. `source(graph, i)` gives the row each node reads (default: its global id).
 */
export function packGraphs(
  graphs: ProposalGraph[],
  options: { source?: (nodeId: number) => number; labels?: Float32Array } = {},
): PackedBatch {
  let rows = 0, nnz = 0;
  for (const g of graphs) rows += g.nodes.length, nnz += g.cols.length;
  const rowStart = new Int32Array(graphs.length + 1);
  const rowSource = new Int32Array(rows);
  const rowPtr = new Int32Array(rows + 1);
  const cols = new Int32Array(nnz), vals = new Float32Array(nnz), deg = new Float32Array(rows);
  let r = 0, e = 0;
  graphs.forEach((g, p) => {
    rowStart[p] = r;
    const n = g.nodes.length;
    for (let i = 0; i < n; i++) {
      rowSource[r + i] = options.source ? options.source(g.nodes[i]!) : g.nodes[i]!;
      deg[r + i] = g.deg[i]!;
      rowPtr[r + i] = e + g.rowPtr[i]!;
    }
    for (let k = 0; k < g.cols.length; k++) cols[e + k] = r + g.cols[k]!;
    vals.set(g.vals, e);
    r += n;
    e += g.cols.length;
  });
  rowStart[graphs.length] = r;
  rowPtr[rows] = e;
  return { count: graphs.length, rowStart, rowSource, rowPtr, cols, vals, deg, labels: options.labels };
}

/** Transposed CSR of a batch's adjacency (what the backward pass aggregates with). */
export function transposeCsr(b: PackedBatch): { rowPtr: Int32Array; cols: Int32Array; vals: Float32Array } {
  const rows = packedRows(b);
  const cnt = new Int32Array(rows + 1);
  for (let k = 0; k < b.cols.length; k++) cnt[b.cols[k]! + 1]!++;
  for (let i = 0; i < rows; i++) cnt[i + 1]! += cnt[i]!;
  const fill = cnt.slice(0, rows);
  const cols = new Int32Array(b.cols.length), vals = new Float32Array(b.cols.length);
  for (let i = 0; i < rows; i++) {
    for (let k = b.rowPtr[i]!; k < b.rowPtr[i + 1]!; k++) {
      const j = b.cols[k]!;
      const at = fill[j]!++;
      cols[at] = i;
      vals[at] = b.vals[k]!;
    }
  }
  return { rowPtr: cnt, cols, vals };
}

/** A graph from a dense float32 adjacency (already normalised, as the fixtures store it): zeros are not stored. */
export function graphFromDense(nodes: Int32Array, adj: Float32Array): ProposalGraph {
  const n = nodes.length;
  if (adj.length !== n * n) throw new Error(`adjacency has ${adj.length} entries, expected ${n * n}`);
  const rowPtr = new Int32Array(n + 1);
  const cols: number[] = [], vals: number[] = [];
  const deg = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = 0; j < n; j++) {
      const v = adj[i * n + j]!;
      if (v === 0) continue;
      cols.push(j);
      vals.push(v);
      d += v;
    }
    rowPtr[i + 1] = cols.length;
    deg[i] = Math.fround(d);
  }
  return { nodes, rowPtr, cols: Int32Array.from(cols), vals: Float32Array.from(vals), deg };
}
