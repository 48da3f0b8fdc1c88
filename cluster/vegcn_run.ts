/**
 * GCN-V / GCN-E runs as the stages call them (reference §10, §1.8): read the inputs (features, kNN graphs — built when
 * missing, as the original's `build_knns` — labels, confidences, checkpoints), run the library entry points of
 * `gcn_v.ts` / `gcn_e.ts`, and write what the original writes, each with a sidecar (params, inputs, backend, timings,
 * metrics when labels are given):
 * - test GCN-V: `<work>/<name>_gcnv_k_<knn>_th_<th_sim>/pred_confs/<ckpt>.npz`, `…/tau_<tau_0>_pred_labels.txt`;
 *   with `useGcnFeat` also `…/features/<ckpt>.bin` (N × nhid, not normalised), its kNN `…/knns/<ckpt>/faiss_k_<knn>.npz`
 *   and `…/<ckpt>_gcn_feat/tau_<tau>_pred_labels.txt`;
 * - test GCN-E: `<work>/pred_conns.npz` and `<work>/<name>_gcne_k_<knn>_th_<th_sim>_ig_<ignore_ratio>/tau_<tau>_pred_labels.txt`;
 * - training: `<work>/epoch_<n>.npz` every `checkpoint_config.interval` epochs and `<work>/latest.npz` (our format,
 *   with momentum buffers for resuming).
 * @module
 */
import { basename, dirname, join } from "node:path";
import { ensureWritable, isFile, Timings, writeSidecar } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { type Features, writeFeatures } from "../shared/features.ts";
import { knnFileName, type KnnGraph } from "../shared/knn_file.ts";
import { readLabels, relabelDense, writeLabels } from "../shared/meta.ts";
import { log, Progress } from "../shared/progress.ts";
import { pyFloatStr } from "../shared/py_format.ts";
import { Rng } from "../shared/random.ts";
import { readPredConfs, writePredConfs, writePredConns } from "../shared/vegcn_io.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  gcnEConfig,
  gcnVConfig,
  initWeights,
  loadVeGcnCheckpoint,
  saveVeGcnCheckpoint,
  type SgdState,
  type VeGcnKind,
  type VeGcnWeights,
} from "../gpu/vegcn/mod.ts";
import { FeatureCache, loadOrBuildKnn } from "./knn_source.ts";
import { type AllMetrics, countClusters, evaluateAll, formatMetrics } from "./metrics.ts";
import { confidenceToPeaks, orderedNeighbours, peaksToLabels, testGcnV, trainGcnV, trainGcnVNodes } from "./gcn_v.ts";
import { testGcnE, trainGcnE } from "./gcn_e.ts";
import type { VeGcnRunConfig } from "./vegcn_config.ts";

/** Stream of the seeded initialisation of a new network (`new Rng(seed, VEGCN_INIT_STREAM)`). */
export const VEGCN_INIT_STREAM = 23;

/** The original's checkpoint name: the file name without `.pth` (ours: without `.npz`). */
export function checkpointName(path: string): string {
  return basename(path).replace(/\.(pth|npz)$/, "");
}

/** GCN-E's kNN of GCN-V features as the original lays it out: `<gcnv folder>/knns/<ckpt>/<method>_k_<k>.npz`. */
export function gcnFeatureKnnPath(featPath: string, method: string, k: number): string {
  return join(dirname(dirname(featPath)), "knns", basename(featPath).replace(/\.bin$/, ""), knnFileName(method, k));
}

/** Inputs shared by the runs: one dataset. */
export interface VeGcnData {
  featPath: string;
  /** ground truth: evaluation in tests, targets in training */
  labelPath?: string;
  knnPath: string;
  /** feature dimension as stored */
  dim: number;
  /** subtract the mean before L2-normalising (not in the original) */
  center?: boolean;
}

