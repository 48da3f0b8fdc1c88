/**
 * Stage `baseline`: run one clustering baseline of the original's results table (reference §9; the methods live in
 * `cluster/baselines/`, one file each) with the original driver's parameter names and output layout
 * (`tools/baseline_cluster.py`).
 *
 *     deno task baseline --method knn_dbscan --prefix data --name part1_test --eps 0.25 --min-samples 1 --th-sim 0
 *
 * Writes `<oprefix>/<name>_<method>_<param string>/pred_labels.txt` (labels −1 dropped, then `write_meta`, so noise
 * becomes singletons) and, when ground truth is available (`--gt-labels`, default `<prefix>/labels/<name>.meta`
 * if present), prints pairwise / BCubed / NMI and stores them in the sidecar.
 *
 * Methods and how they relate to the original:
 * - `aro`: approximate rank-order on the exact kNN of the features (the original queries a pyflann kd-tree, an
 *   approximate search we do not reproduce); `knn_aro`: the same on the stored kNN file rows. BFS seeds go in index
 *   order (the original's follow Python set order), so labels can differ slightly; metrics stay within ~0.005.
 * - `knn_dbscan`: sklearn DBSCAN semantics on the kNN distance graph (directed neighbourhoods d ≤ eps with self,
 *   core = at least min_samples, DFS expansion in index order). Exact.
 * - `fast_hac`: single linkage cut at a Euclidean distance = connected components over all pairs within the cut,
 *   found by the blocked all-pairs search and decided in float64. Exact. Other linkages are refused.
 * - `cdp`: CDP single model — kNN pairs with sim > th (strict), graph propagation (max size, step). Exact.
 * - `chinese_whispers`: the original's graph (kNN entries with sim ≥ th, undirected, a later weight overwrites),
 *   node visiting order from Python's `random.shuffle` stream (seed 42) reproduced with MT19937. The original
 *   returns labels cluster by cluster rather than by node (element i is not node i's label); we return them by
 *   node — the original's reported CW numbers carry that bug.
 * - `mini_batch_kmeans`: sklearn 0.22 `MiniBatchKMeans(n_clusters, batch_size, random_state=0)` (k-means++ with
 *   2 + ln k local trials, n_init 3 on a 3·batch validation sample, per-centre count-weighted updates, low-count
 *   reassignment, EWA-inertia early stop after 10 batches without improvement, max_iter 100), drawing from numpy's
 *   legacy MT19937 stream. Distances are computed in float64 rather than by float32 BLAS, so near-ties can go the
 *   other way and the result is not bit-identical to sklearn's. At scale an onnxruntime float32 SGEMM screens the
 *   row–centre pairs and only the pairs its error bound leaves open are computed in float64, which gives exactly
 *   the scalar loops' labels (part1 scale, k = 8573: ≈ 4.5 min on 2 shared cores; scalar loops alone ≈ 2 h).
 *
 * The code behind it: `cluster/baselines/`.
 * @module
 */
