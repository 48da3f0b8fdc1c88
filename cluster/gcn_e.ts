/**
 * GCN-E's clustering rules (reference §10.3, the original's `vegcn/datasets/gcn_e_dataset.py` and `test_gcn_e`):
 * which nodes get a candidate subgraph and which connect directly, how a subgraph is built (direction features
 * f[c] − f[i], the global adjacency restricted to the candidates and row-normalised again), the model's connection
 * choice, and the labels. Entry points for the stages: {@linkcode testGcnE} and {@linkcode trainGcnE}.
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import type { Features } from "../shared/features.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import { Rng } from "../shared/random.ts";
import {
  backward,
  BlockAggregator,
  type CsrMatrix,
  type DenseBlock,
  type DenseKernels,
  directionFirstLayer,
  type FirstLayerTable,
  firstLayerTable,
  forward,
  logSoftmax,
  nllLoss,
  type SgdState,
  sgdStep,
  stepLr,
  veGcnBackend,
  type VeGcnWeights,
} from "../gpu/vegcn/mod.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  checkKnnMatches,
  emptyPeaks,
  gcnAdjacency,
  type InputPaths,
  orderedNeighbours,
  type Peaks,
  peaksToLabels,
} from "./gcn_v.ts";

/**
 * The ignore set: the `int(N · ratio)` nodes of smallest confidence (largest with `smallest: false`), as a 0/1 mask.
 * The original picks them with `np.argpartition`, whose choice among equal confidences at the boundary is
 * implementation-defined; ours takes the lower node id first.
 */
export function ignoreSet(conf: ArrayLike<number>, ratio: number, options: { smallest?: boolean } = {}): Uint8Array {
  const n = conf.length;
  if (!(ratio >= 0 && ratio <= 1)) throw new LtcError(`ignore_ratio must lie in [0, 1], got ${ratio}`);
  const mask = new Uint8Array(n);
  if (ratio === 1) return mask.fill(1);
  const count = Math.trunc(n * ratio);
  const sign = options.smallest ?? true ? 1 : -1;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => sign * (conf[a]! - conf[b]!) || a - b);
  for (let t = 0; t < count; t++) mask[order[t]!] = 1;
  return mask;
}

/** Options of {@linkcode candidateSet}. */
export interface CandidateOptions {
  /** share of smallest confidences that connect directly (ms1m: train 0.7, test 0.8) */
  ignoreRatio: number;
  /** connections per node (1 in every config) */
  maxConn?: number;
  /** ignore the smallest confidences (true in every config) rather than the largest */
  ignoreSmallConfs?: boolean;
}

/** Who gets a subgraph, with its candidates; who connects directly. */
export interface CandidateSet {
  n: number;
  /** nodes that get a subgraph, ascending (the original's `subset_idxs`) */
  subsetIdxs: Int32Array;
  /** subgraph s's candidates are `cand[candPtr[s] .. candPtr[s+1])`, ascending distance, with `candDist` */
  candPtr: Int32Array;
  cand: Int32Array;
  candDist: Float32Array;
  /** peaks chosen without the model: single-candidate and ignored nodes (−1 elsewhere) */
  direct: Peaks;
  /** the ignore set as a 0/1 mask */
  ignore: Uint8Array;
}

/**
 * The original's GCN-E dataset split (use_candidate_set): for node i (neighbours in ascending distance) the
 * candidates are the neighbours j with conf_j > conf_i. No candidate: a root. Exactly one candidate, or i in the
 * ignore set: connect to the first `maxConn` candidates directly. Otherwise i gets a subgraph over its candidates.
 * `knn` must be ordered (`orderedNeighbours`).
 */
