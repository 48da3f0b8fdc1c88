/**
 * GCN-V / GCN-E run configs: the keys of the original's `vegcn/configs/cfg_{train,test}_gcn{v,e}_*.py` as YAML, with
 * strict checking (an unknown key, or a value the original would not accept, is an error naming the file and the
 * key). Paths inside a config are relative to `prefix` (the original's `./data`); absolute paths are used as they are.
 * When a data section has no `knn_graph_path`, it is `<prefix>/knns/<name>/<knn_method>_k_<knn>.npz`, as the
 * original's `main.py` injects it.
 *
 * Differences on purpose: `workflow` is a plain list (`[[train_gcnv, 1]]`); `lr_config.step` lists the milestones
 * (the Python configs compute them from `total_epochs`); two workflows of ours make CPU training affordable —
 * `train_gcnv_nodes` (GCN-V on sampled nodes, `batch_nodes` per step, `total_epochs` passes over the nodes) and, for
 * GCN-E, `subgraphs_per_epoch` (a seeded sample of the training subgraphs each epoch).
 * @module
 */
import { isAbsolute, join } from "node:path";
import { cfgObject, checkKeys, type ConfigObject, loadYaml } from "../shared/config.ts";
import { LtcError } from "../shared/errors.ts";
import { knnFileName } from "../shared/knn_file.ts";
import type { VeGcnKind } from "../gpu/vegcn/mod.ts";

/** One data section (`train_data` / `test_data`), paths resolved against the prefix. */
export interface VeGcnDataSpec {
  /** dataset name (`train_name` / `test_name`) */
  name?: string;
  featPath?: string;
  labelPath?: string;
  knnGraphPath?: string;
  /** GCN-E: GCN-V's `pred_confs` file */
  predConfs?: string;
  /** GCN-E: share of smallest confidences that connect directly */
  ignoreRatio?: number;
}

/** Which training loop a config asks for. */
export type VeGcnWorkflow = "train_gcnv" | "train_gcnv_nodes" | "train_iter_size";

/** A parsed config. */
export interface VeGcnRunConfig {
  path: string;
  prefix: string;
  kind: VeGcnKind;
  knn: number;
  knnMethod: "faiss" | "hnsw";
  thSim: number;
  maxConn: number;
  /** GCN-V: edge threshold of the first clustering */
  tau0: number;
  /** GCN-V: of the GCN-feature clustering; GCN-E: of its clustering */
  tau: number;
  useGcnFeat: boolean;
  model: { featureDim: number; nhid: number; nclass: number };
  workflow: VeGcnWorkflow;
  totalEpochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  lrSteps: number[];
  lrGamma: number;
  checkpointInterval: number;
  /** GCN-E: subgraphs per SGD step */
  iterSize: number;
  /** `train_gcnv_nodes`: nodes per SGD step */
  batchNodes?: number;
  /** GCN-E: subgraphs sampled per epoch (all when absent) */
  subgraphsPerEpoch?: number;
  workDir?: string;
  loadFrom?: string;
  resumeFrom?: string;
  seed?: number;
  trainData?: VeGcnDataSpec;
  testData?: VeGcnDataSpec;
}

const TOP_KEYS = [
  "prefix",
  "train_name",
  "test_name",
  "knn",
  "knn_method",
  "th_sim",
  "max_conn",
  "tau_0",
  "tau",
  "use_gcn_feat",
  "ckpt_name",
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
  "metrics",
  "train_data",
  "test_data",
  "batch_nodes",
  "subgraphs_per_epoch",
];
const DATA_KEYS = [
  "feat_path",
  "label_path",
  "knn_graph_path",
  "pred_confs",
  "k",
  "is_norm_feat",
  "th_sim",
  "max_conn",
  "conf_metric",
  "ignore_ratio",
  "ignore_small_confs",
  "use_candidate_set",
];

function num(o: ConfigObject, key: string, where: string, fallback: number, integer = false): number {
  const v = o[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new LtcError(`${where}: '${key}' must be ${integer ? "an integer" : "a number"}`);
  }
  return v;
}

function str(o: ConfigObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new LtcError(`${where}: '${key}' must be a string`);
  return v;
}

/** A value the original fixes in every config: absent, or exactly `want`. */
function fixed(o: ConfigObject, key: string, want: unknown, where: string): void {
  if (o[key] !== undefined && o[key] !== want) {
    throw new LtcError(`${where}: '${key}' must be ${JSON.stringify(want)} (the only value supported), got ${o[key]}`);
  }
}

function resolve(prefix: string, p: string): string {
  return isAbsolute(p) ? p : join(prefix, p);
}

