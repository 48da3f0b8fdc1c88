/**
 * GCN-V's clustering rules (reference §10.2, the original's `vegcn/`): the whole-graph adjacency
 * `A = row_normalize(max(S, Sᵀ) + I)`, the supervised `s_nbr` confidence target, the peak rule
 * (`confidence_to_peaks`) and the labels it gives (`peaks_to_labels`), plus the library entry points the stages call:
 * {@linkcode testGcnV} (predict confidences, cluster, optionally the GCN-feature second pass) and
 * {@linkcode trainGcnV} (full-graph SGD).
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import { type Features, l2NormalizeRows } from "../shared/features.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import type { BackendChoice } from "../gpu/device.ts";
import { exactKnn } from "../gpu/knn/mod.ts";
import { Rng } from "../shared/random.ts";
import {
  type Aggregator,
  backward,
  type CsrMatrix,
  forward,
  mseGradients,
  mseLoss,
  type SgdState,
  sgdStep,
  stepLr,
  stepMilestones,
  veGcnBackend,
  type VeGcnWeights,
} from "../gpu/vegcn/mod.ts";

// ---------------------------------------------------------------------------------------------------------------
// Graph inputs

/**
 * The kNN rows in ascending distance, as the original's `knns2ordered_nbrs(knns, sort=True)`. Rows that are already
 * ascending (faiss output always is) are kept as they are; others are sorted stably — the original's `np.argsort` is
 * not stable, so among equal distances its order is implementation-defined; ours keeps the file order.
 */
export function orderedNeighbours(knn: KnnGraph): KnnGraph {
  const { n, k } = knn;
  let sorted = true;
  for (let i = 0; i < n && sorted; i++) {
    for (let j = 1; j < k; j++) {
      if (knn.dists[i * k + j]! < knn.dists[i * k + j - 1]!) {
        sorted = false;
        break;
      }
    }
  }
  if (sorted) return knn;
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  const order = Array.from({ length: k }, (_, j) => j);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    order.sort((a, b) => knn.dists[o + a]! - knn.dists[o + b]! || a - b);
    order.forEach((j, t) => {
      nbrs[o + t] = knn.nbrs[o + j]!;
      dists[o + t] = knn.dists[o + j]!;
    });
    for (let j = 0; j < k; j++) order[j] = j;
  }
  return { n, k, nbrs, dists };
}

/** Options of {@linkcode gcnAdjacency}. */
export interface AdjacencyOptions {
  /** keep kNN edges with similarity ≥ this (the original's `th_sim`, 0 in every config) */
  thSim?: number;
  /** the kNN file, named in errors */
  path?: string;
}

/**
 * The whole-graph adjacency of GCN-V/E: `S = fast_knns2spmat(knns, k, th_sim, use_sim=True)` (edge i→j with value
 * 1 − d_ij where that is ≥ th_sim and j ≠ i; duplicates in a row are summed, as scipy's COO → CSR does), then
 * `row_normalize(max(S, Sᵀ) + I)`. Values are computed in float64 and stored as float32, as the original converts
 * them for torch; each row's columns are ascending. Padding entries (neighbour −1) are skipped. Distances beyond 1
 * (negative similarity, which the original refuses with an assertion) are accepted and fall below th_sim ≥ 0.
 */