export function candidateSet(knn: KnnGraph, conf: ArrayLike<number>, options: CandidateOptions): CandidateSet {
  const { n, k } = knn;
  if (conf.length !== n) throw new LtcError(`GCN-E: ${conf.length} confidences for ${n} kNN rows`);
  const maxConn = options.maxConn ?? 1;
  const ignore = ignoreSet(conf, options.ignoreRatio, { smallest: options.ignoreSmallConfs ?? true });
  const direct = emptyPeaks(n, maxConn);
  const subset: number[] = [];
  const candPtr: number[] = [0];
  const cand = new Int32Array(n * k), candDist = new Float32Array(n * k);
  let used = 0;
  for (let i = 0; i < n; i++) {
    const start = used;
    for (let j = 0; j < k; j++) {
      const nb = knn.nbrs[i * k + j]!;
      if (nb < 0 || !(conf[nb]! > conf[i]!)) continue; // self fails the strict test
      cand[used] = nb;
      candDist[used++] = knn.dists[i * k + j]!;
    }
    const count = used - start;
    if (count === 0) continue;
    if (count === 1 || ignore[i]) {
      for (let c = 0; c < Math.min(maxConn, count); c++) {
        direct.peak[i * maxConn + c] = cand[start + c]!;
        direct.dist[i * maxConn + c] = candDist[start + c]!;
      }
      used = start;
      continue;
    }
    subset.push(i);
    candPtr.push(used);
  }
  return {
    n,
    subsetIdxs: Int32Array.from(subset),
    candPtr: Int32Array.from(candPtr),
    cand: cand.slice(0, used),
    candDist: candDist.slice(0, used),
    direct,
    ignore,
  };
}

/** One candidate subgraph, as the original's dataset item. */
export interface Subgraph {
  /** the centre node i */
  node: number;
  /** candidates, ascending distance from i */
  nbr: Int32Array;
  /** their distances to i */
  dist: Float32Array;
  /** direction features f[c] − f[i], candidates × dim */
  feat: Float32Array;
  /** row_normalize(A[cand][:, cand]), candidates × candidates, dense */
  adj: Float32Array;
  /** [y_c == y_i] when ground truth is given (training) */
  labels?: Int32Array;
}

/** Builds subgraphs of a {@linkcode CandidateSet} from the features and the whole-graph adjacency. */
export class SubgraphBuilder {
  readonly #local: Int32Array;
  /**
   * @param set the split
   * @param inputs L2-normalised features (the GCN-V features), the whole-graph adjacency
   *   (`gcnAdjacency` of the same kNN), and ground-truth labels for training
   */
  constructor(
    readonly set: CandidateSet,
    readonly inputs: { features: Features; adjacency: CsrMatrix; labels?: ArrayLike<number> },
  ) {
    this.#local = new Int32Array(set.n).fill(-1);
  }

  /** Number of subgraphs. */
  get count(): number {
    return this.set.subsetIdxs.length;
  }

  /** Subgraph s (0-based, in `subsetIdxs` order); `withFeatures: false` leaves `feat` empty. */
  build(s: number, options: { withFeatures?: boolean } = {}): Subgraph {
    const { set } = this;
    const { features, adjacency: a, labels } = this.inputs;
    const dim = features.dim;
    const node = set.subsetIdxs[s]!;
    const nbr = set.cand.subarray(set.candPtr[s]!, set.candPtr[s + 1]!);
    const dist = set.candDist.subarray(set.candPtr[s]!, set.candPtr[s + 1]!);
    const m = nbr.length;
    const withFeatures = options.withFeatures ?? true;
    const feat = new Float32Array(withFeatures ? m * dim : 0);
    const fi = features.data.subarray(node * dim, (node + 1) * dim);
    for (let r = 0; r < (withFeatures ? m : 0); r++) {
      const o = nbr[r]! * dim;
      for (let j = 0; j < dim; j++) feat[r * dim + j] = features.data[o + j]! - fi[j]!;
    }
    // A restricted to the candidates (self loops included), each row normalised again by its sum: scipy's
    // row_normalize in float64, then float32
    const local = this.#local;
    for (let r = 0; r < m; r++) local[nbr[r]!] = r;
    const adj = new Float32Array(m * m);
    const row = new Float64Array(m);
    for (let r = 0; r < m; r++) {
      row.fill(0);
      const u = nbr[r]!;
      let sum = 0;
      for (let e = a.rowPtr[u]!; e < a.rowPtr[u + 1]!; e++) {
        const c = local[a.colIdx[e]!]!;
        if (c < 0) continue;
        row[c] = a.vals[e]!;
      }
      for (let c = 0; c < m; c++) sum += row[c]!;
      const inv = 1 / (sum > 0 ? sum : 1);
      for (let c = 0; c < m; c++) adj[r * m + c] = row[c]! * inv;
    }
    for (let r = 0; r < m; r++) local[nbr[r]!] = -1;
    const sub: Subgraph = { node, nbr, dist, feat, adj };
    if (labels) sub.labels = Int32Array.from(nbr, (c) => labels[c] === labels[node] ? 1 : 0);
    return sub;
  }
}