function dataSpec(raw: unknown, where: string, ctx: { prefix: string; name?: string; cfg: ConfigObject }) {
  if (raw !== null && (typeof raw !== "object" || Array.isArray(raw))) throw new LtcError(`${where} must be a mapping`);
  const o = (raw ?? {}) as ConfigObject;
  checkKeys(o, DATA_KEYS, where);
  fixed(o, "is_norm_feat", true, where);
  fixed(o, "conf_metric", "s_nbr", where);
  fixed(o, "ignore_small_confs", true, where);
  fixed(o, "use_candidate_set", true, where);
  for (const key of ["k", "th_sim", "max_conn"] as const) {
    const top = key === "k" ? "knn" : key;
    if (o[key] !== undefined && ctx.cfg[top] !== undefined && o[key] !== ctx.cfg[top]) {
      throw new LtcError(`${where}: '${key}' (${o[key]}) differs from the top-level '${top}' (${ctx.cfg[top]})`);
    }
  }
  const get = (key: string) => {
    const v = str(o, key, where);
    return v === undefined ? undefined : resolve(ctx.prefix, v);
  };
  const spec: VeGcnDataSpec = {
    name: ctx.name,
    featPath: get("feat_path") ?? (ctx.name ? join(ctx.prefix, "features", `${ctx.name}.bin`) : undefined),
    labelPath: get("label_path"),
    knnGraphPath: get("knn_graph_path"),
    predConfs: get("pred_confs"),
  };
  if (o.ignore_ratio !== undefined) {
    spec.ignoreRatio = num(o, "ignore_ratio", where, 0.8);
    if (!(spec.ignoreRatio >= 0 && spec.ignoreRatio <= 1)) {
      throw new LtcError(`${where}: 'ignore_ratio' must be in [0, 1]`);
    }
  }
  return spec;
}

/** The kNN file of a dataset as the original names it: `<prefix>/knns/<name>/<method>_k_<k>.npz`. */
export function defaultKnnPath(prefix: string, name: string, method: string, k: number): string {
  return join(prefix, "knns", name, knnFileName(method, k));
}

/** The network a config describes. */
function modelKind(model: ConfigObject, path: string): VeGcnKind {
  const type = model.type;
  if (type === "gcn_v") return "gcn-v";
  if (type === "gcn_e") return "gcn-e";
  throw new LtcError(`${path}: model.type must be 'gcn_v' or 'gcn_e', got '${type}'`);
}

/**
 * Read and check a GCN-V / GCN-E config; `kind` is the network the calling stage runs (a config of the other one is
 * an error naming the file). `prefix` (e.g. from `--prefix`) overrides the config's own.
 */
