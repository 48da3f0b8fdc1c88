/**
 * Stage `knn`: the kNN graph of a feature file, in the original's layout and file names.
 *
 *     deno task knn --prefix DIR --name NAME [--k 80] [--method exact|hnsw] [--backend auto|webgpu|cpu]
 *                   [--dim 256] [--no-normalize] [--center] [--force]
 *
 * Reads `DIR/features/NAME.bin` (L2-normalised on load unless `--no-normalize`; `--center` subtracts the mean
 * first) and writes `DIR/knns/NAME/faiss_k_<k>.npz` (exact, interchangeable with the original's faiss IndexFlatIP
 * files) or `DIR/knns/NAME/hnsw_k_<k>.npz`: dense `(N, 2, k)` float64, rows by descending similarity with self
 * normally first, distance = 1 − cosine. A sidecar `<file>.meta.json` records backend, adapter, timings and, for
 * HNSW, recall@k against exact search on a sample of rows. An up-to-date artifact (same parameters, same input
 * bytes) is kept unless `--force`.
 * @module
 */
import { join } from "node:path";
import { isUpToDate, Timings, writeSidecar } from "../shared/artifact.ts";
import { type CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { type Features, readFeatures } from "../shared/features.ts";
import { knnFileName, type KnnGraph, writeKnn } from "../shared/knn_file.ts";
import { log } from "../shared/progress.ts";
import type { BackendChoice } from "../gpu/device.ts";
import { exactKnn, hnswKnn, type HnswParams, hnswParams } from "../gpu/knn/mod.ts";

/** kNN methods: `exact` (file name `faiss_…`, as the original's IndexFlatIP) or `hnsw`. `faiss` = `exact`. */
export const KNN_STAGE_METHODS = ["exact", "faiss", "hnsw"] as const;
export type KnnStageMethod = typeof KNN_STAGE_METHODS[number];

/** Options of {@linkcode buildKnn}. */
export interface BuildKnnOptions {
  k: number;
  /** default `exact` */
  method?: KnnStageMethod;
  /** backend of exact search (also used for the HNSW recall sample); default `auto` */
  backend?: BackendChoice;
  /** HNSW graph degree, construction beam, search beam, seed, worker shards */
  hnsw?: { m?: number; efConstruction?: number; ef?: number; seed?: number; shards?: number };
  /** rows sampled to measure HNSW recall@k against exact search (default 1000; 0 = skip) */
  recallSample?: number;
  /** progress bars on stderr (TTY only; default true) */
  progress?: boolean;
}

/** Result of {@linkcode buildKnn}. */
export interface BuildKnnResult {
  graph: KnnGraph;
  /** `exact` or `hnsw` */
  method: "exact" | "hnsw";
  /** backend label, e.g. `cpu (onnxruntime-node)` */
  backend: string;
  /** resolved HNSW parameters (hnsw only) */
  hnsw?: HnswParams & { shards: number };
  /** recall@k of the HNSW rows against exact search on a sample (hnsw only) */
  recall?: { sample: number; recallAtK: number; backend: string };
  timings: Timings;
}

/** Evenly spaced sample of `count` row ids out of `n` (deterministic). */
export function sampleRows(n: number, count: number): Int32Array {
  const m = Math.min(n, count);
  const out = new Int32Array(m);
  for (let t = 0; t < m; t++) out[t] = Math.floor((t * n) / m);
  return out;
}

/** Mean |approx row ∩ exact row| / k over the sampled rows (−1 padding never counts). */
export function recallAtK(approx: KnnGraph, exact: KnnGraph, rows: Int32Array): number {
  const k = exact.k;
  let hit = 0;
  for (let t = 0; t < rows.length; t++) {
    const i = rows[t]!;
    const want = new Set<number>();
    for (let j = 0; j < k; j++) want.add(exact.nbrs[t * k + j]!);
    for (let j = 0; j < approx.k; j++) {
      const id = approx.nbrs[i * approx.k + j]!;
      if (id >= 0 && want.has(id)) hit++;
    }
  }
  return rows.length ? hit / (rows.length * k) : 1;
}

/**
 * Build the kNN graph of in-memory features (rows already normalised as wanted): exact inner-product search on the
 * chosen backend, or HNSW. Other stages call this when a kNN file is missing.
 */
export async function buildKnn(features: Features, options: BuildKnnOptions): Promise<BuildKnnResult> {
  const { k } = options;
  const method = options.method === "hnsw" ? "hnsw" : "exact";
  if (!(Number.isInteger(k) && k > 0)) throw new LtcError(`knn: --k must be a positive integer, got ${k}`);
  if (k >= features.n) {
    throw new LtcError(`knn: k = ${k} must be smaller than the number of feature rows (${features.n})`);
  }
  const timings = new Timings();
  const backend = options.backend ?? "auto";
  if (method === "exact") {
    const r = await timings.stepAsync(
      "exact_knn",
      () => exactKnn(features, { k, backend, progress: options.progress }),
    );
    return { graph: r.graph, method, backend: r.backend, timings };
  }
  const shards = options.hnsw?.shards ?? 1;
  const h = await timings.stepAsync("hnsw", () => hnswKnn(features, { k, ...options.hnsw, shards }));
  const graph: KnnGraph = { n: features.n, k, nbrs: h.nbrs, dists: h.dists };
  const result: BuildKnnResult = {
    graph,
    method,
    backend: `cpu (hnswlib-wasm${h.shards > 1 ? `, ${h.shards} worker shards` : ""})`,
    hnsw: { ...h.params, shards: h.shards },
    timings,
  };
  const sample = options.recallSample ?? 1000;
  if (sample > 0) {
    const rows = sampleRows(features.n, sample);
    const q = new Float32Array(rows.length * features.dim);
    rows.forEach((i, t) => q.set(features.data.subarray(i * features.dim, (i + 1) * features.dim), t * features.dim));
    const ex = await timings.stepAsync(
      "recall_exact_sample",
      () =>
        exactKnn(features, { k, backend, queries: { data: q, n: rows.length, dim: features.dim }, progress: false }),
    );
    result.recall = { sample: rows.length, recallAtK: recallAtK(graph, ex.graph, rows), backend: ex.backend };
  }
  return result;
}

/** Options of {@linkcode runKnnStage}. */
export interface KnnStageOptions extends BuildKnnOptions {
  prefix: string;
  name: string;
  dim?: number;
  normalize?: boolean;
  center?: boolean;
  force?: boolean;
}

/** Path of the kNN artifact: `PREFIX/knns/NAME/<faiss|hnsw>_k_<k>.npz`. */
export function knnArtifactPath(prefix: string, name: string, method: KnnStageMethod, k: number): string {
  return join(prefix, "knns", name, knnFileName(method === "hnsw" ? "hnsw" : "faiss", k));
}

/** Read features, build (or keep) the kNN artifact and its sidecar; returns the path and whether work was done. */
export async function runKnnStage(
  options: KnnStageOptions,
): Promise<{ path: string; skipped: boolean; result?: BuildKnnResult }> {
  const method = options.method ?? "exact";
  const featPath = join(options.prefix, "features", `${options.name}.bin`);
  const path = knnArtifactPath(options.prefix, options.name, method, options.k);
  const hnsw = method === "hnsw" ? hnswParams({ k: options.k, ...options.hnsw }) : undefined;
  const params: Record<string, unknown> = {
    method: method === "hnsw" ? "hnsw" : "exact",
    k: options.k,
    dim: options.dim ?? 256,
    normalize: options.normalize ?? true,
    center: options.center ?? false,
    ...(hnsw ? { hnsw: { ...hnsw, shards: options.hnsw?.shards ?? 1 } } : {}),
  };
  if (!options.force && isUpToDate(path, params, [featPath])) {
    log(`knn: ${path} is up to date (use --force to rebuild)`);
    return { path, skipped: true };
  }
  const t = new Timings();
  let features: Features | null = t.step("read_features", () =>
    readFeatures(featPath, {
      dim: options.dim ?? 256,
      normalize: options.normalize ?? true,
      center: options.center ?? false,
    }));
  const result = await buildKnn(features, options);
  const { n, dim } = features;
  features = null; // let the rows go before the write's large buffers (part1: 598 MB)
  t.step("write", () => writeKnn(path, result.graph));
  for (const [step, secs] of Object.entries(result.timings.steps)) t.steps[step] = secs;
  const flop = 2 * n * n * dim;
  writeSidecar(path, {
    stage: "knn",
    params,
    inputs: [featPath],
    backend: result.backend,
    timings: t,
    extra: {
      n,
      dim,
      k: options.k,
      ...(result.method === "exact" && t.steps.exact_knn
        ? { gflop_per_s: Number((flop / t.steps.exact_knn / 1e9).toFixed(1)) }
        : {}),
      ...(result.recall ? { recall: result.recall } : {}),
    },
  });
  log(
    `knn: wrote ${path} (${n} rows, k ${options.k}, ${result.backend}, ` +
      `${t.total().toFixed(1)} s${result.recall ? `, recall@${options.k} ${result.recall.recallAtK.toFixed(4)}` : ""})`,
  );
  return { path, skipped: false, result };
}

/** The stage's command line. */
export const KNN_CLI: CliSpec = {
  name: "knn",
  summary: "Build the kNN graph of DIR/features/NAME.bin into DIR/knns/NAME/{faiss,hnsw}_k_<k>.npz (+ sidecar).",
  options: {
    prefix: { type: "string", required: true, help: "data folder holding features/NAME.bin" },
    name: { type: "string", required: true, help: "feature set name" },
    k: { type: "int", default: 80, help: "neighbours per row (self included)" },
    method: { type: "string", default: "exact", choices: KNN_STAGE_METHODS, help: "exact (= faiss) or hnsw" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "backend of exact search" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    "no-normalize": { type: "boolean", help: "do not L2-normalise features" },
    center: { type: "boolean", help: "subtract the mean feature before normalising" },
    force: { type: "boolean", help: "rebuild even when the artifact is up to date" },
    "hnsw-m": { type: "int", default: 16, help: "HNSW graph degree M" },
    "ef-construction": { type: "int", default: 100, help: "HNSW construction beam" },
    ef: { type: "int", help: "HNSW search beam (default max(k + 40, 2k))" },
    shards: { type: "int", default: 1, help: "HNSW: independent shards built and searched in worker threads" },
    "recall-sample": { type: "int", default: 1000, help: "HNSW: rows whose recall@k is measured (0 = skip)" },
  },
};

/** Stage options from parsed command-line arguments. */
export function optionsFromArgs(args: CliArgs): KnnStageOptions {
  return {
    prefix: args.reqStr("prefix"),
    name: args.reqStr("name"),
    k: args.num("k"),
    method: args.str("method") as KnnStageMethod,
    backend: args.str("backend") as BackendChoice,
    dim: args.num("dim"),
    normalize: !args.bool("no-normalize"),
    center: args.bool("center"),
    force: args.bool("force"),
    hnsw: {
      m: args.num("hnsw-m"),
      efConstruction: args.num("ef-construction"),
      ef: args.optNum("ef"),
      shards: args.num("shards"),
    },
    recallSample: args.num("recall-sample"),
  };
}

if (import.meta.main) {
  await runMain(async () => {
    await runKnnStage(optionsFromArgs(parseCli(KNN_CLI, Deno.args)));
  });
}
