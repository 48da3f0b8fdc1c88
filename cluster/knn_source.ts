/**
 * Where the stages get kNN graphs: building one from features (exact search on a backend, or an approximate index —
 * HNSW or IVF — with recall measured on a sample), the kNN artifact with its sidecar, and loading a dataset's kNN
 * file once per run — built when missing (the original's `build_knns`).
 * @module
 */
import { join } from "node:path";
import {
  checkFresh,
  ensureWritable,
  isFile,
  isUpToDate,
  markInProgress,
  readSidecar,
  Timings,
  writeSidecar,
} from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { type Features, readFeatures } from "../shared/features.ts";
import { knnFileName, type KnnGraph, readKnn, writeKnn } from "../shared/knn_file.ts";
import { log, Progress } from "../shared/progress.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  exactKnn,
  type GpuSweepStats,
  hnswKnn,
  type HnswParams,
  hnswParams,
  ivfKnn,
  ivfLabel,
  type IvfOptions,
  type IvfParams,
  ivfParams,
  type IvfStats,
} from "../gpu/knn/mod.ts";

/**
 * kNN methods the proposal and baseline stages accept, which are also the kNN file names' stems: the original's
 * `faiss` (exact) and `hnsw`, and `ivf` (this tool's inverted-file index, file `ivf_k_<k>.npz`).
 */
export const KNN_METHODS = ["faiss", "hnsw", "ivf"] as const;
/** One of {@linkcode KNN_METHODS}. */
export type KnnMethod = typeof KNN_METHODS[number];

/** kNN methods: `exact` (file name `faiss_…`, as the original's IndexFlatIP), `hnsw` or `ivf`. `faiss` = `exact`. */
export const KNN_STAGE_METHODS = ["exact", "faiss", "hnsw", "ivf"] as const;
export type KnnStageMethod = typeof KNN_STAGE_METHODS[number];

/** IVF parameters of the kNN stage (see gpu/knn/ivf.ts; defaults from `ivfParams`). */
export type IvfStageOptions = Pick<
  IvfOptions,
  "nlist" | "nprobe" | "chunkRows" | "trainPerList" | "iterations" | "coarse" | "seed" | "screenBits"
>;

/** The search a kNN method (file stem) stands for: `faiss` is exact search. */
export function searchMethodOf(method: KnnStageMethod | KnnMethod): "exact" | "hnsw" | "ivf" {
  return method === "hnsw" || method === "ivf" ? method : "exact";
}

/** Options of {@linkcode buildKnn}. */
export interface BuildKnnOptions {
  k: number;
  /** default `exact` */
  method?: KnnStageMethod;
  /** backend of exact search (also used for the HNSW recall sample); default `auto` */
  backend?: BackendChoice;
  /** HNSW graph degree, construction beam, search beam, seed, worker shards */
  hnsw?: { m?: number; efConstruction?: number; ef?: number; seed?: number; shards?: number };
  /** IVF lists, probes, training sample per list, k-means iterations and two-level start, seed */
  ivf?: IvfStageOptions;
  /** rows sampled to measure HNSW / IVF recall@k against exact search (default 1000; 0 = skip) */
  recallSample?: number;
  /** progress bars on stderr (TTY only; default true) */
  progress?: boolean;
}

/** Result of {@linkcode buildKnn}. */
export interface BuildKnnResult {
  graph: KnnGraph;
  /** `exact`, `hnsw` or `ivf` */
  method: "exact" | "hnsw" | "ivf";
  /** backend label, e.g. `cpu (onnxruntime-node)` */
  backend: string;
  /** resolved HNSW parameters (hnsw only) */
  hnsw?: HnswParams & { shards: number };
  /** resolved IVF parameters, what the search did, build and query seconds (ivf only) */
  ivf?: IvfParams & IvfStats & {
    buildSeconds: number;
    querySeconds: number;
    /** k-means, the base rows' lists, the chunks' probe ranking, the two scan passes */
    phaseSeconds: Record<string, number>;
  };
  /**
   * recall@k of the HNSW / IVF rows against exact search on a sample, and the recall of the exact neighbours at or
   * above each of {@linkcode RECALL_SIMILARITIES} (approximate methods only)
   */
  recall?: KnnRecall;
  /** host round trips and submits of a WebGPU sweep (sidecar `gpu_sweep`) */
  gpu?: GpuSweepStats;
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
  return rows.length ? recallCounts(approx, exact, rows).hits / (rows.length * exact.k) : 1;
}