/** Features and their kNN graph (built when the file is missing), with row counts checked against each other. */
async function readData(
  data: VeGcnData,
  options: { k: number; knnMethod: "faiss" | "hnsw"; backend?: BackendChoice; timings: Timings },
): Promise<{ features: Features; knn: KnnGraph }> {
  const cache = new FeatureCache({ path: data.featPath, dim: data.dim, normalize: true, center: data.center });
  const features = options.timings.step("read_features", () => cache.get());
  const knn = await options.timings.stepAsync(
    "knn",
    () =>
      loadOrBuildKnn(data.knnPath, {
        features: cache,
        k: options.k,
        knnMethod: options.knnMethod,
        backend: options.backend,
      }),
  );
  if (knn.k > options.k) {
    // a file with more neighbours than asked: use its first k (ascending distance, as the original's `[:, :k]`)
    return { features, knn: truncateKnn(knn, options.k) };
  }
  return { features, knn };
}

function truncateKnn(g: KnnGraph, k: number): KnnGraph {
  const nbrs = new Int32Array(g.n * k), dists = new Float32Array(g.n * k);
  for (let i = 0; i < g.n; i++) {
    nbrs.set(g.nbrs.subarray(i * g.k, i * g.k + k), i * k);
    dists.set(g.dists.subarray(i * g.k, i * g.k + k), i * k);
  }
  return { n: g.n, k, nbrs, dists };
}

/** Ground truth of `n` rows, or a clear error naming both files. */
function readGroundTruth(labelPath: string, n: number, featPath: string): Int32Array {
  const labels = readLabels(labelPath);
  if (labels.length !== n) {
    throw new LtcError(`${labelPath}: has ${labels.length} labels but ${featPath} has ${n} rows`);
  }
  return labels;
}

/** A progress bar fed with (done, total) counts; `done()` closes it when it was started. */
function progressReporter(label: string): { onProgress: (done: number, total: number) => void; done: () => void } {
  let bar: Progress | null = null, last = 0;
  return {
    onProgress(done, total) {
      bar ??= new Progress(label, total);
      bar.tick(done - last);
      last = done;
    },
    done: () => bar?.done(),
  };
}

/** Write a partition like the original's `write_meta`, with its sidecar (metrics when ground truth is given). */
function writePartition(path: string, labels: Int32Array, info: {
  stage: string;
  params: Record<string, unknown>;
  inputs: string[];
  backend: string;
  timings: Timings;
  gt?: Int32Array;
}): AllMetrics | undefined {
  writeLabels(path, relabelDense(labels));
  const metrics = info.gt ? evaluateAll(info.gt, labels) : undefined;
  writeSidecar(path, {
    stage: info.stage,
    params: info.params,
    inputs: info.inputs,
    backend: info.backend,
    timings: info.timings,
    extra: { clusters: countClusters(labels), ...(metrics ? { metrics } : {}) },
  });
  log(`${info.stage}: ${countClusters(labels)} clusters → ${path}`);
  if (metrics) console.log(`${path}\n${formatMetrics(metrics)}`);
  return metrics;
}

// ---------------------------------------------------------------------------------------------------------------
// Testing

/** Options of {@linkcode runTestGcnV}. */
export interface TestGcnVRunOptions {
  data: VeGcnData;
  /** dataset name (output folder) */
  name: string;
  loadFrom: string;
  workDir: string;
  knn: number;
  knnMethod: "faiss" | "hnsw";
  thSim: number;
  tau0: number;
  tau: number;
  maxConn: number;
  useGcnFeat: boolean;
  backend?: BackendChoice;
}

/** What {@linkcode runTestGcnV} wrote. */
export interface TestGcnVRunResult {
  folder: string;
  predConfs: string;
  labels: string;
  /** with `useGcnFeat` */
  gcnFeatures?: string;
  gcnFeatLabels?: string;
  metrics?: AllMetrics;
  backend: string;
  timings: Timings;
}

