/**
 * GCN-D training (reference §4.4) from a config with the original's keys: epochs over the proposals of the training
 * split with the original's SGD schedule, checkpoints (with momentum buffers) and a per-epoch history, resumable.
 * @module
 */
import { basename, join } from "node:path";
import { ensureWritable, sidecarPath, Timings, writeSidecar } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { readFeatures } from "../shared/features.ts";
import { readLabels } from "../shared/meta.ts";
import { log } from "../shared/progress.ts";
import { listProposalFiles } from "../shared/proposal_io.ts";
import { resolveProposalFolders } from "./detect.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  createEngine,
  type EpochReport,
  type GcnRunConfig,
  groundTruth,
  initWeights,
  loadCheckpoint,
  readAllNodes,
  Rng,
  RNG_STREAM,
  saveCheckpoint,
  trainEpoch,
  TrainingSet,
  type TrainSchedule,
} from "../gpu/gcn/mod.ts";

/** Options of {@linkcode trainGcnD} beyond the config. */
export interface TrainOptions {
  workDir: string;
  backend?: BackendChoice;
  seed?: number;
  detLabel?: "iou" | "iop";
  /** continue from one of our checkpoints (weights, momentum, epoch) */
  resumeFrom?: string;
  /** start from these weights (ours or a .pth), epoch 0 */
  loadFrom?: string;
  /** override `total_epochs` */
  totalEpochs?: number;
  /** subtract the feature mean before L2-normalising (not in the original) */
  center?: boolean;
  /** show progress bars */
  progress?: boolean;
}

/** What {@linkcode trainGcnD} did. */
export interface TrainResult {
  epochs: EpochReport[];
  latest: string;
  backend: string;
}

function readHistory(ckptPath: string): EpochReport[] {
  try {
    const side = JSON.parse(Deno.readTextFileSync(sidecarPath(ckptPath)));
    return Array.isArray(side.epochs) ? side.epochs : [];
  } catch {
    return [];
  }
}