/**
 * Similarity cuts of the recall above a similarity ({@linkcode recallCounts}): the pipeline's lowest (0.6: Infomap's
 * edges and the lowest proposal threshold), CDP's and the two-set proposals' (0.7), and 0.5 below them all.
 */
export const RECALL_SIMILARITIES = [0.5, 0.6, 0.7] as const;

/** What {@linkcode recallCounts} counted. */
export interface RecallCounts {
  /** exact neighbours found by the approximate rows, over all sampled rows (recall@k = hits / (rows · k)) */
  hits: number;
  /**
   * Per similarity cut of {@linkcode RECALL_SIMILARITIES}: the exact neighbours at or above it and how many of them
   * the approximate rows hold. A row's last neighbours are often far below every cut the methods use; these say
   * whether the ones that can form an edge were found.
   */
  above: { similarity: number; neighbours: number; found: number }[];
}

/**
 * Compare approximate rows with exact rows of the sampled rows (`exact` row t is row `rows[t]`; similarity = 1 −
 * distance): recall@k hits, and per similarity cut the exact neighbours at or above it and how many were found.
 * −1 padding never counts.
 */
export function recallCounts(approx: KnnGraph, exact: KnnGraph, rows: Int32Array): RecallCounts {
  const k = exact.k;
  let hits = 0;
  const above = RECALL_SIMILARITIES.map((similarity) => ({ similarity, neighbours: 0, found: 0 }));
  const got = new Set<number>();
  for (let t = 0; t < rows.length; t++) {
    const i = rows[t]!;
    got.clear();
    for (let j = 0; j < approx.k; j++) {
      const id = approx.nbrs[i * approx.k + j]!;
      if (id >= 0) got.add(id);
    }
    for (let j = 0; j < k; j++) {
      const id = exact.nbrs[t * k + j]!;
      if (id < 0) continue;
      const found = got.has(id);
      if (found) hits++;
      const sim = 1 - exact.dists[t * k + j]!;
      for (const a of above) {
        if (sim >= a.similarity) {
          a.neighbours++;
          if (found) a.found++;
        }
      }
    }
  }
  return { hits, above };
}

/** The sidecar's recall above each similarity cut, from counts summed over the sampled rows. */
export function recallAboveRecord(above: RecallCounts["above"]): RecallAbove[] {
  return above.map(({ similarity, neighbours, found }) => ({
    similarity,
    neighbours,
    recall: neighbours ? Number((found / neighbours).toFixed(6)) : 1,
  }));
}

/** Recall of the exact neighbours at or above a similarity, as sidecars record it. */
export interface RecallAbove {
  similarity: number;
  /** exact neighbours at or above the similarity, over all sampled rows */
  neighbours: number;
  /** the share of them the approximate rows hold */
  recall: number;
}

/**
 * Build the kNN graph of in-memory features (rows already normalised as wanted): exact inner-product search on the
 * chosen backend, HNSW or IVF. Other stages call this when a kNN file is missing.
 */
export async function buildKnn(features: Features, options: BuildKnnOptions): Promise<BuildKnnResult> {
  const { k } = options;
  const method = searchMethodOf(options.method ?? "exact");
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
    return { graph: r.graph, method, backend: r.backend, timings, ...(r.gpu ? { gpu: r.gpu } : {}) };
  }
  let result: BuildKnnResult;
  if (method === "ivf") {
    const bar = options.progress === false ? undefined : new Progress("knn ivf", 1000);
    let shown = 0;
    const onProgress = bar && ((fraction: number) => {
      const now = Math.min(1000, Math.floor(fraction * 1000));
      if (now > shown) {
        bar.tick(now - shown);
        shown = now;
      }
    });
    const r = await timings.stepAsync("ivf", () => ivfKnn(features, { k, ...options.ivf, onProgress }));
    bar?.done();
    result = {
      graph: { n: features.n, k, nbrs: r.nbrs, dists: r.dists },
      method,
      backend: ivfLabel(r.label),
      ivf: {
        ...r.params,
        ...r.stats,
        buildSeconds: r.buildSeconds,
        querySeconds: r.querySeconds,
        phaseSeconds: r.phaseSeconds,
      },
      timings,
    };
  } else {
    const shards = options.hnsw?.shards ?? 1;
    const h = await timings.stepAsync("hnsw", () => hnswKnn(features, { k, ...options.hnsw, shards }));
    result = {
      graph: { n: features.n, k, nbrs: h.nbrs, dists: h.dists },
      method,
      backend: `cpu (hnswlib-wasm${h.shards > 1 ? `, ${h.shards} worker shards` : ""})`,
      hnsw: { ...h.params, shards: h.shards },
      timings,
    };
  }
  const sample = options.recallSample ?? 1000;
  if (sample > 0) {
    result.recall = await timings.stepAsync(
      "recall_exact_sample",
      () => measureRecall(result.graph, features, { sample, backend }),
    );
  }
  return result;
}