/** GCN-V inference and clustering (`test_gcn_v`), writing the original's files. */
export async function runTestGcnV(o: TestGcnVRunOptions): Promise<TestGcnVRunResult> {
  const timings = new Timings();
  const ckpt = checkpointName(o.loadFrom);
  const folder = join(o.workDir, `${o.name}_gcnv_k_${o.knn}_th_${pyFloatStr(o.thSim)}`);
  const out: TestGcnVRunResult = {
    folder,
    predConfs: join(folder, "pred_confs", `${ckpt}.npz`),
    labels: join(folder, `tau_${pyFloatStr(o.tau0)}_pred_labels.txt`),
    backend: "",
    timings,
  };
  if (o.useGcnFeat) {
    out.gcnFeatures = join(folder, "features", `${ckpt}.bin`);
    out.gcnFeatLabels = join(folder, `${ckpt}_gcn_feat`, `tau_${pyFloatStr(o.tau)}_pred_labels.txt`);
  }
  for (const p of [out.predConfs, out.labels, out.gcnFeatures, out.gcnFeatLabels]) if (p) ensureWritable(p);
  const weights = loadVeGcnCheckpoint(o.loadFrom, { kind: "gcn-v", featureDim: o.data.dim }).weights;
  const { features, knn } = await readData(o.data, { k: o.knn, knnMethod: o.knnMethod, backend: o.backend, timings });
  const gt = o.data.labelPath ? readGroundTruth(o.data.labelPath, features.n, o.data.featPath) : undefined;
  const paths = { features: o.data.featPath, knn: o.data.knnPath, checkpoint: o.loadFrom };
  const r = await timings.stepAsync("gcn_v", () =>
    testGcnV({
      features,
      knn,
      weights,
      tau0: o.tau0,
      maxConn: o.maxConn,
      thSim: o.thSim,
      backend: o.backend,
      keepFeatures: o.useGcnFeat,
      paths,
    }));
  out.backend = r.backend;
  const params = {
    name: o.name,
    knn: o.knn,
    knn_method: o.knnMethod,
    th_sim: o.thSim,
    tau_0: o.tau0,
    max_conn: o.maxConn,
    dim: o.data.dim,
    center: o.data.center ?? false,
  };
  const inputs = [o.data.featPath, o.data.knnPath, o.loadFrom];
  const side = { stage: "test-gcn-v", inputs, backend: r.backend, timings };
  writePredConfs(out.predConfs, r.predConfs);
  writeSidecar(out.predConfs, { ...side, params, extra: { inst_num: features.n } });
  out.metrics = writePartition(out.labels, r.labels, { ...side, params, gt });
  if (o.useGcnFeat) {
    // the original saves the features, reloads them L2-normalised and clusters on their kNN with tau
    writeFeatures(out.gcnFeatures!, r.gcnFeatures);
    writeSidecar(out.gcnFeatures!, { ...side, params, extra: { n: features.n, dim: r.gcnFeatureDim } });
    const knnPath = gcnFeatureKnnPath(out.gcnFeatures!, o.knnMethod, o.knn);
    const second = await testGcnVOnGcnFeatures(r.predConfs, {
      featPath: out.gcnFeatures!,
      knnPath,
      dim: r.gcnFeatureDim,
      k: o.knn,
      knnMethod: o.knnMethod,
      tau: o.tau,
      maxConn: o.maxConn,
      backend: o.backend,
      timings,
    });
    writePartition(out.gcnFeatLabels!, second, {
      ...side,
      inputs: [out.gcnFeatures!, knnPath, out.predConfs],
      params: { ...params, tau: o.tau, use_gcn_feat: true },
      gt,
    });
  }
  return out;
}