import { join } from "node:path";
import { ensureWritable, isFile, isUpToDate, Timings, writeSidecar } from "../shared/artifact.ts";
import { CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { knnFileName } from "../shared/knn_file.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { log } from "../shared/progress.ts";
import {
  BASELINE_DEFAULTS,
  BASELINE_METHODS,
  baselineByName,
  type BaselineParams,
  baselineParamString,
  runBaseline,
} from "../cluster/baselines/mod.ts";
import { FeatureCache, KNN_METHODS, type KnnMethod } from "../cluster/knn_source.ts";
import { type AllMetrics, countClusters, evaluateAll, formatMetrics } from "../cluster/metrics.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "baseline",
  summary: "Clustering baselines of the original's results table (tools/baseline_cluster.py).",
  options: {
    method: { type: "string", required: true, choices: BASELINE_METHODS, help: "baseline" },
    prefix: { type: "string", default: "./data", help: "data folder with features/, labels/, knns/" },
    name: { type: "string", default: "part1_test", help: "dataset name" },
    oprefix: { type: "string", default: "./data/baseline_results", help: "output root" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    "no-normalize": { type: "boolean", help: "do not L2-normalise features" },
    center: { type: "boolean", help: "subtract the dataset mean before normalising" },
    "gt-labels": { type: "string", help: "ground truth (default <prefix>/labels/<name>.meta when present)" },
    knn: { type: "int", default: BASELINE_DEFAULTS.knn, help: "neighbours (aro, knn_*, cdp, chinese_whispers)" },
    "th-sim": { type: "number", default: BASELINE_DEFAULTS.th_sim, help: "similarity threshold" },
    "knn-method": { type: "string", choices: KNN_METHODS, default: "faiss", help: "kNN file to use" },
    eps: { type: "number", default: BASELINE_DEFAULTS.eps, help: "DBSCAN eps (distance 1 − cos)" },
    "min-samples": { type: "int", default: BASELINE_DEFAULTS.min_samples, help: "DBSCAN min_samples" },
    distance: { type: "number", default: BASELINE_DEFAULTS.distance, help: "FastHAC Euclidean cut" },
    hmethod: { type: "string", default: "single", help: "FastHAC linkage (single only)" },
    "n-clusters": { type: "int", default: BASELINE_DEFAULTS.n_clusters, help: "MiniBatchKMeans n_clusters" },
    "batch-size": { type: "int", default: BASELINE_DEFAULTS.batch_size, help: "MiniBatchKMeans batch_size" },
    seed: {
      type: "int",
      help: "random seed (default: 42 for chinese_whispers' shuffles, 0 for mini_batch_kmeans as the original)",
    },
    iters: { type: "int", default: BASELINE_DEFAULTS.iters, help: "Chinese Whispers rounds" },
    trials: { type: "int", default: BASELINE_DEFAULTS.trials, help: "Infomap trials (lowest codelength wins)" },
    "max-sz": { type: "int", default: BASELINE_DEFAULTS.max_sz, help: "CDP max cluster size" },
    step: { type: "number", default: BASELINE_DEFAULTS.step, help: "CDP threshold step" },
    "max-iter": { type: "int", default: BASELINE_DEFAULTS.max_iter, help: "CDP propagation rounds" },
    force: { type: "boolean", help: "recompute even if the output is up to date" },
    backend: { type: "string", choices: ["auto", "webgpu", "cpu"], default: "auto", help: "kNN / pair backend" },
  },
};

async function main(args: CliArgs): Promise<void> {
  const method = args.reqStr("method");
  const baseline = baselineByName(method);
  if (!(args.num("knn") >= 1)) throw new LtcError(`baseline: --knn must be a positive integer, got ${args.num("knn")}`);
  const prefix = args.reqStr("prefix"), name = args.reqStr("name");
  const p: BaselineParams = {
    method,
    knn: args.num("knn"),
    th_sim: args.num("th-sim"),
    knn_method: args.str("knn-method") as KnnMethod,
    eps: args.num("eps"),
    min_samples: args.num("min-samples"),
    distance: args.num("distance"),
    hmethod: args.reqStr("hmethod"),
    n_clusters: args.num("n-clusters"),
    batch_size: args.num("batch-size"),
    seed: args.optNum("seed") ?? baseline.defaultSeed ?? BASELINE_DEFAULTS.seed,
    iters: args.num("iters"),
    trials: args.num("trials"),
    max_sz: args.num("max-sz"),
    step: args.num("step"),
    max_iter: args.num("max-iter"),
  };
  const featPath = join(prefix, "features", `${name}.bin`);
  const features = new FeatureCache({
    path: featPath,
    dim: args.num("dim"),
    normalize: !args.bool("no-normalize"),
    center: args.bool("center"),
  });
  const folder = join(args.reqStr("oprefix"), `${name}_${method}_${baselineParamString(p)}`);
  const out = join(folder, "pred_labels.txt");
  ensureWritable(out);
  let gtPath = args.str("gt-labels");
  if (gtPath === undefined) {
    const guess = join(prefix, "labels", `${name}.meta`);
    try {
      if (Deno.statSync(guess).isFile) gtPath = guess;
    } catch { /* no ground truth */ }
  }
  const knnPath = join(prefix, "knns", name, knnFileName(p.knn_method, p.knn));
  const params = { ...p, dim: args.num("dim"), normalize: !args.bool("no-normalize"), center: args.bool("center") };
  const timings = new Timings();
  // The ground truth is read and checked before anything is written: a bad one must not leave a label file behind.
  const gt = gtPath ? readLabels(gtPath) : undefined;
  const checkGt = (labels: Int32Array) => {
    if (gt && gt.length !== labels.length) {
      throw new LtcError(`${gtPath}: has ${gt.length} labels but the ${method} result has ${labels.length}`);
    }
  };
  let labels: Int32Array;
  let methodExtra: Record<string, unknown> | undefined;
  const inputs = baseline.input === "knn" ? [knnPath] : [featPath];
  if (!args.bool("force") && isFile(inputs[0]!) && isUpToDate(out, params, inputs)) {
    log(`baseline: ${out} is up to date`);
    labels = readLabels(out);
    checkGt(labels);
  } else {
    const res = await timings.stepAsync(
      method,
      () =>
        runBaseline(p, {
          features,
          knnPrefix: join(prefix, "knns", name),
          backend: args.str("backend") as BackendChoice,
        }),
    );
    labels = res.labels;
    methodExtra = res.extra;
    checkGt(labels);
    writeLabels(out, labels);
  }
  const metrics: AllMetrics | undefined = gt ? evaluateAll(gt, labels) : undefined;
  writeSidecar(out, {
    stage: "baseline",
    params,
    inputs,
    timings,
    extra: { clusters: countClusters(labels), ...methodExtra, ...(metrics ? { metrics, gt_labels: gtPath } : {}) },
  });
  console.log(`${method}: ${countClusters(labels)} clusters, written to ${out}`);
  if (metrics) console.log(formatMetrics(metrics));
}

if (import.meta.main) {
  await runMain(() => main(parseCli(spec, Deno.args)));
}