/** Recall of a kNN graph against exact search on sampled rows, as sidecars record it. */
export interface KnnRecall {
  /** rows compared */
  sample: number;
  recallAtK: number;
  /** per cut of {@linkcode RECALL_SIMILARITIES}: the exact neighbours at or above it, the share found */
  aboveSimilarity: RecallAbove[];
  /** which backend ran the exact search */
  backend: string;
}

/**
 * Recall of `graph` (e.g. an approximate kNN file) against exact inner-product search of `sample` evenly spaced rows
 * ({@linkcode sampleRows}) of `features` (rows prepared as the graph's were: normalised or not), with the graph's k.
 */
export async function measureRecall(
  graph: KnnGraph,
  features: Features,
  options: { sample: number; backend?: BackendChoice },
): Promise<KnnRecall> {
  if (graph.n !== features.n) {
    throw new LtcError(`knn recall: the kNN graph has ${graph.n} rows but the features have ${features.n}`);
  }
  const { k } = graph;
  if (k >= features.n) throw new LtcError(`knn recall: k = ${k} must be smaller than the rows (${features.n})`);
  const rows = sampleRows(features.n, options.sample);
  const { counts, backend } = await exactRecallCounts(graph, features, { rows, backend: options.backend });
  return {
    sample: rows.length,
    recallAtK: rows.length ? counts.hits / (rows.length * k) : 1,
    aboveSimilarity: recallAboveRecord(counts.above),
    backend,
  };
}

/**
 * Exact inner-product search of feature rows `rows` (k = the graph's) and {@linkcode recallCounts} of the graph's
 * rows against it; the graph holds rows from `rowOffset` on (a shard's part: default 0, all rows).
 */