/** The second pass of `use_gcn_feat`: the peak rule with GCN-V's confidences on the kNN of its features. */
async function testGcnVOnGcnFeatures(
  confs: Float32Array,
  o: {
    featPath: string;
    knnPath: string;
    dim: number;
    k: number;
    knnMethod: "faiss" | "hnsw";
    tau: number;
    maxConn: number;
    backend?: BackendChoice;
    timings: Timings;
  },
): Promise<Int32Array> {
  const { knn } = await readData({ featPath: o.featPath, knnPath: o.knnPath, dim: o.dim }, { ...o });
  const peaks = confidenceToPeaks(orderedNeighbours(knn), confs, { maxConn: o.maxConn });
  return peaksToLabels(peaks, { tau: o.tau });
}

/** Options of {@linkcode runTestGcnE}. */
export interface TestGcnERunOptions {
  /** GCN-V's features (`features/<ckpt>.bin`, nhid-d, read L2-normalised) and their kNN */
  data: VeGcnData;
  /** GCN-V's `pred_confs/<ckpt>.npz` */
  predConfs: string;
  name: string;
  loadFrom: string;
  workDir: string;
  knn: number;
  knnMethod: "faiss" | "hnsw";
  thSim: number;
  ignoreRatio: number;
  tau: number;
  maxConn: number;
  backend?: BackendChoice;
}

/** What {@linkcode runTestGcnE} wrote. */
export interface TestGcnERunResult {
  predConns: string;
  labels: string;
  metrics?: AllMetrics;
  backend: string;
  timings: Timings;
}

