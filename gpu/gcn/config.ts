/**
 * GCN-D run configs: the original's `dsgcn/configs/yaml/*.yaml` keys (reference §4.5) with strict checking — a key
 * we do not know, or a value the original would not accept, is an error naming the file and the key. Paths inside a
 * config are relative to `prefix` (the original's `./data`; default `./data`, overridable on the command line);
 * absolute paths are used as they are.
 *
 * Differences from the original, on purpose: `workflow` is written as a plain list (`[[train, 1]]`, YAML cannot
 * hold a Python tuple portably); proposal folders may be given as `proposal_params` (generated on demand by the
 * proposals stage, like the Python configs' `generate_proposals(...)` call) instead of `proposal_folders`.
 * @module
 */
import { isAbsolute, join } from "node:path";
import { checkKeys, type ConfigObject, loadYaml } from "../../shared/config.ts";
import { LtcError } from "../../shared/errors.ts";
import type { GcnConfig } from "./model.ts";

/** One dataset section (`train_data` / `test_data`). */
export interface DataSpec {
  /** features `.bin` (default `<prefix>/features/<name>.bin` when `name` is given) */
  featPath?: string;
  /** labels `.meta` (default `<prefix>/labels/<name>.meta` when `name` is given and the file is wanted) */
  labelPath?: string;
  /** dataset name (for generated proposals and default paths) */
  name?: string;
  proposalFolders?: string[];
  /** raw `proposal_params` list, handed to the proposals stage */
  proposalParams?: unknown[];
  woWeight: boolean;
  isNormAdj: boolean;
  thIopMin?: number;
  thIopMax?: number;
}

/** A parsed config. */
export interface GcnRunConfig {
  path: string;
  prefix: string;
  oprefix?: string;
  model: GcnConfig;
  dropout: number;
  batchSize: number;
  testBatchSize: number;
  totalEpochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  lrSteps: number[];
  lrGamma: number;
  checkpointInterval: number;
  logInterval: number;
  workDir?: string;
  loadFrom?: string;
  resumeFrom?: string;
  seed?: number;
  thPos: number;
  thIou: number;
  metrics: string[];
  trainData?: DataSpec;
  testData?: DataSpec;
}

const TOP_KEYS = [
  "model",
  "batch_size_per_gpu",
  "test_batch_size_per_gpu",
  "iter_size",
  "total_epochs",
  "workers_per_gpu",
  "log_level",
  "log_config",
  "checkpoint_config",
  "optimizer",
  "optimizer_config",
  "lr_config",
  "workflow",
  "work_dir",
  "load_from",
  "resume_from",
  "seed",
  "th_pos",
  "th_iou",
  "metrics",
  "prefix",
  "oprefix",
  "train_data",
  "test_data",
];
const MODEL_KWARGS = ["feature_dim", "featureless", "reduce_method", "hidden_dims", "gcn_type", "dropout", "stage"];
const DATA_KEYS = [
  "feat_path",
  "label_path",
  "name",
  "proposal_folders",
  "proposal_params",
  "wo_weight",
  "is_norm_adj",
  "featureless",
  "th_iop_min",
  "th_iop_max",
  "feature_dim",
  "pred_iop_score",
];

function mapping(v: unknown, where: string): ConfigObject {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new LtcError(`${where} must be a mapping`);
  return v as ConfigObject;
}

function num(o: ConfigObject, key: string, where: string, fallback: number, integer = false): number {
  const v = o[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new LtcError(`${where}: '${key}' must be ${integer ? "an integer" : "a number"}`);
  }
  return v;
}

function bool(o: ConfigObject, key: string, where: string, fallback: boolean): boolean {
  const v = o[key] ?? fallback;
  if (typeof v !== "boolean") throw new LtcError(`${where}: '${key}' must be true or false`);
  return v;
}

function str(o: ConfigObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new LtcError(`${where}: '${key}' must be a string`);
  return v;
}

/** Resolve a config path against the data prefix. */
export function resolveDataPath(prefix: string, p: string): string {
  return isAbsolute(p) ? p : join(prefix, p);
}