export function gcnAdjacency(knn: KnnGraph, options: AdjacencyOptions = {}): CsrMatrix {
  const { n, k } = knn;
  const thSim = options.thSim ?? 0;
  const where = options.path ?? "kNN graph";
  // S in CSR, per row ascending columns with duplicates summed
  const sPtr = new Int32Array(n + 1);
  const sCol = new Int32Array(n * k), sVal = new Float64Array(n * k);
  // a row's kept entries as keys nb·k + j: a numeric typed-array sort orders them by neighbour, then by position
  const keys = new Float64Array(k);
  let e = 0;
  for (let i = 0; i < n; i++) {
    let kept = 0;
    for (let j = 0; j < k; j++) {
      const d = knn.dists[i * k + j]!;
      // The original asserts d ∈ [0, 1] (± 1e-5), i.e. crashes on any negative-similarity neighbour; we accept the
      // whole cosine range and let th_sim drop them, and reject only what cannot be 1 − cosine.
      if (!(d >= -1e-5 && d <= 2 + 1e-5)) {
        throw new LtcError(`${where}: row ${i} has distance ${d}, outside [0, 2] (is it 1 − cosine?)`);
      }
      const nb = knn.nbrs[i * k + j]!;
      if (nb < 0 || nb === i || 1 - d < thSim) continue;
      keys[kept++] = nb * k + j;
    }
    const row = keys.subarray(0, kept).sort();
    for (let t = 0; t < kept; t++) {
      const j = row[t]! % k, nb = (row[t]! - j) / k, w = 1 - knn.dists[i * k + j]!;
      if (e > sPtr[i]! && sCol[e - 1] === nb) sVal[e - 1]! += w;
      else sCol[e] = nb, sVal[e++] = w;
    }
    sPtr[i + 1] = e;
  }
  // Sᵀ by counting sort (rows of Sᵀ come out with ascending columns)
  const tPtr = new Int32Array(n + 1);
  for (let t = 0; t < e; t++) tPtr[sCol[t]! + 1]!++;
  for (let i = 0; i < n; i++) tPtr[i + 1]! += tPtr[i]!;
  const tCol = new Int32Array(e), tVal = new Float64Array(e);
  const next = tPtr.slice(0, n);
  for (let i = 0; i < n; i++) {
    for (let t = sPtr[i]!; t < sPtr[i + 1]!; t++) {
      const p = next[sCol[t]!]!++;
      tCol[p] = i;
      tVal[p] = sVal[t]!;
    }
  }
  // merge each row of S and Sᵀ taking the maximum, add the self loop, normalise by the row sum
  const rowPtr = new Int32Array(n + 1);
  const colIdx = new Int32Array(2 * e + n), vals = new Float32Array(2 * e + n);
  let row = new Float64Array(2 * k + 1); // the merged row's float64 values before normalising
  let out = 0;
  for (let i = 0; i < n; i++) {
    let a = sPtr[i]!, b = tPtr[i]!;
    const aEnd = sPtr[i + 1]!, bEnd = tPtr[i + 1]!;
    if (row.length < aEnd - a + bEnd - b + 1) row = new Float64Array(2 * (aEnd - a + bEnd - b + 1));
    const start = out;
    let selfDone = false;
    while (a < aEnd || b < bEnd) {
      const ca = a < aEnd ? sCol[a]! : n, cb = b < bEnd ? tCol[b]! : n;
      const col = Math.min(ca, cb);
      if (!selfDone && i < col) {
        colIdx[out] = i, row[out++ - start] = 1;
        selfDone = true;
      }
      let v = 0;
      if (ca === col) v = sVal[a++]!;
      if (cb === col) v = Math.max(v, tVal[b++]!);
      colIdx[out] = col, row[out++ - start] = v;
    }
    if (!selfDone) colIdx[out] = i, row[out++ - start] = 1;
    let sum = 0;
    for (let t = 0; t < out - start; t++) sum += row[t]!;
    // scipy's row_normalize multiplies by 1/rowsum; rows summing to ≤ 0 would be left as they are (never here:
    // the self loop makes every sum ≥ 1)
    const inv = 1 / (sum > 0 ? sum : 1);
    for (let t = 0; t < out - start; t++) vals[start + t] = row[t]! * inv;
    rowPtr[i + 1] = out;
  }
  return { rows: n, cols: n, rowPtr, colIdx: colIdx.slice(0, out), vals: vals.slice(0, out) };
}

