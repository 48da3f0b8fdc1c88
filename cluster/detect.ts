/**
 * GCN-D cluster detection (reference §4.6): score every proposal of the given folders with a checkpoint, de-overlap
 * (§6) and evaluate; proposal folders come from the options or from a config's `test_data` (generated when the config
 * lists `proposal_params`). Reading and checking the inputs ({@linkcode prepareScoring}) and everything after the
 * scores ({@linkcode finishDetect}) are separate so that a sharded run (`./detect_shard.ts`) shares them.
 * @module
 */
import { join } from "node:path";
import { ensureWritable, markInProgress, Timings, writeFileAtomic, writeSidecar } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { type Features, readFeatures } from "../shared/features.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { writeNpz } from "../shared/npy.ts";
import { log } from "../shared/progress.ts";
import { listProposalFiles, type ProposalFiles } from "../shared/proposal_io.ts";
import { deoverlap } from "./deoverlap.ts";
import { type AllMetrics, evaluateAll, pearson } from "./metrics.ts";
import { generateProposals, parseProposalParams } from "./proposals/mod.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  checkpointName,
  createEngine,
  type DataSpec,
  DEFAULT_GCN_CONFIG,
  type GcnCheckpoint,
  type GcnConfig,
  type GcnRunConfig,
  type GcnWeights,
  groundTruth,
  initWeights,
  loadCheckpoint,
  proposalTarget,
  readAllNodes,
  Rng,
  RNG_STREAM,
  scoreProposals,
} from "../gpu/gcn/mod.ts";

/** Options of {@linkcode detectClusters}. */
export interface DetectOptions {
  featPath: string;
  labelPath?: string;
  proposalFolders: string[];
  /** checkpoint (`.pth` or ours); required unless `randomInit` */
  loadFrom?: string;
  /** score with a randomly initialised model (the original's `random`) when there is no checkpoint, on purpose */
  randomInit?: boolean;
  workDir: string;
  backend?: BackendChoice;
  woWeight?: boolean;
  /** target reported against the scores when labels are given */
  detLabel?: "iou" | "iop";
  dim?: number;
  /** subtract the feature mean before L2-normalising (not in the original; for non-centred embeddings) */
  center?: boolean;
  thPos?: number;
  thIou?: number;
  normAdj?: boolean;
  /** seed of the random model when there is no checkpoint */
  seed?: number;
  /** packed node rows per engine call */
  chunkRows?: number;
  /** metric names to compute with labels (default all three) */
  metrics?: string[];
  /** architecture from a config: checked against the checkpoint, used for the random model */
  model?: GcnConfig;
}

/** What {@linkcode detectClusters} produced. */
export interface DetectResult {
  scores: Float32Array;
  labels: Int32Array;
  metrics: Partial<AllMetrics> | null;
  scoresPath: string;
  labelsPath: string;
  metricsPath: string | null;
  backend: string;
  timings: Timings;
}

/** What scoring needs, read and checked once (by {@linkcode detectClusters} and a sharded run's parts). */
export interface ScoringInputs {
  feats: Features;
  /** ground truth when `labelPath` was given (checked against the feature count) */
  gt: Int32Array | null;
  /** the loaded checkpoint, or null for `randomInit` */
  ckpt: GcnCheckpoint | null;
  weights: GcnWeights;
  files: ProposalFiles[];
  /** node list of every proposal, in file order */
  nodes: Int32Array[];
  /** the parameters that determine the scores, as the scores' sidecar records them */
  params: Record<string, unknown>;
  /** the input files the scores' sidecar hashes: features, then the checkpoint (when there is one) */
  inputs: string[];
  /** what the sidecar records of the model: `{source, epoch}` or `"random"` */
  checkpointInfo: unknown;
}

/**
 * Read and check what scoring needs: features, labels (when given), the checkpoint (or the random model), the
 * proposal files and every node list. `outputs` are checked writable first, so a bad destination fails at once.
 */