/** Subgraphs stacked into one block-diagonal batch for the network. */
export interface SubgraphBatch {
  x: Float32Array;
  agg: BlockAggregator;
  blocks: DenseBlock[];
  /** connection labels per row, when every subgraph has them */
  labels?: Int32Array;
}

/** Stack subgraphs (features row-wise, adjacencies block-diagonally); the network treats each independently. */
export function stackSubgraphs(subs: Subgraph[], dim: number): SubgraphBatch {
  let rows = 0;
  const blocks: DenseBlock[] = subs.map((s) => {
    const b = { offset: rows, size: s.nbr.length, adj: s.adj };
    rows += s.nbr.length;
    return b;
  });
  const x = new Float32Array(rows * dim);
  subs.forEach((s, i) => x.set(s.feat, blocks[i]!.offset * dim));
  const batch: SubgraphBatch = { x, agg: new BlockAggregator(blocks), blocks };
  if (subs.every((s) => s.labels)) {
    const labels = new Int32Array(rows);
    subs.forEach((s, i) => labels.set(s.labels!, blocks[i]!.offset));
    batch.labels = labels;
  }
  return batch;
}

/** Rows of a stacked inference batch (larger batches amortise per-call overhead; results do not depend on it). */
const BATCH_ROWS = 4096;

/** Options of {@linkcode predictConnections}. */
export interface PredictConnectionsOptions {
  kernels?: DenseKernels;
  /** connections per subgraph (1 in every config) */
  maxConn?: number;
  /** called with (subgraphs done, total) */
  onProgress?: (done: number, total: number) => void;
  /**
   * compute the first GraphConv from per-node products (`directionFirstLayer`, default) or, as the original does,
   * on the formed direction features (`direct`: about 1.5× the work; for comparison)
   */
  firstLayer?: "table" | "direct";
}

/** The model's choice for every subgraph. */
export interface Connections {
  /** subgraph s's chosen candidates as indices into its candidate list, `maxConn` per subgraph */
  conns: Int32Array;
  maxConn: number;
  /** log P(connect) of every candidate, concatenated in subgraph order (same layout as `CandidateSet.cand`) */
  scores: Float32Array;
}

/**
 * Run GCN-E on every subgraph and pick each one's connection: the candidate with the largest log P(connect)
 * (`output[:, 1]`). Ties: the first candidate (nearest) wins, where the original draws uniformly among the tied ones
 * with `np.random.choice`. With `maxConn` > 1 the `maxConn` largest are taken in descending order (the original's
 * `argpartition` there picks the smallest — a bug not reproduced).
 */