/** Train GCN-D as `cfg` says; returns the per-epoch reports and the path of `latest.npz`. */
export async function trainGcnD(cfg: GcnRunConfig, options: TrainOptions): Promise<TrainResult> {
  const where = `${cfg.path}: train_data`;
  const data = cfg.trainData;
  if (!data) throw new LtcError(`${cfg.path}: has no train_data section`);
  ensureWritable(join(options.workDir, "latest.npz"));
  if (!data.featPath) throw new LtcError(`${where}: needs 'feat_path' (or 'name')`);
  const labelPath = data.labelPath ?? (data.name ? join(cfg.prefix, "labels", `${data.name}.meta`) : undefined);
  if (!labelPath) throw new LtcError(`${where}: training needs 'label_path'`);
  const seed = options.seed ?? cfg.seed ?? 42;
  const detLabel = options.detLabel ?? "iou";
  const timings = new Timings();
  const dim = cfg.model.featureDim;
  const features = timings.step("read_features", () => readFeatures(data.featPath!, { dim, center: options.center }));
  const labels = readLabels(labelPath);
  if (labels.length !== features.n) {
    throw new LtcError(`${labelPath}: has ${labels.length} labels but ${data.featPath} has ${features.n} rows`);
  }
  const folders = await resolveProposalFolders(data, cfg, { backend: options.backend, where });
  const files = listProposalFiles(folders, { features: data.featPath });
  const nodes = timings.step("read_nodes", () => readAllNodes(files, features.n));
  const set = new TrainingSet(files, nodes, groundTruth(labels), {
    n: features.n,
    detLabel,
    woWeight: data.woWeight,
    normAdj: data.isNormAdj,
    thIopMin: data.thIopMin,
    thIopMax: data.thIopMax,
  });

  let startEpoch = 0, iter = 0;
  let history: EpochReport[] = [];
  let momentum: Float32Array[] | null = null;
  let weights;
  const resume = options.resumeFrom ?? cfg.resumeFrom;
  const load = options.loadFrom ?? cfg.loadFrom;
  if (resume) {
    const ck = loadCheckpoint(resume, { featureDim: dim });
    if (ck.source !== "ltc-npz" || !ck.momentum) {
      throw new LtcError(
        `${resume}: resuming needs one of our checkpoints with optimizer state (use --load-from for weights only)`,
      );
    }
    ({ weights, momentum } = ck);
    startEpoch = ck.epoch;
    iter = ck.iter;
    history = readHistory(resume);
  } else if (load) weights = loadCheckpoint(load, { featureDim: dim }).weights;
  else weights = initWeights(cfg.model, new Rng(seed, RNG_STREAM.init));
  const want = [cfg.model.featureDim, ...cfg.model.hiddenDims].join("→");
  const got = [weights.config.featureDim, ...weights.config.hiddenDims].join("→");
  if (want !== got) throw new LtcError(`${resume ?? load}: the model is ${got}, but ${cfg.path} says ${want}`);

  const schedule: TrainSchedule = {
    totalEpochs: options.totalEpochs ?? cfg.totalEpochs,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    momentum: cfg.momentum,
    weightDecay: cfg.weightDecay,
    lrSteps: cfg.lrSteps,
    lrGamma: cfg.lrGamma,
    dropout: cfg.dropout,
    seed,
    logInterval: cfg.logInterval,
  };
  const engine = await createEngine(weights, options.backend ?? "auto", { momentum });
  log(
    `train: ${set.size} proposals from ${folders.length} folder(s), ${features.n} instances, ${engine.backend}, ` +
      `epochs ${startEpoch + 1}..${schedule.totalEpochs}, graphs ${set.cached ? "cached" : "re-read each epoch"}`,
  );
  const params = {
    config: cfg.path,
    seed,
    det_label: detLabel,
    dropout: schedule.dropout,
    batch_size: schedule.batchSize,
    lr: schedule.lr,
    momentum: schedule.momentum,
    weight_decay: schedule.weightDecay,
    lr_steps: schedule.lrSteps,
    lr_gamma: schedule.lrGamma,
    total_epochs: schedule.totalEpochs,
    wo_weight: data.woWeight,
    is_norm_adj: data.isNormAdj,
    th_iop: data.thIopMin !== undefined ? [data.thIopMin, data.thIopMax] : null,
    center: options.center ?? false,
    feat_path: data.featPath,
    label_path: labelPath,
    proposal_folders: folders,
    resume_from: resume ?? null,
    load_from: resume ? null : load ?? null,
  };
  const latest = join(options.workDir, "latest.npz");
  try {
    for (let epoch = startEpoch; epoch < schedule.totalEpochs; epoch++) {
      const report = await trainEpoch(engine, set, features, schedule, {
        epoch,
        iter,
        layers: cfg.model.hiddenDims.length,
        log,
        progress: options.progress,
      });
      iter += report.iters;
      history.push(report);
      log(
        `train: epoch ${report.epoch} lr ${report.lr.toExponential(3)} mean loss ${report.lossMean.toFixed(5)} ` +
          `(${report.seconds.toFixed(1)} s)`,
      );
      const isLast = epoch + 1 === schedule.totalEpochs;
      if ((epoch + 1) % cfg.checkpointInterval !== 0 && !isLast) continue;
      const ck = {
        weights: await engine.weights(),
        momentum: await engine.momentum(),
        epoch: epoch + 1,
        iter,
        meta: { det_label: detLabel, wo_weight: data.woWeight, seed, config: basename(cfg.path) },
      };
      for (const path of [join(options.workDir, `epoch_${epoch + 1}.npz`), latest]) {
        saveCheckpoint(path, ck);
        writeSidecar(path, {
          stage: "train",
          params,
          inputs: [data.featPath, labelPath, ...(resume ? [resume] : load ? [load] : [])],
          backend: engine.backend,
          timings,
          extra: { epoch: epoch + 1, iter, epochs: history },
        });
      }
    }
  } finally {
    engine.dispose();
  }
  return { epochs: history, latest, backend: engine.backend };
}