/** GCN-E inference and clustering (`test_gcn_e`), writing the original's files. */
export async function runTestGcnE(o: TestGcnERunOptions): Promise<TestGcnERunResult> {
  const timings = new Timings();
  const folder = join(
    o.workDir,
    `${o.name}_gcne_k_${o.knn}_th_${pyFloatStr(o.thSim)}_ig_${pyFloatStr(o.ignoreRatio)}`,
  );
  const out: TestGcnERunResult = {
    predConns: join(o.workDir, "pred_conns.npz"),
    labels: join(folder, `tau_${pyFloatStr(o.tau)}_pred_labels.txt`),
    backend: "",
    timings,
  };
  for (const p of [out.predConns, out.labels]) ensureWritable(p);
  const weights = loadVeGcnCheckpoint(o.loadFrom, { kind: "gcn-e", featureDim: o.data.dim }).weights;
  const { features, knn } = await readData(o.data, { k: o.knn, knnMethod: o.knnMethod, backend: o.backend, timings });
  const confs = readPredConfs(o.predConfs, { n: features.n });
  const gt = o.data.labelPath ? readGroundTruth(o.data.labelPath, features.n, o.data.featPath) : undefined;
  const bar = progressReporter("test-gcn-e: subgraphs");
  const r = await timings.stepAsync("gcn_e", () =>
    testGcnE({
      features,
      knn,
      confs,
      weights,
      thSim: o.thSim,
      maxConn: o.maxConn,
      ignoreRatio: o.ignoreRatio,
      tau: o.tau,
      backend: o.backend,
      paths: { features: o.data.featPath, knn: o.data.knnPath, checkpoint: o.loadFrom, confs: o.predConfs },
      onProgress: bar.onProgress,
    }));
  bar.done();
  out.backend = r.backend;
  const params = {
    name: o.name,
    knn: o.knn,
    knn_method: o.knnMethod,
    th_sim: o.thSim,
    ignore_ratio: o.ignoreRatio,
    tau: o.tau,
    max_conn: o.maxConn,
    dim: o.data.dim,
  };
  const inputs = [o.data.featPath, o.data.knnPath, o.predConfs, o.loadFrom];
  const side = { stage: "test-gcn-e", params, inputs, backend: r.backend, timings };
  writePredConns(out.predConns, r.connections.conns, { maxConn: r.connections.maxConn, instNum: features.n });
  writeSidecar(out.predConns, { ...side, extra: { inst_num: features.n, subgraphs: r.set.subsetIdxs.length } });
  out.metrics = writePartition(out.labels, r.labels, { ...side, gt });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Training

/** Options of {@linkcode runTrainGcnV} / {@linkcode runTrainGcnE} beyond the config. */
export interface TrainVeGcnRunOptions {
  /** the training split (labels required) */
  data: VeGcnData;
  /** GCN-E: GCN-V's `pred_confs` of the training split */
  predConfs?: string;
  workDir: string;
  backend?: BackendChoice;
  /** seed of the initialisation and shuffles (default: the config's, else 42) */
  seed?: number;
  /** start from these weights (ours or a .pth), epoch 0 */
  loadFrom?: string;
  /** continue from one of our checkpoints (weights, momentum, epochs done) */
  resumeFrom?: string;
  /** override `total_epochs` */
  totalEpochs?: number;
}

/** What a training run did. */
export interface TrainVeGcnRunResult {
  latest: string;
  /** mean loss of each chunk between checkpoints */
  history: { epoch: number; loss: number; seconds: number }[];
  backend: string;
}

/** Starting weights and optimiser state: resumed, loaded, or a seeded initialisation. */
function startingPoint(
  kind: VeGcnKind,
  cfg: VeGcnRunConfig,
  o: TrainVeGcnRunOptions & { seed: number },
): { weights: VeGcnWeights; state: SgdState; epoch: number; history: TrainVeGcnRunResult["history"] } {
  const dim = o.data.dim;
  const want = kind === "gcn-v" ? gcnVConfig(dim, cfg.model.nhid) : gcnEConfig(dim, cfg.model.nhid);
  const resume = o.resumeFrom ?? cfg.resumeFrom;
  const load = o.loadFrom ?? cfg.loadFrom;
  let out;
  if (resume) {
    const ck = loadVeGcnCheckpoint(resume, { kind, featureDim: dim });
    if (ck.source !== "ltc-npz" || !ck.momentum) {
      throw new LtcError(
        `${resume}: resuming needs one of our checkpoints with momentum buffers (--load-from loads weights)`,
      );
    }
    const history = Array.isArray(ck.meta.history) ? ck.meta.history as TrainVeGcnRunResult["history"] : [];
    out = { weights: ck.weights, state: { momentum: ck.momentum, steps: ck.iter }, epoch: ck.epoch, history };
  } else if (load) {
    out = { weights: loadVeGcnCheckpoint(load, { kind, featureDim: dim }).weights, epoch: 0, history: [] };
  } else out = { weights: initWeights(want, new Rng(o.seed, VEGCN_INIT_STREAM)), epoch: 0, history: [] };
  const got = out.weights.config;
  if (got.convDims.join() !== want.convDims.join()) {
    throw new LtcError(
      `${resume ?? load}: the model's widths are ${got.convDims}, but ${cfg.path} says nhid ${cfg.model.nhid}`,
    );
  }
  return { state: { momentum: null, steps: 0 }, ...out };
}

/**
 * The loop both trainings share: run `chunk(from, to)` between checkpoints (every `checkpoint_config.interval`
 * epochs and at the end), writing `epoch_<n>.npz` and `latest.npz` with their sidecars.
 */
async function trainInChunks(
  kind: VeGcnKind,
  cfg: VeGcnRunConfig,
  o: TrainVeGcnRunOptions & { seed: number },
  chunk: (weights: VeGcnWeights, state: SgdState, range: { from: number; to: number; total: number }) => Promise<{
    loss: number;
    backend: string;
  }>,
  info: { params: Record<string, unknown>; inputs: string[]; timings: Timings },
): Promise<TrainVeGcnRunResult> {
  const stage = kind === "gcn-v" ? "train-gcn-v" : "train-gcn-e";
  const latest = join(o.workDir, "latest.npz");
  const start = startingPoint(kind, cfg, o);
  const { weights, state, history } = start;
  const total = o.totalEpochs ?? cfg.totalEpochs;
  let backend = "";
  for (let from = start.epoch; from < total;) {
    const to = Math.min(total, (Math.floor(from / cfg.checkpointInterval) + 1) * cfg.checkpointInterval);
    const t0 = performance.now();
    const r = await info.timings.stepAsync("train", () => chunk(weights, state, { from, to, total }));
    backend = r.backend;
    history.push({ epoch: to, loss: r.loss, seconds: (performance.now() - t0) / 1000 });
    log(
      `${stage}: epoch ${to}/${total} loss ${r.loss.toFixed(6)} (${history.at(-1)!.seconds.toFixed(1)} s, ${backend})`,
    );
    const ck = { weights, momentum: state.momentum, epoch: to, iter: state.steps, meta: { history, seed: o.seed } };
    for (const path of [join(o.workDir, `epoch_${to}.npz`), latest]) {
      saveVeGcnCheckpoint(path, ck);
      writeSidecar(path, { stage, ...info, backend, extra: { epoch: to, iter: state.steps, history } });
    }
    from = to;
  }
  if (!isFile(latest)) throw new LtcError(`${stage}: nothing to do (${start.epoch} of ${total} epochs already done)`);
  return { latest, history, backend };
}

/** Schedule parameters a sidecar records. */
function scheduleParams(cfg: VeGcnRunConfig, o: TrainVeGcnRunOptions & { seed: number }): Record<string, unknown> {
  return {
    config: cfg.path,
    workflow: cfg.workflow,
    total_epochs: o.totalEpochs ?? cfg.totalEpochs,
    lr: cfg.lr,
    momentum: cfg.momentum,
    weight_decay: cfg.weightDecay,
    lr_steps: cfg.lrSteps,
    lr_gamma: cfg.lrGamma,
    knn: cfg.knn,
    knn_method: cfg.knnMethod,
    th_sim: cfg.thSim,
    nhid: cfg.model.nhid,
    dim: o.data.dim,
    center: o.data.center ?? false,
    seed: o.seed,
    load_from: o.loadFrom ?? cfg.loadFrom ?? null,
    resume_from: o.resumeFrom ?? cfg.resumeFrom ?? null,
  };
}

/** GCN-V training as `cfg` says: the original's whole-graph iterations, or our sampled-node epochs. */
export async function runTrainGcnV(cfg: VeGcnRunConfig, o: TrainVeGcnRunOptions): Promise<TrainVeGcnRunResult> {
  const seed = o.seed ?? cfg.seed ?? 42;
  const opts = { ...o, seed };
  ensureWritable(join(o.workDir, "latest.npz"));
  if (!o.data.labelPath) throw new LtcError("train-gcn-v: training needs the ground-truth labels (label_path)");
  const timings = new Timings();
  const { features, knn } = await readData(o.data, {
    k: cfg.knn,
    knnMethod: cfg.knnMethod,
    backend: o.backend,
    timings,
  });
  const labels = readGroundTruth(o.data.labelPath, features.n, o.data.featPath);
  const paths = { features: o.data.featPath, knn: o.data.knnPath };
  const base = { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay, lrGamma: cfg.lrGamma };
  const params = { ...scheduleParams(cfg, opts), ...(cfg.batchNodes ? { batch_nodes: cfg.batchNodes } : {}) };
  const start = o.resumeFrom ?? cfg.resumeFrom ?? o.loadFrom ?? cfg.loadFrom;
  const inputs = [o.data.featPath, o.data.labelPath, o.data.knnPath, ...(start ? [start] : [])];
  return await trainInChunks("gcn-v", cfg, opts, async (weights, state, { from, to, total }) => {
    const bar = progressReporter(`train-gcn-v: epochs ${from + 1}..${to}`);
    const common = { features, knn, labels, weights, state, thSim: cfg.thSim, backend: o.backend, paths };
    if (cfg.workflow === "train_gcnv_nodes") {
      const r = await trainGcnVNodes({
        ...common,
        schedule: { ...base, epochs: total, batchNodes: cfg.batchNodes!, lrSteps: cfg.lrSteps, seed },
        startEpoch: from,
        endEpoch: to,
        onStep: ({ epoch, step, steps }) => bar.onProgress((epoch - from - 1) * steps + step, (to - from) * steps),
      });
      bar.done();
      return { loss: r.epochLosses.reduce((a, b) => a + b, 0) / r.epochLosses.length, backend: r.backend };
    }
    const r = await trainGcnV({
      ...common,
      schedule: { ...base, iterations: total, lrStepRatios: [], lrSteps: cfg.lrSteps },
      startIter: from,
      endIter: to,
      onIter: ({ iter }) => bar.onProgress(iter - from, to - from),
    });
    bar.done();
    return { loss: r.losses.reduce((a, b) => a + b, 0) / r.losses.length, backend: r.backend };
  }, { params, inputs, timings });
}

/** GCN-E training as `cfg` says (`train_iter_size`; with `subgraphs_per_epoch`, a sample of subgraphs per epoch). */
export async function runTrainGcnE(cfg: VeGcnRunConfig, o: TrainVeGcnRunOptions): Promise<TrainVeGcnRunResult> {
  const seed = o.seed ?? cfg.seed ?? 42;
  const opts = { ...o, seed };
  ensureWritable(join(o.workDir, "latest.npz"));
  if (!o.data.labelPath) throw new LtcError("train-gcn-e: training needs the ground-truth labels (label_path)");
  if (!o.predConfs) throw new LtcError("train-gcn-e: training needs GCN-V's confidences (pred_confs)");
  const timings = new Timings();
  const { features, knn } = await readData(o.data, {
    k: cfg.knn,
    knnMethod: cfg.knnMethod,
    backend: o.backend,
    timings,
  });
  const labels = readGroundTruth(o.data.labelPath, features.n, o.data.featPath);
  const confs = readPredConfs(o.predConfs, { n: features.n });
  const ignoreRatio = cfg.trainData?.ignoreRatio ?? 0.7;
  const params = {
    ...scheduleParams(cfg, opts),
    iter_size: cfg.iterSize,
    ignore_ratio: ignoreRatio,
    subgraphs_per_epoch: cfg.subgraphsPerEpoch ?? null,
  };
  const start = o.resumeFrom ?? cfg.resumeFrom ?? o.loadFrom ?? cfg.loadFrom;
  const inputs = [o.data.featPath, o.data.labelPath, o.data.knnPath, o.predConfs, ...(start ? [start] : [])];
  return await trainInChunks("gcn-e", cfg, opts, async (weights, state, { from, to, total }) => {
    const bar = progressReporter(`train-gcn-e: epochs ${from + 1}..${to}`);
    const r = await trainGcnE({
      features,
      knn,
      confs,
      labels,
      weights,
      state,
      thSim: cfg.thSim,
      maxConn: cfg.maxConn,
      backend: o.backend,
      paths: { features: o.data.featPath, knn: o.data.knnPath, confs: o.predConfs },
      schedule: {
        epochs: total,
        lr: cfg.lr,
        momentum: cfg.momentum,
        weightDecay: cfg.weightDecay,
        lrSteps: cfg.lrSteps,
        lrGamma: cfg.lrGamma,
        iterSize: cfg.iterSize,
        ignoreRatio,
        seed,
        subgraphsPerEpoch: cfg.subgraphsPerEpoch,
      },
      startEpoch: from,
      endEpoch: to,
      onStep: ({ epoch, step, steps }) => bar.onProgress((epoch - from - 1) * steps + step, (to - from) * steps),
    });
    bar.done();
    return { loss: r.epochLosses.reduce((a, b) => a + b, 0) / r.epochLosses.length, backend: r.backend };
  }, { params, inputs, timings });
}