/** A kNN graph must describe exactly the `n` feature rows; otherwise a clear error naming both. */
export function checkKnnMatches(knn: KnnGraph, n: number, where: { knn?: string; features?: string } = {}): void {
  if (knn.n !== n) {
    throw new LtcError(
      `${where.knn ?? "kNN graph"}: has ${knn.n} rows, but ${where.features ?? "the features"} have ${n}` +
        " (a kNN file of another dataset?)",
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Confidence target

/**
 * The `s_nbr` confidence (GCN-V's training target): over row i's neighbours (self included, ascending distance),
 * Σ (1 − d) for same-label neighbours minus Σ (1 − d) for the others, in float64, stored as float32; then every value
 * divided by the largest magnitude (in float32, as numpy's `conf /= np.abs(conf).max()` on a float32 array).
 * Padding entries (−1) are skipped.
 */
export function sNbrConfidence(knn: KnnGraph, labels: ArrayLike<number>): Float32Array {
  const { n, k } = knn;
  if (labels.length !== n) throw new LtcError(`s_nbr confidence: ${labels.length} labels for ${n} kNN rows`);
  const conf = new Float32Array(n);
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    let pos = 0, neg = 0;
    const lb = labels[i]!;
    for (let j = 0; j < k; j++) {
      const nb = knn.nbrs[i * k + j]!;
      if (nb < 0) continue;
      const s = 1 - knn.dists[i * k + j]!;
      if (labels[nb] === lb) pos += s;
      else neg += s;
    }
    conf[i] = pos - neg;
    maxAbs = Math.max(maxAbs, Math.abs(conf[i]!));
  }
  if (maxAbs > 0) { for (let i = 0; i < n; i++) conf[i] = conf[i]! / maxAbs; }
  return conf;
}

// ---------------------------------------------------------------------------------------------------------------
// Peaks and labels

/** Each node's chosen peaks: up to `maxConn` per node, −1 where fewer. */
export interface Peaks {
  n: number;
  maxConn: number;
  /** n × maxConn peak ids, −1 = none */
  peak: Int32Array;
  /** n × maxConn distances to them (1 − cosine) */
  dist: Float32Array;
}

/** Empty peaks for n nodes. */
export function emptyPeaks(n: number, maxConn = 1): Peaks {
  return { n, maxConn, peak: new Int32Array(n * maxConn).fill(-1), dist: new Float32Array(n * maxConn) };
}

/**
 * `confidence_to_peaks(dists, nbrs, conf, max_conn)`: for each node, scan its neighbours in ascending distance and
 * take the first `maxConn` ones j ≠ i with strictly higher confidence, with their distances. Nodes without one
 * have no peak (they are roots). `knn` must be ordered ({@linkcode orderedNeighbours}).
 */
export function confidenceToPeaks(knn: KnnGraph, conf: ArrayLike<number>, options: { maxConn?: number } = {}): Peaks {
  const { n, k } = knn;
  const maxConn = options.maxConn ?? 1;
  if (conf.length !== n) throw new LtcError(`peaks: ${conf.length} confidences for ${n} kNN rows`);
  const peaks = emptyPeaks(n, maxConn);
  for (let i = 0; i < n; i++) {
    const ci = conf[i]!;
    let got = 0;
    for (let j = 0; j < k && got < maxConn; j++) {
      const nb = knn.nbrs[i * k + j]!;
      if (nb < 0 || nb === i || !(conf[nb]! > ci)) continue;
      peaks.peak[i * maxConn + got] = nb;
      peaks.dist[i * maxConn + got] = knn.dists[i * k + j]!;
      got++;
    }
  }
  return peaks;
}

/**
 * The original's union–find (`edge_to_connected_graph`), kept minimal and literal because the label numbering
 * depends on it: for each edge u → v in order, the root of u is linked under the root of v (no rank), and labels are
 * the ranks of the final roots in ascending id order.
 * TODO(merge): the lead's shared union-find in cluster/ can replace this if it offers this directed link.
 */
function edgesToLabels(n: number, edges: { src: Int32Array; dst: Int32Array; count: number }): Int32Array {
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (x: number): number => {
    let r = x;
    while (parent[r] !== r) r = parent[r]!;
    while (parent[x] !== r) {
      const p = parent[x]!;
      parent[x] = r;
      x = p;
    }
    return r;
  };
  for (let t = 0; t < edges.count; t++) {
    const ru = find(edges.src[t]!), rv = find(edges.dst[t]!);
    parent[ru] = rv;
  }
  const rank = new Int32Array(n).fill(-1);
  const root = new Int32Array(n);
  for (let i = 0; i < n; i++) root[i] = find(i), rank[root[i]!] = 0;
  let next = 0;
  for (let i = 0; i < n; i++) if (rank[i] === 0) rank[i] = next++;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rank[root[i]!]!;
  return labels;
}

/**
 * `peaks_to_labels(peaks, dist2peak, tau, N)`: keep each edge i → peak whose distance is `< 1 − tau` (similarity
 * above tau) and whose peak is not i, in node order; union–find; labels 0..C−1 numbered by ascending root id. Every
 * node gets a label.
 */
export function peaksToLabels(peaks: Peaks, options: { tau: number }): Int32Array {
  const { n, maxConn } = peaks;
  const limit = 1 - options.tau; // float64, as Python computes it; distances are float32 values
  const src = new Int32Array(n * maxConn), dst = new Int32Array(n * maxConn);
  let count = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < maxConn; c++) {
      const p = peaks.peak[i * maxConn + c]!;
      if (p < 0 || p === i || !(peaks.dist[i * maxConn + c]! < limit)) continue;
      src[count] = i;
      dst[count++] = p;
    }
  }
  return edgesToLabels(n, { src, dst, count });
}