export function loadVeGcnConfig(path: string, options: { kind: VeGcnKind; prefix?: string }): VeGcnRunConfig {
  const cfg = loadYaml(path);
  checkKeys(cfg, TOP_KEYS, path);
  const prefix = options.prefix ?? str(cfg, "prefix", path) ?? "./data";
  const model = cfgObject(cfg, "model", path);
  checkKeys(model, ["type", "kwargs"], `${path}: model`);
  const kind = modelKind(model, path);
  if (kind !== options.kind) {
    throw new LtcError(`${path}: a ${kind.toUpperCase()} config, but this stage runs ${options.kind.toUpperCase()}`);
  }
  const kw = cfgObject(model, "kwargs", `${path}: model`);
  const mw = `${path}: model.kwargs`;
  checkKeys(kw, ["feature_dim", "nhid", "nclass", "dropout"], mw);
  fixed(kw, "dropout", 0, mw);
  const isV = kind === "gcn-v";
  const nclass = num(kw, "nclass", mw, isV ? 1 : 2, true);
  if (nclass !== (isV ? 1 : 2)) throw new LtcError(`${mw}: 'nclass' must be ${isV ? 1 : 2} for ${kind.toUpperCase()}`);
  const knnMethod = str(cfg, "knn_method", path) ?? "faiss";
  if (knnMethod !== "faiss" && knnMethod !== "hnsw") throw new LtcError(`${path}: 'knn_method' must be faiss or hnsw`);

  const opt = cfgObject(cfg, "optimizer", path);
  checkKeys(opt, ["type", "lr", "momentum", "weight_decay"], `${path}: optimizer`);
  fixed(opt, "type", "SGD", `${path}: optimizer`);
  const optCfg = cfgObject(cfg, "optimizer_config", path);
  if (Object.keys(optCfg).length) throw new LtcError(`${path}: optimizer_config must be empty (no gradient clipping)`);
  const lrc = cfgObject(cfg, "lr_config", path);
  checkKeys(lrc, ["policy", "step", "gamma"], `${path}: lr_config`);
  fixed(lrc, "policy", "step", `${path}: lr_config`);
  const totalEpochs = num(cfg, "total_epochs", path, isV ? 80000 : 40, true);
  const steps = lrc.step ?? (isV ? [0.5, 0.8, 0.9].map((r) => Math.trunc(r * totalEpochs)) : [20, 32, 36]);
  if (!Array.isArray(steps) || steps.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new LtcError(`${path}: lr_config.step must be a list of milestones (non-negative integers)`);
  }
  const ckc = cfgObject(cfg, "checkpoint_config", path);
  checkKeys(ckc, ["interval"], `${path}: checkpoint_config`);
  const logc = cfgObject(cfg, "log_config", path);
  checkKeys(logc, ["interval", "hooks"], `${path}: log_config`);

  const workflows: VeGcnWorkflow[] = isV ? ["train_gcnv", "train_gcnv_nodes"] : ["train_iter_size"];
  let workflow = workflows[0]!;
  if (cfg.workflow !== undefined) {
    const wf = cfg.workflow;
    const name = Array.isArray(wf) && wf.length === 1 && Array.isArray(wf[0]) ? wf[0][0] : undefined;
    if (!workflows.includes(name as VeGcnWorkflow)) {
      throw new LtcError(`${path}: workflow must be one of ${workflows.map((w) => `[[${w}, 1]]`).join(", ")}`);
    }
    workflow = name as VeGcnWorkflow;
  }
  if (cfg.metrics !== undefined) {
    const m = cfg.metrics;
    if (!Array.isArray(m) || m.some((x) => !["pairwise", "bcubed", "nmi"].includes(x as string))) {
      throw new LtcError(`${path}: metrics must be a list of pairwise, bcubed, nmi`);
    }
  }
  const out: VeGcnRunConfig = {
    path,
    prefix,
    kind,
    knn: num(cfg, "knn", path, isV ? 80 : 160, true),
    knnMethod,
    thSim: num(cfg, "th_sim", path, 0),
    maxConn: num(cfg, "max_conn", path, 1, true),
    tau0: num(cfg, "tau_0", path, 0.65),
    tau: num(cfg, "tau", path, 0.8),
    useGcnFeat: cfg.use_gcn_feat === undefined ? false : cfg.use_gcn_feat === true,
    model: {
      featureDim: num(kw, "feature_dim", mw, isV ? 256 : 512, true),
      nhid: num(kw, "nhid", mw, 512, true),
      nclass,
    },
    workflow,
    totalEpochs,
    lr: num(opt, "lr", `${path}: optimizer`, 0.1),
    momentum: num(opt, "momentum", `${path}: optimizer`, 0.9),
    weightDecay: num(opt, "weight_decay", `${path}: optimizer`, 1e-5),
    lrSteps: steps as number[],
    lrGamma: num(lrc, "gamma", `${path}: lr_config`, 0.1),
    checkpointInterval: num(ckc, "interval", `${path}: checkpoint_config`, isV ? 5000 : 1, true),
    iterSize: num(cfg, "iter_size", path, 32, true),
    workDir: str(cfg, "work_dir", path),
    loadFrom: str(cfg, "load_from", path),
    resumeFrom: str(cfg, "resume_from", path),
    seed: cfg.seed === undefined ? undefined : num(cfg, "seed", path, 42, true),
  };
  if (cfg.use_gcn_feat !== undefined && typeof cfg.use_gcn_feat !== "boolean") {
    throw new LtcError(`${path}: 'use_gcn_feat' must be true or false`);
  }
  if (cfg.batch_nodes !== undefined) {
    if (workflow !== "train_gcnv_nodes") {
      throw new LtcError(`${path}: 'batch_nodes' needs workflow [[train_gcnv_nodes, 1]]`);
    }
    out.batchNodes = num(cfg, "batch_nodes", path, 1024, true);
  } else if (workflow === "train_gcnv_nodes") out.batchNodes = 1024;
  if (cfg.subgraphs_per_epoch !== undefined) {
    if (isV) throw new LtcError(`${path}: 'subgraphs_per_epoch' is a GCN-E setting`);
    out.subgraphsPerEpoch = num(cfg, "subgraphs_per_epoch", path, 0, true);
  }
  for (const [key, v] of [["knn", out.knn], ["total_epochs", totalEpochs], ["iter_size", out.iterSize]] as const) {
    if (v < 1) throw new LtcError(`${path}: '${key}' must be ≥ 1`);
  }
  if ((out.batchNodes ?? 1) < 1 || (out.subgraphsPerEpoch ?? 1) < 1 || out.maxConn < 1) {
    throw new LtcError(`${path}: 'batch_nodes', 'subgraphs_per_epoch' and 'max_conn' must be ≥ 1`);
  }
  if (out.checkpointInterval < 1) throw new LtcError(`${path}: checkpoint_config.interval must be ≥ 1`);
  const ctx = { prefix, cfg };
  if (cfg.train_data !== undefined) {
    out.trainData = dataSpec(cfg.train_data, `${path}: train_data`, { ...ctx, name: str(cfg, "train_name", path) });
  }
  if (cfg.test_data !== undefined) {
    out.testData = dataSpec(cfg.test_data, `${path}: test_data`, { ...ctx, name: str(cfg, "test_name", path) });
  }
  return out;
}