export async function predictConnections(
  weights: VeGcnWeights,
  builder: SubgraphBuilder,
  options: PredictConnectionsOptions = {},
): Promise<Connections> {
  if (weights.config.kind !== "gcn-e") throw new LtcError("predictConnections: not a GCN-E network");
  const { set } = builder;
  const dim = builder.inputs.features.dim;
  const maxConn = options.maxConn ?? 1;
  const total = builder.count;
  const scores = new Float32Array(set.cand.length);
  const conns = new Int32Array(total * maxConn).fill(-1);
  const direct = options.firstLayer === "direct";
  let table: FirstLayerTable | null = null;
  if (!direct && total > 0) {
    const used = new Uint8Array(set.n);
    for (const i of set.subsetIdxs) used[i] = 1;
    for (const c of set.cand) used[c] = 1;
    const ids: number[] = [];
    used.forEach((u, i) => u && ids.push(i));
    const features = builder.inputs.features;
    table = await firstLayerTable(weights, { features: features.data, n: features.n, ids: Int32Array.from(ids) }, {
      kernels: options.kernels,
    });
  }
  let s = 0;
  while (s < total) {
    const subs: Subgraph[] = [];
    let rows = 0;
    while (s < total && (subs.length === 0 || rows + set.candPtr[s + 1]! - set.candPtr[s]! <= BATCH_ROWS)) {
      const sub = builder.build(s++, { withFeatures: direct });
      rows += sub.nbr.length;
      subs.push(sub);
    }
    const batch = stackSubgraphs(subs, direct ? dim : 0);
    const cache = table
      ? await forward(weights, {
        x: directionFirstLayer(weights, table, subs.map((g) => ({ centre: g.node, nbr: g.nbr, adj: g.adj }))),
        agg: batch.agg,
      }, { kernels: options.kernels, inference: true, fromLayer: 1 })
      : await forward(weights, batch, { kernels: options.kernels, inference: true });
    const classes = weights.config.classes;
    const logp = logSoftmax(cache.out, classes);
    const first = s - subs.length;
    batch.blocks.forEach(({ offset, size }, t) => {
      const connect = Float32Array.from({ length: size }, (_, r) => logp[(offset + r) * classes + 1]!);
      scores.set(connect, set.candPtr[first + t]!);
      const order = Array.from({ length: size }, (_, r) => r).sort((a, b) => connect[b]! - connect[a]! || a - b);
      for (let c = 0; c < Math.min(maxConn, size); c++) conns[(first + t) * maxConn + c] = order[c]!;
    });
    options.onProgress?.(s, total);
  }
  return { conns, maxConn, scores };
}

/** Each node's peaks: the direct ones, and for subgraph nodes the chosen candidates with their distances. */
export function connectionsToPeaks(set: CandidateSet, connections: Connections): Peaks {
  const { maxConn } = connections;
  if (set.direct.maxConn !== maxConn) throw new LtcError("GCN-E: direct peaks and connections differ in max_conn");
  const peaks: Peaks = { n: set.n, maxConn, peak: set.direct.peak.slice(), dist: set.direct.dist.slice() };
  for (let s = 0; s < set.subsetIdxs.length; s++) {
    const i = set.subsetIdxs[s]!;
    for (let c = 0; c < maxConn; c++) {
      const local = connections.conns[s * maxConn + c]!;
      if (local < 0) continue;
      peaks.peak[i * maxConn + c] = set.cand[set.candPtr[s]! + local]!;
      peaks.dist[i * maxConn + c] = set.candDist[set.candPtr[s]! + local]!;
    }
  }
  return peaks;
}

/** Inputs shared by GCN-E testing and training. */
export interface GcnEInputs {
  /** the GCN-V features (N × 512), L2-normalised */
  features: Features;
  /** their kNN (the original: faiss, k 160) */
  knn: KnnGraph;
  /** GCN-V's predicted confidences */
  confs: ArrayLike<number>;
  weights: VeGcnWeights;
  /** kNN similarity threshold of the adjacency (0 in every config) */
  thSim?: number;
  maxConn?: number;
  /** backend of the network's dense products (default `auto`; the subgraph aggregation stays on the CPU) */
  backend?: BackendChoice;
  paths?: InputPaths & { confs?: string };
}