export async function exactRecallCounts(
  graph: KnnGraph,
  features: Features,
  options: { rows: Int32Array; rowOffset?: number; backend?: BackendChoice },
): Promise<{ counts: RecallCounts; backend: string }> {
  const { rows } = options, dim = features.dim, offset = options.rowOffset ?? 0;
  const q = new Float32Array(rows.length * dim);
  rows.forEach((i, t) => q.set(features.data.subarray(i * dim, (i + 1) * dim), t * dim));
  const ex = await exactKnn(features, {
    k: graph.k,
    backend: options.backend ?? "auto",
    queries: { data: q, n: rows.length, dim },
    progress: false,
  });
  const local = offset ? rows.map((i) => i - offset) : rows;
  return { counts: recallCounts(graph, ex.graph, local), backend: ex.backend };
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

/** Path of the kNN artifact: `PREFIX/knns/NAME/<faiss|hnsw|ivf>_k_<k>.npz`. */
export function knnArtifactPath(prefix: string, name: string, method: KnnStageMethod, k: number): string {
  const search = searchMethodOf(method);
  return join(prefix, "knns", name, knnFileName(search === "exact" ? "faiss" : search, k));
}

/**
 * The parameters a kNN artifact's sidecar records: what decides whether the file is up to date. IVF defaults
 * depend on the row count `n`, so they are recorded resolved (as given when `n` is unknown).
 */
export function knnArtifactParams(
  method: KnnStageMethod,
  k: number,
  source: FeatureSource,
  options: { hnsw?: BuildKnnOptions["hnsw"]; ivf?: IvfStageOptions; n?: number },
): Record<string, unknown> {
  const search = searchMethodOf(method);
  const { hnsw, ivf, n } = options;
  return {
    method: search,
    k,
    dim: source.dim ?? 256,
    normalize: source.normalize ?? true,
    center: source.center ?? false,
    ...(search === "hnsw" ? { hnsw: { ...hnswParams({ k, ...hnsw }), shards: hnsw?.shards ?? 1 } } : {}),
    ...(search === "ivf" ? { ivf: n === undefined ? { ...ivf } : ivfParams(n, { ...ivf }) } : {}),
  };
}

/**
 * Build the kNN graph of a feature file and write it to `path` (the original's layout) with its sidecar: parameters,
 * input hash, backend, timings, the GEMM rate of exact search and, for HNSW and IVF, recall on a sample (IVF: also
 * its training sample, list sizes, share of pairs scanned, build and query times). With `release` the
 * features are dropped from the cache before the write's large buffers (part1: 598 MB).
 */
export async function writeKnnArtifact(
  path: string,
  options: BuildKnnOptions & { features: FeatureCache; method: KnnStageMethod; release?: boolean },
): Promise<BuildKnnResult> {
  const { features, k } = options;
  const source = features.source;
  if (!source) throw new LtcError(`${path}: is missing and no features file was given to build it from`);
  const t = new Timings();
  const { n, dim } = t.step("read_features", () => features.get());
  if (Number.isInteger(k) && k >= n) {
    throw new LtcError(
      `${source.path}: k = ${k} must be smaller than its ${n} rows (each row is its own first neighbour)`,
    );
  }
  const result = await buildKnn(features.get(), options);
  if (options.release) features.release();
  // Until the new sidecar is written the old one would vouch for the new file (its dim, normalisation, centring),
  // and hashing the inputs for the new one takes seconds at scale: mark the file as being rebuilt first.
  markInProgress(path, "knn");
  await t.stepAsync("write", () => writeKnn(path, result.graph));
  for (const [step, secs] of Object.entries(result.timings.steps)) t.steps[step] = secs;
  const flop = 2 * n * n * dim;
  writeSidecar(path, {
    stage: "knn",
    params: knnArtifactParams(options.method, k, source, { hnsw: options.hnsw, ivf: options.ivf, n }),
    inputs: [source.path],
    backend: result.backend,
    timings: t,
    extra: {
      n,
      dim,
      k,
      ...(result.method === "exact" && t.steps.exact_knn
        ? { gflop_per_s: Number((flop / t.steps.exact_knn / 1e9).toFixed(1)) }
        : {}),
      ...(result.ivf
        ? {
          ivf: {
            train_rows: result.ivf.trainRows,
            empty_lists: result.ivf.emptyLists,
            largest_list: result.ivf.largestList,
            scanned_fraction: Number(result.ivf.scannedFraction.toPrecision(4)),
            build_seconds: Number(result.ivf.buildSeconds.toFixed(2)),
            query_seconds: Number(result.ivf.querySeconds.toFixed(2)),
            phase_seconds: Object.fromEntries(
              Object.entries(result.ivf.phaseSeconds).map(([phase, secs]) => [phase, Number(secs.toFixed(2))]),
            ),
          },
        }
        : {}),
      ...(result.recall ? { recall: result.recall } : {}),
      ...(result.gpu
        ? {
          gpu_sweep: {
            host_round_trips: result.gpu.hostRoundTrips,
            submits: result.gpu.submits,
            ...(result.gpu.kernel ? { kernel: result.gpu.kernel } : {}),
          },
        }
        : {}),
    },
  });
  log(
    `knn: wrote ${path} (${n} rows, k ${k}, ${result.backend}, ` +
      `${t.total().toFixed(1)} s${result.recall ? `, recall@${k} ${result.recall.recallAtK.toFixed(4)}` : ""})`,
  );
  return result;
}

/** The kNN stage: build the artifact of `PREFIX/features/NAME.bin` unless it is up to date. */
export async function runKnnStage(
  options: KnnStageOptions,
): Promise<{ path: string; skipped: boolean; result?: BuildKnnResult }> {
  const method = options.method ?? "exact";
  const source: FeatureSource = {
    path: join(options.prefix, "features", `${options.name}.bin`),
    dim: options.dim ?? 256,
    normalize: options.normalize ?? true,
    center: options.center ?? false,
  };
  const path = knnArtifactPath(options.prefix, options.name, method, options.k);
  const params = knnArtifactParams(method, options.k, source, {
    hnsw: options.hnsw,
    ivf: options.ivf,
    n: new FeatureCache(source).rowCount(),
  });
  if (!options.force && isUpToDate(path, params, [source.path])) {
    log(`knn: ${path} is up to date (use --force to rebuild)`);
    return { path, skipped: true };
  }
  ensureWritable(path);
  const result = await writeKnnArtifact(path, {
    ...options,
    method,
    features: new FeatureCache(source),
    release: true,
  });
  return { path, skipped: false, result };
}

/** Where the features of a dataset live and how to load them (the original's `BasicDataset`). */
export interface FeatureSource {
  /** `.bin` path */
  path: string;
  dim?: number;
  normalize?: boolean;
  center?: boolean;
}

/** Lazily loaded features and instance kNN graphs, shared by every parameter set of one run. */
export class FeatureCache {
  #features: Features | null = null;
  /** kNN graphs already read in this run, by path */
  readonly knns = new Map<string, KnnGraph>();
  /** @param source the features file; absent when only existing kNN files are used */
  constructor(readonly source?: FeatureSource) {}
  /** Row count from the file size alone (no read), or undefined when there is no features file. */
  rowCount(): number | undefined {
    if (this.#features) return this.#features.n;
    if (!this.source) return undefined;
    try {
      const size = Deno.statSync(this.source.path).size;
      const dim = this.source.dim ?? 256;
      if (size % (4 * dim) !== 0) return undefined;
      return size / (4 * dim);
    } catch {
      return undefined;
    }
  }
  /** Forget the features read (a later {@linkcode get} reads them again). */
  release(): void {
    this.#features = null;
  }
  /** The features (read once). */
  get(): Features {
    if (this.#features) return this.#features;
    if (!this.source) throw new LtcError("features are needed here but no features file was given");
    this.#features = readFeatures(this.source.path, {
      dim: this.source.dim,
      normalize: this.source.normalize,
      center: this.source.center,
    });
    return this.#features;
  }
}

/**
 * Why the kNN file `path` must not be used with these features, or null when it may: a run of ours that was
 * interrupted, an input that changed after it was built (the features above all), or features read with other
 * settings (dim, normalisation, centring) than those it was built from. Files without a sidecar (the original's
 * downloads) are taken as they are.
 */
export function staleKnnReason(path: string, features: FeatureCache): LtcError | null {
  const hint = `rebuild it (deno task knn … --force, or --force here)`;
  try {
    checkFresh(path, { features: features.source?.path, hint });
  } catch (err) {
    if (err instanceof LtcError) return err;
    throw err;
  }
  const side = readSidecar(path);
  const src = features.source;
  if (side?.stage === "knn" && side.params && src) {
    const want = { dim: src.dim ?? 256, normalize: src.normalize ?? true, center: src.center ?? false };
    for (const [key, value] of Object.entries(want)) {
      if (key in side.params && side.params[key] !== value) {
        return new LtcError(
          `${path}: was built with ${key} = ${
            side.params[key]
          }, but ${src.path} is read with ${key} = ${value}; ${hint}`,
        );
      }
    }
  }
  return null;
}

/**
 * Load the kNN graph `path`, building it from `features` when the file is missing (the original's `build_knns`):
 * exact search for `faiss`, HNSW or IVF (default parameters) for `hnsw` / `ivf`. A file that is stale for these
 * features ({@linkcode staleKnnReason}) is an error naming both, or is rebuilt with `force`. A graph whose N
 * differs from the features' row count is an error naming both.
 */
export async function loadOrBuildKnn(
  path: string,
  options: { features: FeatureCache; k: number; knnMethod: KnnMethod; backend?: BackendChoice; force?: boolean },
): Promise<KnnGraph> {
  const { features } = options;
  const cached = features.knns.get(path);
  if (cached && cached.k >= options.k) return cached;
  if (!(Number.isInteger(options.k) && options.k >= 1)) {
    throw new LtcError(`${path}: k must be a positive integer, got ${options.k}`);
  }
  let build = !isFile(path);
  if (!build) {
    const stale = staleKnnReason(path, features);
    if (stale && !options.force) throw stale;
    build = stale !== null;
  }
  let graph: KnnGraph;
  if (!build) {
    graph = readKnn(path);
    if (graph.k < options.k) {
      throw new LtcError(`${path}: has ${graph.k} neighbours per row, fewer than k = ${options.k}`);
    }
  } else {
    ensureWritable(path);
    log(`knn: building ${path} (${options.knnMethod}, k ${options.k})`);
    const method = searchMethodOf(options.knnMethod);
    graph = (await writeKnnArtifact(path, { features, k: options.k, method, backend: options.backend })).graph;
  }
  const n = features.rowCount();
  if (n !== undefined && n !== graph.n) {
    throw new LtcError(`${path}: kNN graph has ${graph.n} rows but ${features.source!.path} has ${n}`);
  }
  features.knns.set(path, graph);
  return graph;
}
