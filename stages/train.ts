/**
 * Stage `train`: train GCN-D (reference §4.4) from a config with the original's keys.
 *
 *     deno task train --config configs/gcn_d/cfg_train_0.7_0.75.yaml [--work-dir W] [--resume-from CKPT] \
 *       [--load-from CKPT] [--backend auto|webgpu|cpu] [--seed 42] [--det-label iou|iop] [--prefix DATA]
 *
 * Defaults are the original's: SGD lr 0.01, momentum 0.9, weight decay 1e-4, step schedule [15, 24, 28] × 0.1,
 * 30 epochs, batch 32, dropout 0.5, seed 42. Every `checkpoint_config.interval` epochs it writes
 * `W/epoch_<n>.npz` and `W/latest.npz` (our checkpoint format, with momentum buffers for `--resume-from`), each with a
 * sidecar holding the per-epoch loss and timing. Test a checkpoint with
 * `deno task detect --config <same cfg> --load-from W/latest.npz` (uses the config's `test_data`).
 *
 * Deliberate difference: each epoch gets a fresh seeded shuffle; the original (non-distributed sampler that never
 * advances its epoch) repeats the same permutation every epoch.
 * @module
 */
import { basename, join } from "node:path";
import { sidecarPath, Timings, writeSidecar } from "../shared/artifact.ts";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { readFeatures } from "../shared/features.ts";
import { readLabels } from "../shared/meta.ts";
import { log } from "../shared/progress.ts";
import { listProposalFiles } from "../shared/proposal_io.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  createEngine,
  type GcnRunConfig,
  groundTruth,
  initWeights,
  loadCheckpoint,
  loadGcnConfig,
  readAllNodes,
  Rng,
  RNG_STREAM,
  saveCheckpoint,
} from "../gpu/gcn/mod.ts";
import { type EpochReport, trainEpoch, TrainingSet, type TrainSchedule } from "../gpu/gcn/mod.ts";
import { resolveProposalFolders } from "./detect.ts";

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
  const files = listProposalFiles(folders);
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

const spec: CliSpec = {
  name: "train",
  summary: "Train GCN-D from a config with the original's keys; writes epoch_<n>.npz and latest.npz checkpoints.",
  options: {
    config: { type: "string", required: true, help: "YAML config (train_data, optimizer, lr_config, …)" },
    "work-dir": {
      type: "string",
      help: "output folder (default: the config's work_dir, else ./data/work_dir/<cfg name>)",
    },
    "resume-from": { type: "string", help: "continue from one of our checkpoints (weights, momentum, epoch)" },
    "load-from": { type: "string", help: "initial weights (ours or a .pth), starting at epoch 0" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "compute backend" },
    seed: { type: "int", help: "seed of init, shuffles and dropout (default: the config's, else 42)" },
    "det-label": { type: "string", default: "iou", choices: ["iou", "iop"], help: "regression target" },
    prefix: { type: "string", help: "data prefix for relative paths in the config (default: the config's, ./data)" },
    "total-epochs": { type: "int", help: "override total_epochs" },
    center: { type: "boolean", help: "subtract the feature mean before L2-normalising (not in the original)" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const cfg = loadGcnConfig(args.reqStr("config"), { prefix: args.str("prefix") });
    const workDir = args.str("work-dir") ?? cfg.workDir ??
      join("./data/work_dir", basename(cfg.path).replace(/\.ya?ml$/, ""));
    const result = await trainGcnD(cfg, {
      workDir,
      backend: args.str("backend") as BackendChoice,
      seed: args.optNum("seed"),
      detLabel: args.str("det-label") as "iou" | "iop",
      resumeFrom: args.str("resume-from"),
      loadFrom: args.str("load-from"),
      totalEpochs: args.optNum("total-epochs"),
      center: args.bool("center"),
      progress: true,
    });
    log(`train: ${result.epochs.length} epoch(s) recorded; latest checkpoint ${result.latest} (${result.backend})`);
  });
}
