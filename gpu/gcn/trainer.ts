/**
 * GCN-D training (reference §4.4): SGD with momentum and weight decay, mmcv's step learning-rate policy, batches of
 * `batch_size` proposals, MSE to the IoU (or IoP) target, Dropout2d on node rows.
 *
 * Randomness is ours and seeded ({@linkcode ./rng.ts}): the shuffle of epoch e comes from stream
 * `(seed, shuffle, e)` and its dropout masks from `(seed, dropout, e)`, so a run resumed at an epoch boundary is
 * identical to an uninterrupted one. Unlike the original — whose non-distributed sampler never advances its epoch and
 * so repeats epoch 0's permutation every epoch — every epoch gets a fresh shuffle.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { Progress } from "../../shared/progress.ts";
import { type ProposalFiles, readProposalEdges } from "../../shared/proposal_io.ts";
import type { GcnEngine, Pending, TrainStep } from "./engine.ts";
import {
  buildProposalGraph,
  type GroundTruth,
  LocalIndex,
  type PackedBatch,
  packGraphs,
  type ProposalGraph,
  proposalTarget,
} from "./graph.ts";
import { stepLr } from "./model.ts";
import { Rng, RNG_STREAM } from "./rng.ts";

/** What an epoch trains on: proposals by index, packed into batches with their targets. */
export interface TrainingBatches {
  /** number of proposals */
  readonly size: number;
  /** the batch of proposals `ids`, `labels` set */
  batch(ids: ArrayLike<number>): PackedBatch;
}

/** Proposals used for training, with their targets; graphs are cached in memory when they fit the budget. */
export class TrainingSet implements TrainingBatches {
  readonly files: ProposalFiles[];
  readonly nodes: Int32Array[];
  readonly targets: Float32Array;
  readonly #graphs: (ProposalGraph | null)[];
  readonly #cache: boolean;
  readonly #index: LocalIndex;
  readonly #opts: { woWeight: boolean; normAdj: boolean };

  /**
   * Keep the proposals whose IoP lies in [thIopMin, thIopMax] (when both are given, as the original's `_check_iop`)
   * and compute each one's target.
   */
  constructor(
    files: ProposalFiles[],
    nodes: Int32Array[],
    gt: GroundTruth,
    options: {
      n: number;
      detLabel: "iou" | "iop";
      woWeight: boolean;
      normAdj: boolean;
      thIopMin?: number;
      thIopMax?: number;
      /** bytes of graph cache allowed (default 3 GiB); above it, edge files are re-read every epoch */
      cacheBytes?: number;
    },
  ) {
    const keep: number[] = [];
    for (let i = 0; i < files.length; i++) {
      if (options.thIopMin !== undefined && options.thIopMax !== undefined) {
        const iop = proposalTarget(nodes[i]!, gt, "iop");
        if (iop < options.thIopMin || iop > options.thIopMax) continue;
      }
      keep.push(i);
    }
    if (keep.length === 0) throw new LtcError("train: no proposal passes the IoP filter");
    this.files = keep.map((i) => files[i]!);
    this.nodes = keep.map((i) => nodes[i]!);
    this.targets = Float32Array.from(this.nodes, (ns) => proposalTarget(ns, gt, options.detLabel));
    this.#graphs = new Array(this.files.length).fill(null);
    // A graph stores ~(n + 2E) entries of 8 bytes; estimate from the node counts (dense proposals: ≈ n²).
    let estimate = 0;
    for (const ns of this.nodes) estimate += 8 * Math.min(ns.length * ns.length, ns.length * 161);
    this.#cache = estimate <= (options.cacheBytes ?? 3 * 2 ** 30);
    this.#index = new LocalIndex(options.n);
    this.#opts = { woWeight: options.woWeight, normAdj: options.normAdj };
  }

  /** Number of proposals. */
  get size(): number {
    return this.files.length;
  }

  /** Whether graphs stay in memory between epochs. */
  get cached(): boolean {
    return this.#cache;
  }

  /** Proposal i's graph (read from its edge file, or from the cache). */
  graph(i: number): ProposalGraph {
    const hit = this.#graphs[i];
    if (hit) return hit;
    const f = this.files[i]!;
    const g = buildProposalGraph(this.nodes[i]!, readProposalEdges(f.edge), this.#index, {
      ...this.#opts,
      path: f.edge,
    });
    if (this.#cache) this.#graphs[i] = g;
    return g;
  }

  /** A training batch of proposals `ids`. */
  batch(ids: ArrayLike<number>): PackedBatch {
    const graphs: ProposalGraph[] = [];
    const labels = new Float32Array(ids.length);
    for (let j = 0; j < ids.length; j++) {
      graphs.push(this.graph(ids[j]!));
      labels[j] = this.targets[ids[j]!]!;
    }
    return packGraphs(graphs, { labels });
  }
}

/** Dropout2d row scales for every layer: each packed row kept with probability 1 − p and scaled by 1/(1 − p). */
export function dropoutMasks(rows: number, layers: number, p: number, rng: Rng): Float32Array[] | null {
  if (p <= 0) return null;
  const scale = Math.fround(1 / (1 - p));
  const masks: Float32Array[] = [];
  for (let l = 0; l < layers; l++) {
    const m = new Float32Array(rows);
    for (let r = 0; r < rows; r++) m[r] = rng.next() < p ? 0 : scale;
    masks.push(m);
  }
  return masks;
}