export function prepareScoring(options: DetectOptions, opts: { timings: Timings; outputs: string[] }): ScoringInputs {
  const { timings } = opts;
  const dim = options.dim ?? 256;
  const feats = timings.step("read_features", () => readFeatures(options.featPath, { dim, center: options.center }));
  const gt = options.labelPath ? readLabels(options.labelPath) : null;
  if (gt && gt.length !== feats.n) {
    throw new LtcError(`${options.labelPath}: has ${gt.length} labels but ${options.featPath} has ${feats.n} rows`);
  }
  for (const out of opts.outputs) ensureWritable(out);
  if (!options.loadFrom && !options.randomInit) {
    throw new LtcError(
      "detect: no checkpoint given (--load-from); to score with an untrained, randomly initialised model on purpose, " +
        "pass --random-init",
    );
  }
  const ckpt = options.loadFrom ? loadCheckpoint(options.loadFrom, { featureDim: dim }) : null;
  if (ckpt && options.model) {
    const want = [options.model.featureDim, ...options.model.hiddenDims].join("→");
    const got = [ckpt.weights.config.featureDim, ...ckpt.weights.config.hiddenDims].join("→");
    if (want !== got) throw new LtcError(`${options.loadFrom}: the model is ${got}, but the config says ${want}`);
  }
  const weights = ckpt?.weights ??
    initWeights(
      options.model ?? { ...DEFAULT_GCN_CONFIG, featureDim: dim },
      new Rng(options.seed ?? 42, RNG_STREAM.init),
    );
  const files = listProposalFiles(options.proposalFolders, { features: options.featPath });
  const nodes = timings.step("read_nodes", () => readAllNodes(files, feats.n));
  const params = {
    feat_path: options.featPath,
    load_from: options.loadFrom ?? null,
    proposal_folders: options.proposalFolders,
    wo_weight: options.woWeight ?? false,
    is_norm_adj: options.normAdj ?? true,
    dim,
    center: options.center ?? false,
    seed: options.loadFrom ? null : options.seed ?? 42,
  };
  const inputs = [options.featPath, ...(options.loadFrom ? [options.loadFrom] : [])];
  const checkpointInfo = ckpt ? { source: ckpt.source, epoch: ckpt.epoch } : "random";
  return { feats, gt, ckpt, weights, files, nodes, params, inputs, checkpointInfo };
}

/** Refuse a score that is not finite, naming the proposal's node file (`scored`: the proposal indices to check). */
export function checkScoresFinite(scores: Float32Array, files: ProposalFiles[], scored?: ArrayLike<number>): void {
  const count = scored ? scored.length : scores.length;
  for (let k = 0; k < count; k++) {
    const i = scored ? scored[k]! : k;
    if (!Number.isFinite(scores[i]!)) throw new LtcError(`${files[i]!.node}: the model's score is not finite`);
  }
}

/**
 * Score, de-overlap and evaluate: the whole of the original's `test_cluster_det`. Artifacts are written atomically
 * with sidecars.
 */
export async function detectClusters(options: DetectOptions): Promise<DetectResult> {
  const timings = new Timings();
  const inp = prepareScoring(options, { timings, outputs: [join(options.workDir, "pred_labels.txt")] });
  const { feats, files, nodes } = inp;
  const engine = await createEngine(inp.weights, options.backend ?? "auto");
  let scores: Float32Array;
  try {
    log(
      `detect: ${files.length} proposals in ${options.proposalFolders.length} folder(s), ${feats.n} instances, ` +
        `${engine.backend}`,
    );
    scores = await timings.stepAsync("score", () =>
      scoreProposals(engine, feats, files, nodes, {
        woWeight: options.woWeight,
        normAdj: options.normAdj,
        chunkRows: options.chunkRows,
        progressLabel: "detect",
      }));
  } finally {
    engine.dispose();
  }
  checkScoresFinite(scores, files);
  return finishDetect({ ...inp, scores, n: feats.n, backend: engine.backend, timings }, {
    ...options,
    name: checkpointName(options.loadFrom),
  });
}

/** The scores of every proposal and what {@linkcode finishDetect} records about them. */
export interface FinishInput {
  /** one score per proposal, in file order */
  scores: Float32Array;
  nodes: Int32Array[];
  /** number of instances (feature rows) */
  n: number;
  gt: Int32Array | null;
  params: Record<string, unknown>;
  inputs: string[];
  backend: string;
  timings: Timings;
  checkpointInfo: unknown;
  /** added to the scores' sidecar after what detect records (a merged run: its shards) */
  extra?: Record<string, unknown>;
}

/** Options of {@linkcode finishDetect}. */
export interface FinishOptions {
  workDir: string;
  /** the scores file's name: `<name>.npz` */
  name: string;
  proposalFolders: string[];
  detLabel?: "iou" | "iop";
  thPos?: number;
  thIou?: number;
  metrics?: string[];
}

/**
 * Detect's tail, once all scores are known (from one run or merged from a sharded run's parts): write the scores
 * file with the original's meta and its sidecar, de-overlap into `pred_labels.txt`, and with labels write
 * `metrics.json`. The same scores give the same bytes, however they were computed.
 */