function checkInputs(o: GcnEInputs): void {
  const paths = o.paths ?? {};
  if (o.weights.config.kind !== "gcn-e") throw new LtcError(`${paths.checkpoint ?? "weights"}: not a GCN-E network`);
  if (o.features.dim !== o.weights.config.featureDim) {
    throw new LtcError(
      `${paths.features ?? "features"}: ${o.features.dim}-d, but the GCN-E model expects ` +
        `${o.weights.config.featureDim}-d features (GCN-V's)`,
    );
  }
  checkKnnMatches(o.knn, o.features.n, paths);
  if (o.confs.length !== o.features.n) {
    throw new LtcError(
      `${paths.confs ?? "confidences"}: ${o.confs.length} values, but the features have ${o.features.n} rows`,
    );
  }
}

/** Options of {@linkcode testGcnE}. */
export interface TestGcnEOptions extends GcnEInputs {
  /** test: 0.8 */
  ignoreRatio?: number;
  /** edge threshold (ms1m 0.8, fashion 0.85) */
  tau?: number;
  onProgress?: (done: number, total: number) => void;
}

/** What {@linkcode testGcnE} computes. */
export interface TestGcnEResult {
  set: CandidateSet;
  connections: Connections;
  peaks: Peaks;
  labels: Int32Array;
  /** which backend ran the dense products */
  backend: string;
}

/** GCN-E inference (`test_gcn_e`): split, subgraphs, connections, peaks, labels with tau. */
export async function testGcnE(options: TestGcnEOptions): Promise<TestGcnEResult> {
  checkInputs(options);
  const ordered = orderedNeighbours(options.knn);
  const maxConn = options.maxConn ?? 1;
  const set = candidateSet(ordered, options.confs, { ignoreRatio: options.ignoreRatio ?? 0.8, maxConn });
  const adjacency = gcnAdjacency(options.knn, { thSim: options.thSim, path: options.paths?.knn });
  const builder = new SubgraphBuilder(set, { features: options.features, adjacency });
  const backend = await veGcnBackend(options.backend);
  const connections = await predictConnections(options.weights, builder, {
    kernels: backend.kernels,
    maxConn,
    onProgress: options.onProgress,
  });
  const peaks = connectionsToPeaks(set, connections);
  const labels = peaksToLabels(peaks, { tau: options.tau ?? 0.8 });
  return { set, connections, peaks, labels, backend: backend.label };
}

/** GCN-E's training schedule (the original's ms1m values in brackets). */
export interface GcnESchedule {
  /** [40] */
  epochs: number;
  /** [0.1; fashion 0.01] */
  lr: number;
  /** [0.9] */
  momentum: number;
  /** [1e-5] */
  weightDecay: number;
  /** epochs at which the learning rate drops [20, 32, 36] */
  lrSteps: number[];
  /** [0.1] */
  lrGamma: number;
  /** subgraphs whose gradients are summed per SGD step [32; fashion 64] */
  iterSize: number;
  /** train: [0.7; fashion 0.9] */
  ignoreRatio: number;
  /** seed of the per-epoch shuffle [42] */
  seed: number;
  /**
   * subgraphs per epoch: the first this many of each epoch's shuffle (ours, for CPUs; the original visits every
   * subgraph) [all]
   */
  subgraphsPerEpoch?: number;
}

/** The original's ms1m GCN-E schedule. */
export const GCN_E_SCHEDULE: GcnESchedule = {
  epochs: 40,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-5,
  lrSteps: [20, 32, 36],
  lrGamma: 0.1,
  iterSize: 32,
  ignoreRatio: 0.7,
  seed: 42,
};

/** Stream of the per-epoch subgraph shuffle (`new Rng(seed, GCN_E_SHUFFLE_STREAM, epoch)`). */
export const GCN_E_SHUFFLE_STREAM = 21;

/** Options of {@linkcode trainGcnE}. */
export interface TrainGcnEOptions extends GcnEInputs {
  /** ground-truth labels (connection targets [y_c == y_i]) */
  labels: ArrayLike<number>;
  schedule: GcnESchedule;
  state?: SgdState;
  /** first epoch to run (resuming), default 0; stop before `endEpoch` (default `schedule.epochs`) */
  startEpoch?: number;
  endEpoch?: number;
  onStep?: (report: { epoch: number; step: number; steps: number; lr: number; loss: number }) => void;
}