/** Training schedule and hyper-parameters (the original's defaults in brackets). */
export interface TrainSchedule {
  /** [30] */
  totalEpochs: number;
  /** [32] */
  batchSize: number;
  /** [0.01] */
  lr: number;
  /** [0.9] */
  momentum: number;
  /** [1e-4] */
  weightDecay: number;
  /** [15, 24, 28] */
  lrSteps: number[];
  /** [0.1] */
  lrGamma: number;
  /** [0.5] */
  dropout: number;
  /** [42] */
  seed: number;
  /** log a text line every this many iterations [100] */
  logInterval: number;
}

/** What one epoch did. */
export interface EpochReport {
  epoch: number;
  lr: number;
  iters: number;
  lossMean: number;
  lossLast: number;
  seconds: number;
  /** times the host waited for the device during the epoch (0 on the CPU) */
  hostRoundTrips: number;
  /** command buffers submitted during the epoch (0 on the CPU) */
  submits: number;
}

/** Most training steps queued in one run (bounds the host memory of their packed graphs). */
const MAX_QUEUED_STEPS = 128;

/**
 * Train epoch `epoch` (0-based) in place on `engine`: fresh seeded shuffle, batches in order, one SGD step per batch.
 * `iter` is the running SGD step count before this epoch (for logging). Batches are queued in runs that end at log
 * points (and after at most {@linkcode MAX_QUEUED_STEPS}); each run's losses are read once, after the next run was
 * queued, so the host packs graphs while the device trains and waits once per run, not per batch.
 */
export async function trainEpoch(
  engine: GcnEngine,
  data: TrainingBatches,
  features: Features,
  schedule: TrainSchedule,
  options: { epoch: number; iter: number; layers: number; log?: (line: string) => void; progress?: boolean },
): Promise<EpochReport> {
  const t0 = performance.now();
  const sync0 = { ...engine.sync };
  const { epoch } = options;
  const lr = stepLr(schedule.lr, epoch, schedule.lrSteps, schedule.lrGamma);
  const hyper = { lr, momentum: schedule.momentum, weightDecay: schedule.weightDecay };
  const order = new Rng(schedule.seed, RNG_STREAM.shuffle, epoch).permutation(data.size);
  const dropRng = new Rng(schedule.seed, RNG_STREAM.dropout, epoch);
  const batches = Math.ceil(data.size / schedule.batchSize);
  const progress = options.progress ? new Progress(`epoch ${epoch + 1}/${schedule.totalEpochs}`, batches) : null;
  const runs: [number, number][] = [];
  for (let b0 = 0; b0 < batches;) {
    const b1 = Math.min(
      batches,
      (Math.floor(b0 / schedule.logInterval) + 1) * schedule.logInterval,
      b0 + MAX_QUEUED_STEPS,
    );
    runs.push([b0, b1]);
    b0 = b1;
  }
  // batches and dropout masks are drawn in batch order, as one step at a time would draw them
  const queue = ([b0, b1]: [number, number]): Promise<Pending<Float64Array>> => {
    const steps: TrainStep[] = [];
    for (let b = b0; b < b1; b++) {
      const ids = order.subarray(b * schedule.batchSize, Math.min(data.size, (b + 1) * schedule.batchSize));
      const batch = data.batch(ids);
      const masks = dropoutMasks(batch.rowStart[batch.count]!, options.layers, schedule.dropout, dropRng);
      steps.push({ batch, masks, hyper });
    }
    return engine.queueTrainSteps(steps, features.data);
  };
  let sum = 0, last = 0, windowSum = 0, windowCount = 0;
  let next: Promise<Pending<Float64Array>> | null = runs.length ? queue(runs[0]!) : null;
  for (let r = 0; r < runs.length; r++) {
    const [b0, b1] = runs[r]!;
    const pending = await next!;
    next = r + 1 < runs.length ? queue(runs[r + 1]!) : null;
    const losses = await pending.read();
    for (let b = b0; b < b1; b++) {
      const loss = losses[b - b0]!;
      if (!Number.isFinite(loss)) {
        next?.catch(() => {}); // the queued run is abandoned with the epoch
        throw new LtcError(`train: loss became ${loss} at epoch ${epoch + 1}, batch ${b + 1}`);
      }
      sum += loss;
      last = loss;
      windowSum += loss;
      windowCount++;
      const it = b + 1;
      if (options.log && (it % schedule.logInterval === 0 || it === batches)) {
        options.log(
          `Epoch [${epoch + 1}][${it}/${batches}]\tlr: ${lr.toExponential(3)}, loss: ${
            (windowSum / windowCount).toFixed(4)
          }`,
        );
        windowSum = 0;
        windowCount = 0;
      }
    }
    progress?.tick(b1 - b0, `loss ${last.toFixed(4)}`);
  }
  progress?.done();
  return {
    epoch: epoch + 1,
    lr,
    iters: batches,
    lossMean: sum / batches,
    lossLast: last,
    seconds: (performance.now() - t0) / 1000,
    hostRoundTrips: engine.sync.hostRoundTrips - sync0.hostRoundTrips,
    submits: engine.sync.submits - sync0.submits,
  };
}