export function finishDetect(input: FinishInput, options: FinishOptions): DetectResult {
  const { scores, nodes, gt, params, inputs, backend, timings } = input;
  const scoresPath = join(options.workDir, `${options.name}.npz`);
  // As the original's np.savez_compressed(opath, data=scores, meta=meta): meta is a pickled dict in a 0-d object array.
  const meta = new Map<string, unknown>([["tot_inst_num", input.n], ["proposal_folders", options.proposalFolders]]);
  // The deoverlap stage takes the proposal folders from the sidecar first: a run killed between the scores and their
  // sidecar must not leave the previous run's folders vouching for the new scores (the file's own meta is used then).
  markInProgress(scoresPath, "detect");
  writeNpz(scoresPath, {
    data: { dtype: "f4", shape: [scores.length], data: scores },
    meta: { dtype: "O", shape: [], data: [meta] },
  });
  // With labels: how well the scores predict the training target (IoU or IoP) — the MSE the network minimises, and
  // the Pearson correlation, which says whether the network ranks unseen identities' proposals at all.
  let scoreMse: number | null = null, scoreCorr: number | null = null;
  if (gt) {
    const truth = groundTruth(gt);
    const targets = nodes.map((list) => Math.fround(proposalTarget(list, truth, options.detLabel ?? "iou")));
    scoreMse = targets.length ? targets.reduce((a, t, i) => a + (scores[i]! - t) ** 2, 0) / targets.length : 0;
    scoreCorr = pearson(scores, targets);
    log(
      `detect: ${options.detLabel ?? "iou"} prediction MSE ${scoreMse.toFixed(4)}, correlation ${scoreCorr.toFixed(3)}`,
    );
  }
  writeSidecar(scoresPath, {
    stage: "detect",
    params,
    inputs,
    backend,
    timings,
    extra: {
      proposal_folders: options.proposalFolders,
      tot_inst_num: input.n,
      proposal_count: nodes.length,
      checkpoint: input.checkpointInfo,
      ...(scoreMse !== null ? { [`mse_vs_${options.detLabel ?? "iou"}`]: scoreMse } : {}),
      ...(scoreCorr !== null ? { [`corr_vs_${options.detLabel ?? "iou"}`]: scoreCorr } : {}),
      ...input.extra,
    },
  });

  const labels = timings.step(
    "deoverlap",
    () => deoverlap(scores, nodes, input.n, { thPos: options.thPos ?? -1, thIou: options.thIou ?? 1 }),
  );
  const labelsPath = join(options.workDir, "pred_labels.txt");
  writeLabels(labelsPath, labels);
  writeSidecar(labelsPath, {
    stage: "detect",
    params: { ...params, th_pos: options.thPos ?? -1, th_iou: options.thIou ?? 1 },
    inputs: [...inputs, scoresPath],
    backend,
    timings,
  });

  let metrics: Partial<AllMetrics> | null = null;
  let metricsPath: string | null = null;
  if (gt) {
    const all = timings.step("evaluate", () => evaluateAll(gt, labels));
    const wanted = options.metrics ?? ["pairwise", "bcubed", "nmi"];
    metrics = Object.fromEntries(Object.entries(all).filter(([k]) => wanted.includes(k))) as Partial<AllMetrics>;
    metricsPath = join(options.workDir, "metrics.json");
    writeFileAtomic(metricsPath, JSON.stringify(metrics, null, 2) + "\n");
  }
  return { scores, labels, metrics, scoresPath, labelsPath, metricsPath, backend, timings };
}

/**
 * The proposal folders of a config's data section: its `proposal_folders`, or the folders the proposals stage
 * generates (or finds up to date) for its `proposal_params`.
 */
export async function resolveProposalFolders(
  spec: DataSpec,
  cfg: GcnRunConfig,
  options: { backend?: BackendChoice; where: string },
): Promise<string[]> {
  if (spec.proposalFolders) return spec.proposalFolders;
  if (spec.proposalParams) {
    const sets = parseProposalParams(spec.proposalParams, `${options.where}: proposal_params`);
    return await generateProposals(sets, {
      prefix: cfg.prefix,
      name: spec.name!,
      oprefix: cfg.oprefix,
      dim: cfg.model.featureDim,
      backend: options.backend,
    });
  }
  throw new LtcError(`${options.where}: needs 'proposal_folders' or 'proposal_params'`);
}