// ---------------------------------------------------------------------------------------------------------------
// Library entry points

/** Where the inputs came from, for error messages. */
export interface InputPaths {
  features?: string;
  knn?: string;
  checkpoint?: string;
}

/** Options of {@linkcode testGcnV}. */
export interface TestGcnVOptions {
  /** L2-normalised features (N × featureDim) */
  features: Features;
  /** the kNN graph of those features (the original: faiss, k 80) */
  knn: KnnGraph;
  /** a GCN-V network (see `loadVeGcnCheckpoint`) */
  weights: VeGcnWeights;
  /** edge threshold of the first clustering (ms1m 0.65, fashion 0.8) */
  tau0?: number;
  /** peaks per node (1 in every config) */
  maxConn?: number;
  /** kNN similarity threshold of the adjacency (0 in every config) */
  thSim?: number;
  /**
   * also cluster on the GCN features (`use_gcn_feat`): exact kNN of the L2-normalised 512-d features with `gcnFeatK`
   * neighbours (default: the input kNN's k) and the same peak rule with `tau`
   */
  useGcnFeat?: boolean;
  /** edge threshold of the GCN-feature clustering (ms1m 0.8) */
  tau?: number;
  gcnFeatK?: number;
  /** backend of the GCN-feature kNN */
  knnBackend?: BackendChoice;
  /** backend of the network's products (default `auto`: WebGPU on a real GPU, else the CPU twin) */
  backend?: BackendChoice;
  /**
   * return the GCN features (default true; implied by `useGcnFeat`): false spares handing 512 values per node back
   * from a backend that fuses the last layers
   */
  keepFeatures?: boolean;
  paths?: InputPaths;
}

/** What {@linkcode testGcnV} computes. */
export interface TestGcnVResult {
  /** predicted confidence per node (the original's `pred_confs`) */
  predConfs: Float32Array;
  /**
   * the GCN features (N × nhid, ReLU output of the GraphConv; not normalised), as the original saves them; empty
   * with `keepFeatures: false`
   */
  gcnFeatures: Float32Array;
  gcnFeatureDim: number;
  /** partition from the peak rule on the input kNN with tau0 */
  labels: Int32Array;
  /** with `useGcnFeat`: the kNN of the normalised GCN features and the partition on it with tau */
  gcnFeat?: { knn: KnnGraph; labels: Int32Array; knnBackend: string };
  /** which backend ran the network */
  backend: string;
}