function dataSpec(raw: unknown, where: string, prefix: string, featureDim: number): DataSpec {
  const o = mapping(raw, where);
  checkKeys(o, DATA_KEYS, where);
  if (o.featureless === true) throw new LtcError(`${where}: 'featureless' GCN-D is not supported`);
  if (o.pred_iop_score) {
    throw new LtcError(`${where}: 'pred_iop_score' (IoP filtering by a predicted file) is not supported`);
  }
  if (o.feature_dim !== undefined && o.feature_dim !== featureDim) {
    throw new LtcError(`${where}: 'feature_dim' ${o.feature_dim} differs from the model's ${featureDim}`);
  }
  const name = str(o, "name", where);
  const feat = str(o, "feat_path", where);
  const label = str(o, "label_path", where);
  const spec: DataSpec = {
    name,
    featPath: feat ? resolveDataPath(prefix, feat) : name ? join(prefix, "features", `${name}.bin`) : undefined,
    labelPath: label ? resolveDataPath(prefix, label) : undefined,
    woWeight: bool(o, "wo_weight", where, false),
    isNormAdj: bool(o, "is_norm_adj", where, true),
  };
  if (o.proposal_folders !== undefined) {
    if (!Array.isArray(o.proposal_folders) || o.proposal_folders.some((f) => typeof f !== "string")) {
      throw new LtcError(`${where}: 'proposal_folders' must be a list of paths`);
    }
    spec.proposalFolders = (o.proposal_folders as string[]).map((f) => resolveDataPath(prefix, f));
  }
  if (o.proposal_params !== undefined) {
    if (spec.proposalFolders) throw new LtcError(`${where}: give 'proposal_folders' or 'proposal_params', not both`);
    if (!Array.isArray(o.proposal_params)) throw new LtcError(`${where}: 'proposal_params' must be a list`);
    if (!name) throw new LtcError(`${where}: 'proposal_params' needs 'name' (the dataset to generate proposals for)`);
    spec.proposalParams = o.proposal_params;
  }
  const hasMin = o.th_iop_min !== undefined && o.th_iop_min !== null;
  const hasMax = o.th_iop_max !== undefined && o.th_iop_max !== null;
  if (hasMin !== hasMax) throw new LtcError(`${where}: give both 'th_iop_min' and 'th_iop_max', or neither`);
  if (hasMin) {
    spec.thIopMin = num(o, "th_iop_min", where, 0);
    spec.thIopMax = num(o, "th_iop_max", where, 1);
    if (!(spec.thIopMin >= 0 && spec.thIopMin < spec.thIopMax && spec.thIopMax <= 1)) {
      throw new LtcError(`${where}: need 0 ≤ th_iop_min < th_iop_max ≤ 1`);
    }
  }
  return spec;
}

