/**
 * GCN-D cluster detection (reference §4.6): score every proposal of the given folders with a checkpoint, de-overlap
 * (§6) and evaluate; proposal folders come from the options or from a config's `test_data` (generated when the config
 * lists `proposal_params`).
 * @module
 */
import { join } from "node:path";
import { ensureWritable, markInProgress, Timings, writeFileAtomic, writeSidecar } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { readFeatures } from "../shared/features.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { writeNpz } from "../shared/npy.ts";
import { log } from "../shared/progress.ts";
import { listProposalFiles } from "../shared/proposal_io.ts";
import { deoverlap } from "./deoverlap.ts";
import { type AllMetrics, evaluateAll, pearson } from "./metrics.ts";
import { generateProposals, parseProposalParams } from "./proposals/mod.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  checkpointName,
  createEngine,
  type DataSpec,
  DEFAULT_GCN_CONFIG,
  type GcnConfig,
  type GcnRunConfig,
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

/**
 * Score, de-overlap and evaluate: the whole of the original's `test_cluster_det`. Artifacts are written atomically
 * with sidecars.
 */
export async function detectClusters(options: DetectOptions): Promise<DetectResult> {
  const timings = new Timings();
  const dim = options.dim ?? 256;
  const feats = timings.step("read_features", () => readFeatures(options.featPath, { dim, center: options.center }));
  const gt = options.labelPath ? readLabels(options.labelPath) : null;
  if (gt && gt.length !== feats.n) {
    throw new LtcError(`${options.labelPath}: has ${gt.length} labels but ${options.featPath} has ${feats.n} rows`);
  }
  ensureWritable(join(options.workDir, "pred_labels.txt"));
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
  const engine = await createEngine(weights, options.backend ?? "auto");
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
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]!)) throw new LtcError(`${files[i]!.node}: the model's score is not finite`);
  }

  const name = checkpointName(options.loadFrom);
  const scoresPath = join(options.workDir, `${name}.npz`);
  const inputs = [options.featPath, ...(options.loadFrom ? [options.loadFrom] : [])];
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
  // As the original's np.savez_compressed(opath, data=scores, meta=meta): meta is a pickled dict in a 0-d object array.
  const meta = new Map<string, unknown>([["tot_inst_num", feats.n], ["proposal_folders", options.proposalFolders]]);
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
    backend: engine.backend,
    timings,
    extra: {
      proposal_folders: options.proposalFolders,
      tot_inst_num: feats.n,
      proposal_count: files.length,
      checkpoint: ckpt ? { source: ckpt.source, epoch: ckpt.epoch } : "random",
      ...(scoreMse !== null ? { [`mse_vs_${options.detLabel ?? "iou"}`]: scoreMse } : {}),
      ...(scoreCorr !== null ? { [`corr_vs_${options.detLabel ?? "iou"}`]: scoreCorr } : {}),
    },
  });

  const labels = timings.step(
    "deoverlap",
    () => deoverlap(scores, nodes, feats.n, { thPos: options.thPos ?? -1, thIou: options.thIou ?? 1 }),
  );
  const labelsPath = join(options.workDir, "pred_labels.txt");
  writeLabels(labelsPath, labels);
  writeSidecar(labelsPath, {
    stage: "detect",
    params: { ...params, th_pos: options.thPos ?? -1, th_iou: options.thIou ?? 1 },
    inputs: [...inputs, scoresPath],
    backend: engine.backend,
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
  return { scores, labels, metrics, scoresPath, labelsPath, metricsPath, backend: engine.backend, timings };
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