/** GCN-V inference on the whole graph, then the peak rule (`test_gcn_v`). */
export async function testGcnV(options: TestGcnVOptions): Promise<TestGcnVResult> {
  const { features, knn, weights } = options;
  const paths = options.paths ?? {};
  if (weights.config.kind !== "gcn-v") throw new LtcError(`${paths.checkpoint ?? "weights"}: not a GCN-V network`);
  if (features.dim !== weights.config.featureDim) {
    throw new LtcError(
      `${paths.features ?? "features"}: ${features.dim}-d, but the GCN-V model expects ` +
        `${weights.config.featureDim}-d features`,
    );
  }
  checkKnnMatches(knn, features.n, paths);
  const ordered = orderedNeighbours(knn);
  const backend = await veGcnBackend(options.backend);
  const agg = await backend.aggregator(gcnAdjacency(knn, { thSim: options.thSim, path: paths.knn }));
  const keepFeatures = (options.keepFeatures ?? true) || (options.useGcnFeat ?? false);
  const cache = await forward(weights, { x: features.data, agg }, {
    kernels: backend.kernels,
    inference: true,
    keepFeatures,
  });
  const predConfs = cache.out;
  const gcnFeatures = cache.conv[0]!;
  const gcnFeatureDim = weights.config.convDims[0]!;
  const maxConn = options.maxConn ?? 1;
  const labels = peaksToLabels(confidenceToPeaks(ordered, predConfs, { maxConn }), { tau: options.tau0 ?? 0.65 });
  const result: TestGcnVResult = { predConfs, gcnFeatures, gcnFeatureDim, labels, backend: backend.label };
  if (options.useGcnFeat) {
    const normed = gcnFeatures.slice();
    l2NormalizeRows(normed, features.n, gcnFeatureDim, "GCN features");
    const k = options.gcnFeatK ?? knn.k;
    const r = await exactKnn({ data: normed, n: features.n, dim: gcnFeatureDim }, {
      k,
      backend: options.knnBackend,
      progress: false,
    });
    const peaks = confidenceToPeaks(orderedNeighbours(r.graph), predConfs, { maxConn });
    result.gcnFeat = { knn: r.graph, labels: peaksToLabels(peaks, { tau: options.tau ?? 0.8 }), knnBackend: r.backend };
  }
  return result;
}

/** GCN-V's training schedule (the original's ms1m values in brackets). */
export interface GcnVSchedule {
  /** full-graph SGD steps [80000] */
  iterations: number;
  /** [0.1] */
  lr: number;
  /** [0.9] */
  momentum: number;
  /** [1e-5; fashion 1e-4] */
  weightDecay: number;
  /** learning-rate steps as fractions of `iterations` [0.5, 0.8, 0.9] */
  lrStepRatios: number[];
  /** the milestones themselves (iterations), instead of `lrStepRatios` (configs list them) */
  lrSteps?: number[];
  /** [0.1] */
  lrGamma: number;
}

/** The original's ms1m GCN-V schedule. */
export const GCN_V_SCHEDULE: GcnVSchedule = {
  iterations: 80000,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-5,
  lrStepRatios: [0.5, 0.8, 0.9],
  lrGamma: 0.1,
};

/** Options of {@linkcode trainGcnV}. */
export interface TrainGcnVOptions {
  features: Features;
  knn: KnnGraph;
  /** ground-truth labels (for the `s_nbr` target) */
  labels: ArrayLike<number>;
  /** starting weights (modified in place) */
  weights: VeGcnWeights;
  schedule: GcnVSchedule;
  /** SGD state to resume from (momentum buffers, steps taken); fresh when absent */
  state?: SgdState;
  /** first iteration to run (resuming), default 0 */
  startIter?: number;
  /** stop after this iteration (exclusive), default `schedule.iterations` (lets a caller checkpoint in chunks) */
  endIter?: number;
  thSim?: number;
  /** backend of the network's products (default `auto`) */
  backend?: BackendChoice;
  /** called after every step */
  onIter?: (report: { iter: number; lr: number; loss: number }) => void;
  paths?: InputPaths;
}