/** Read and check a GCN-D config. `prefix` (e.g. from `--prefix`) overrides the config's own. */
export function loadGcnConfig(path: string, options: { prefix?: string } = {}): GcnRunConfig {
  const cfg = loadYaml(path);
  checkKeys(cfg, TOP_KEYS, path);
  const prefix = options.prefix ?? str(cfg, "prefix", path) ?? "./data";

  const model = mapping(cfg.model, `${path}: model`);
  checkKeys(model, ["type", "kwargs"], `${path}: model`);
  if (model.type !== undefined && model.type !== "dsgcn") {
    throw new LtcError(`${path}: model.type must be 'dsgcn' (GCN-D), got '${model.type}'`);
  }
  const kw = mapping(model.kwargs, `${path}: model.kwargs`);
  checkKeys(kw, MODEL_KWARGS, `${path}: model.kwargs`);
  const mw = `${path}: model.kwargs`;
  if (kw.featureless === true) throw new LtcError(`${mw}: 'featureless' GCN-D is not supported`);
  if (kw.reduce_method !== undefined && kw.reduce_method !== "max") {
    throw new LtcError(`${mw}: only reduce_method 'max' is supported (every GCN-D config uses it)`);
  }
  if (kw.gcn_type !== undefined && kw.gcn_type !== "gcn") throw new LtcError(`${mw}: only gcn_type 'gcn' is supported`);
  if (kw.stage !== undefined && kw.stage !== "det") throw new LtcError(`${mw}: only stage 'det' is supported`);
  const featureDim = num(kw, "feature_dim", mw, 256, true);
  const hidden = kw.hidden_dims ?? [512, 64];
  if (!Array.isArray(hidden) || hidden.length === 0 || hidden.some((h) => !Number.isInteger(h) || h <= 0)) {
    throw new LtcError(`${mw}: 'hidden_dims' must be a non-empty list of positive integers`);
  }
  const dropout = num(kw, "dropout", mw, 0.5);
  if (!(dropout >= 0 && dropout < 1)) throw new LtcError(`${mw}: 'dropout' must be in [0, 1)`);

  const opt = mapping(cfg.optimizer, `${path}: optimizer`);
  checkKeys(opt, ["type", "lr", "momentum", "weight_decay"], `${path}: optimizer`);
  if (opt.type !== undefined && opt.type !== "SGD") throw new LtcError(`${path}: optimizer.type must be 'SGD'`);
  const optCfg = cfg.optimizer_config;
  if (optCfg !== undefined && optCfg !== null && Object.keys(mapping(optCfg, `${path}: optimizer_config`)).length) {
    throw new LtcError(`${path}: optimizer_config must be empty (gradient clipping is not supported)`);
  }
  const lrc = mapping(cfg.lr_config, `${path}: lr_config`);
  checkKeys(lrc, ["policy", "step", "gamma"], `${path}: lr_config`);
  if (lrc.policy !== undefined && lrc.policy !== "step") throw new LtcError(`${path}: lr_config.policy must be 'step'`);
  const steps = lrc.step ?? [15, 24, 28];
  const totalEpochs = num(cfg, "total_epochs", path, 30, true);
  if (typeof steps === "number" && !(Number.isInteger(steps) && steps >= 1)) {
    throw new LtcError(`${path}: lr_config.step must be a list of epochs or a positive integer period, got ${steps}`);
  }
  // mmcv's step policy: an integer decays every `step` epochs (lr · γ^⌊epoch / step⌋), which equals the milestones
  // step, 2·step, … up to the last epoch; a list decays once at each epoch listed.
  const stepList = typeof steps === "number"
    ? Array.from({ length: Math.floor((totalEpochs - 1) / steps) }, (_, i) => (i + 1) * steps)
    : steps;
  if (!Array.isArray(stepList) || stepList.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new LtcError(`${path}: lr_config.step must be a list of epochs or a positive integer period`);
  }
  const ckc = mapping(cfg.checkpoint_config, `${path}: checkpoint_config`);
  checkKeys(ckc, ["interval"], `${path}: checkpoint_config`);
  const logc = mapping(cfg.log_config, `${path}: log_config`);
  checkKeys(logc, ["interval", "hooks"], `${path}: log_config`);
  if (cfg.workflow !== undefined) {
    const wf = cfg.workflow;
    const ok = Array.isArray(wf) && wf.length === 1 && Array.isArray(wf[0]) && wf[0][0] === "train";
    if (!ok) throw new LtcError(`${path}: workflow must be [[train, 1]] (the only workflow GCN-D detection uses)`);
  }
  const metrics = cfg.metrics ?? ["pairwise", "bcubed", "nmi"];
  if (!Array.isArray(metrics) || metrics.some((m) => !["pairwise", "bcubed", "nmi"].includes(m as string))) {
    throw new LtcError(`${path}: metrics must be a list of pairwise, bcubed, nmi`);
  }
  const batchSize = num(cfg, "batch_size_per_gpu", path, 32, true);
  const workDir = str(cfg, "work_dir", path);
  const loadFrom = str(cfg, "load_from", path);
  const resumeFrom = str(cfg, "resume_from", path);
  const oprefix = str(cfg, "oprefix", path);
  const out: GcnRunConfig = {
    path,
    prefix,
    oprefix: oprefix ? resolveDataPath(".", oprefix) : undefined,
    model: { featureDim, hiddenDims: hidden as number[] },
    dropout,
    batchSize,
    testBatchSize: num(cfg, "test_batch_size_per_gpu", path, batchSize, true),
    totalEpochs,
    lr: num(opt, "lr", `${path}: optimizer`, 0.01),
    momentum: num(opt, "momentum", `${path}: optimizer`, 0.9),
    weightDecay: num(opt, "weight_decay", `${path}: optimizer`, 1e-4),
    lrSteps: stepList as number[],
    lrGamma: num(lrc, "gamma", `${path}: lr_config`, 0.1),
    checkpointInterval: num(ckc, "interval", `${path}: checkpoint_config`, 1, true),
    logInterval: num(logc, "interval", `${path}: log_config`, 100, true),
    workDir,
    loadFrom,
    resumeFrom,
    seed: cfg.seed === undefined ? undefined : num(cfg, "seed", path, 42, true),
    thPos: num(cfg, "th_pos", path, -1),
    thIou: num(cfg, "th_iou", path, 1),
    metrics: metrics as string[],
  };
  if (batchSize < 1) throw new LtcError(`${path}: batch_size_per_gpu must be ≥ 1`);
  if (cfg.train_data !== undefined) out.trainData = dataSpec(cfg.train_data, `${path}: train_data`, prefix, featureDim);
  if (cfg.test_data !== undefined) out.testData = dataSpec(cfg.test_data, `${path}: test_data`, prefix, featureDim);
  return out;
}