/**
 * Gradients of a group of subgraphs: one forward/backward on their block-diagonal stack, each subgraph's NLL loss
 * (mean over its nodes) contributing its own gradient — the sum PyTorch accumulates over that many `backward` calls.
 */
export async function subgraphGradients(
  weights: VeGcnWeights,
  subs: Subgraph[],
  options: { kernels?: DenseKernels } = {},
): Promise<{ losses: number[]; grads: VeGcnWeights }> {
  const batch = stackSubgraphs(subs, weights.config.featureDim);
  if (!batch.labels) throw new Error("subgraphGradients: subgraphs without labels");
  const cache = await forward(weights, batch, { kernels: options.kernels });
  const { losses, dOut } = nllLoss(cache.out, {
    labels: batch.labels,
    blocks: batch.blocks,
    classes: weights.config.classes,
  });
  const grads = await backward(weights, { cache, agg: batch.agg, dOut }, { kernels: options.kernels });
  return { losses, grads };
}

/**
 * GCN-E training (`train_iter_size` workflow): each epoch visits every training subgraph once in a seeded shuffled
 * order, sums the gradients of `iterSize` consecutive subgraphs and takes one SGD step (a last shorter group too),
 * with mmcv's epoch step policy. Weights are updated in place. The shuffle is ours (the original's data loader order
 * cannot be reproduced without PyTorch's generator).
 */
export async function trainGcnE(
  options: TrainGcnEOptions,
): Promise<{ weights: VeGcnWeights; state: SgdState; epochLosses: number[]; backend: string }> {
  checkInputs(options);
  const { schedule, weights } = options;
  if (options.labels.length !== options.features.n) {
    throw new LtcError(`GCN-E training: ${options.labels.length} labels for ${options.features.n} rows`);
  }
  const ordered = orderedNeighbours(options.knn);
  const set = candidateSet(ordered, options.confs, { ignoreRatio: schedule.ignoreRatio, maxConn: options.maxConn });
  if (set.subsetIdxs.length === 0) throw new LtcError("GCN-E training: no node gets a subgraph (all connect directly)");
  const adjacency = gcnAdjacency(options.knn, { thSim: options.thSim, path: options.paths?.knn });
  const builder = new SubgraphBuilder(set, { features: options.features, adjacency, labels: options.labels });
  const backend = await veGcnBackend(options.backend);
  const state = options.state ?? { momentum: null, steps: 0 };
  const epochLosses: number[] = [];
  const visits = Math.min(builder.count, schedule.subgraphsPerEpoch ?? builder.count);
  const steps = Math.ceil(visits / schedule.iterSize);
  for (let epoch = options.startEpoch ?? 0; epoch < (options.endEpoch ?? schedule.epochs); epoch++) {
    const lr = stepLr(schedule.lr, epoch, schedule.lrSteps, schedule.lrGamma);
    const order = new Rng(schedule.seed, GCN_E_SHUFFLE_STREAM, epoch).permutation(builder.count);
    let sum = 0;
    for (let step = 0; step < steps; step++) {
      const ids = order.subarray(step * schedule.iterSize, Math.min(visits, (step + 1) * schedule.iterSize));
      const subs = Array.from(ids, (s) => builder.build(s));
      const { losses, grads } = await subgraphGradients(weights, subs, { kernels: backend.kernels });
      const loss = losses.reduce((a, b) => a + b, 0) / losses.length;
      if (!Number.isFinite(loss)) throw new LtcError(`train-gcn-e: loss became ${loss} at epoch ${epoch + 1}`);
      sgdStep(weights, grads, state, { lr, momentum: schedule.momentum, weightDecay: schedule.weightDecay });
      sum += losses.reduce((a, b) => a + b, 0);
      options.onStep?.({ epoch: epoch + 1, step: step + 1, steps, lr, loss });
    }
    epochLosses.push(sum / visits);
  }
  return { weights, state, epochLosses, backend: backend.label };
}