/**
 * GCN-V training (`train_gcnv` workflow): one forward/backward on the whole graph per iteration, MSE to the
 * `s_nbr` target, `torch.optim.SGD` with mmcv's step policy at `lrStepRatios · iterations`. Returns the weights
 * (the same object, updated), the SGD state, and the loss of each iteration run.
 */
export async function trainGcnV(
  options: TrainGcnVOptions,
): Promise<{ weights: VeGcnWeights; state: SgdState; losses: number[]; backend: string }> {
  const { features, knn, weights, schedule } = options;
  const paths = options.paths ?? {};
  if (features.dim !== weights.config.featureDim) {
    throw new LtcError(
      `${paths.features ?? "features"}: ${features.dim}-d, but the GCN-V model expects ` +
        `${weights.config.featureDim}-d features`,
    );
  }
  checkKnnMatches(knn, features.n, paths);
  const target = sNbrConfidence(orderedNeighbours(knn), options.labels);
  const backend = await veGcnBackend(options.backend);
  const agg = await backend.aggregator(gcnAdjacency(knn, { thSim: options.thSim, path: paths.knn }));
  const kernels = backend.kernels;
  const state = options.state ?? { momentum: null, steps: 0 };
  const milestones = schedule.lrSteps ?? stepMilestones(schedule.iterations, schedule.lrStepRatios);
  const losses: number[] = [];
  const end = Math.min(options.endIter ?? schedule.iterations, schedule.iterations);
  for (let iter = options.startIter ?? 0; iter < end; iter++) {
    const lr = stepLr(schedule.lr, iter, milestones, schedule.lrGamma);
    const { loss, grads } = await mseGradients(weights, { x: features.data, agg, target }, { kernels });
    if (!Number.isFinite(loss)) throw new LtcError(`train-gcn-v: loss became ${loss} at iteration ${iter + 1}`);
    sgdStep(weights, grads, state, { lr, momentum: schedule.momentum, weightDecay: schedule.weightDecay });
    losses.push(loss);
    options.onIter?.({ iter: iter + 1, lr, loss });
  }
  return { weights, state, losses, backend: backend.label };
}

/**
 * A GraphConv's aggregation computed beforehand: `apply` hands back the stored A·X rows of a batch. GCN-V has one
 * GraphConv and A·X does not depend on the weights, so a batch of nodes needs only its own rows of X and A·X; no
 * gradient flows to the input, so the transposed product is never needed.
 */
export class FixedAggregation implements Aggregator {
  /** @param ax rows × width: the aggregation of the batch's input rows */
  constructor(readonly ax: Float32Array, readonly rows: number) {}
  apply(x: Float32Array, width: number): Promise<Float32Array> {
    if (x.length !== this.rows * width || this.ax.length !== x.length) {
      throw new Error(`FixedAggregation: ${x.length} input values for ${this.rows} stored rows of ${width}`);
    }
    return Promise.resolve(this.ax);
  }
  applyTransposed(): Promise<Float32Array> {
    throw new Error("FixedAggregation: no gradient flows to the input features");
  }
}

/** GCN-V's sampled-node schedule for CPUs (ours; the original trains on the whole graph every iteration). */
export interface GcnVNodeSchedule {
  /** passes over the nodes in a seeded shuffled order */
  epochs: number;
  /** nodes per SGD step (the last step of an epoch takes the rest) */
  batchNodes: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** epochs at which the learning rate drops */
  lrSteps: number[];
  lrGamma: number;
  /** seed of the per-epoch shuffle */
  seed: number;
}

/** Stream of the per-epoch node shuffle (`new Rng(seed, GCN_V_SHUFFLE_STREAM, epoch)`). */
export const GCN_V_SHUFFLE_STREAM = 22;

/** Options of {@linkcode trainGcnVNodes}. */
export interface TrainGcnVNodesOptions extends Omit<TrainGcnVOptions, "schedule" | "startIter" | "endIter" | "onIter"> {
  schedule: GcnVNodeSchedule;
  /** first epoch to run (resuming), default 0; stop before `endEpoch` (default `schedule.epochs`) */
  startEpoch?: number;
  endEpoch?: number;
  /** called after every step */
  onStep?: (report: { epoch: number; step: number; steps: number; lr: number; loss: number }) => void;
}

/**
 * GCN-V training on sampled nodes (ours, for CPUs): the same network, target and loss as {@linkcode trainGcnV}, but
 * each SGD step takes the MSE over a batch of nodes instead of the whole graph. With one GraphConv, a node's output
 * depends only on its row of X and of A·X, and A·X does not change with the weights: it is computed once, and a
 * step costs what the whole-graph step costs times batch / N. Every epoch visits each node once in a seeded
 * shuffled order; the learning rate drops at `lrSteps` epochs.
 */
export async function trainGcnVNodes(
  options: TrainGcnVNodesOptions,
): Promise<{ weights: VeGcnWeights; state: SgdState; epochLosses: number[]; backend: string }> {
  const { features, knn, weights, schedule } = options;
  const paths = options.paths ?? {};
  const dim = weights.config.featureDim;
  if (features.dim !== dim) {
    throw new LtcError(
      `${paths.features ?? "features"}: ${features.dim}-d, but the GCN-V model expects ${dim}-d features`,
    );
  }
  if (weights.config.convDims.length !== 1) throw new LtcError("train-gcn-v: sampled nodes need one GraphConv");
  checkKnnMatches(knn, features.n, paths);
  if (!(Number.isInteger(schedule.batchNodes) && schedule.batchNodes >= 1)) {
    throw new LtcError(`train-gcn-v: batch of ${schedule.batchNodes} nodes (must be a positive integer)`);
  }
  const n = features.n;
  const target = sNbrConfidence(orderedNeighbours(knn), options.labels);
  const backend = await veGcnBackend(options.backend);
  const agg = await backend.aggregator(gcnAdjacency(knn, { thSim: options.thSim, path: paths.knn }));
  const ax = await agg.apply(features.data, dim);
  const state = options.state ?? { momentum: null, steps: 0 };
  const steps = Math.ceil(n / schedule.batchNodes);
  const epochLosses: number[] = [];
  for (let epoch = options.startEpoch ?? 0; epoch < (options.endEpoch ?? schedule.epochs); epoch++) {
    const lr = stepLr(schedule.lr, epoch, schedule.lrSteps, schedule.lrGamma);
    const order = new Rng(schedule.seed, GCN_V_SHUFFLE_STREAM, epoch).permutation(n);
    let sum = 0;
    for (let step = 0; step < steps; step++) {
      const ids = order.subarray(step * schedule.batchNodes, Math.min(n, (step + 1) * schedule.batchNodes));
      const rows = ids.length;
      const xb = new Float32Array(rows * dim), axb = new Float32Array(rows * dim), tb = new Float32Array(rows);
      ids.forEach((id, r) => {
        xb.set(features.data.subarray(id * dim, (id + 1) * dim), r * dim);
        axb.set(ax.subarray(id * dim, (id + 1) * dim), r * dim);
        tb[r] = target[id]!;
      });
      const batchAgg = new FixedAggregation(axb, rows);
      const cache = await forward(weights, { x: xb, agg: batchAgg }, { kernels: backend.kernels });
      const { loss, dOut } = mseLoss(cache.out, tb);
      if (!Number.isFinite(loss)) throw new LtcError(`train-gcn-v: loss became ${loss} at epoch ${epoch + 1}`);
      const grads = await backward(weights, { cache, agg: batchAgg, dOut }, { kernels: backend.kernels });
      sgdStep(weights, grads, state, { lr, momentum: schedule.momentum, weightDecay: schedule.weightDecay });
      sum += loss * rows;
      options.onStep?.({ epoch: epoch + 1, step: step + 1, steps, lr, loss });
    }
    epochLosses.push(sum / n);
  }
  return { weights, state, epochLosses, backend: backend.label };
}
