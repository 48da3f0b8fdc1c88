/**
 * Exact k-nearest neighbours by inner product (faiss `IndexFlatIP` semantics) and all-pairs similarity search, over
 * the exact backends of {@linkcode ./registry.ts} (each implements {@linkcode ./backend.ts}):
 * - `cpu`: the CPU twin (onnxruntime MatMul + TopK graphs over query blocks; plain TypeScript when no onnxruntime
 *   build loads);
 * - `webgpu`: hand-written WGSL, tiled inner products with a fused per-row top-k;
 * - `auto`: WebGPU on a real GPU, the CPU twin otherwise (a software adapter such as llvmpipe is slower).
 * Approximate indexes (HNSW, IVF) are opened by name through {@linkcode openKnnIndex}.
 *
 * Output rows follow faiss: neighbours by descending similarity (ties: ascending id), self normally first with
 * distance ≈ 0, distance = 1 − similarity in float32. No backend ever materialises the N×N similarity matrix.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import type { KnnGraph } from "../../shared/knn_file.ts";
import { Progress } from "../../shared/progress.ts";
import type { BackendChoice } from "../device.ts";
import type { GpuSweepStats } from "./backend.ts";
import type { PairList } from "./pairs.ts";
import { openExactBackend } from "./registry.ts";

export type { PairList } from "./pairs.ts";

/** Options of {@linkcode exactKnn}. */
export interface ExactKnnOptions {
  /** neighbours per row (self included, as faiss returns it) */
  k: number;
  /** backend choice (default `auto`) */
  backend?: BackendChoice;
  /** query rows (default: the base features themselves) */
  queries?: Features;
  /** show a progress bar on stderr (TTY only; default true) */
  progress?: boolean;
  /**
   * Only rows [start, end) of the self search (queries = the base rows; not with `queries`): the rows a full run
   * gives them, bit for bit. The backends block query rows from the first query row, so these rows are computed
   * inside the whole {@linkcode EXACT_QUERY_BLOCK}-aligned blocks that hold them (at most 2·255 rows more) and the
   * others dropped — every block then has the shape it has in a full run.
   */
  rows?: { start: number; end: number };
}

/**
 * Query rows per block that every exact backend's per-row result may depend on: the onnxruntime twin runs query
 * blocks of 256 rows from the first query row (its SGEMM may round a block's sums by the block's shape), the
 * TypeScript loops 32, the WGSL kernels tiles of 64 or 128 — all divide 256. Measured (3000 × 256 on onnxruntime,
 * 500 × 64 on llvmpipe) rows did not change with the block even for one-row blocks, but no backend promises that,
 * so sharded searches ({@linkcode ExactKnnOptions.rows}) keep the full run's blocks instead of relying on it.
 */
export const EXACT_QUERY_BLOCK = 256;

/** Result of {@linkcode exactKnn}: the graph and a label of the backend that computed it. */
export interface ExactKnnResult {
  graph: KnnGraph;
  /** e.g. `cpu (onnxruntime-node)`, `webgpu (llvmpipe …)` */
  backend: string;
  /** host round trips and submits of a GPU sweep (absent on the CPU) */
  gpu?: GpuSweepStats;
}

function checkFeatures(f: Features, what: string): void {
  if (!(f.n > 0)) throw new LtcError(`${what}: no rows`);
  if (!(Number.isInteger(f.dim) && f.dim > 0)) throw new LtcError(`${what}: feature dim must be a positive integer`);
  if (f.data.length < f.n * f.dim) {
    throw new LtcError(`${what}: data holds ${f.data.length} values, fewer than n·dim = ${f.n * f.dim}`);
  }
}

/**
 * Exact k nearest neighbours of every query row among the base rows by inner product (cosine on unit vectors).
 * Rows are sorted by descending similarity, ties by ascending id.
 */
export async function exactKnn(features: Features, options: ExactKnnOptions): Promise<ExactKnnResult> {
  const { k, rows } = options;
  if (rows) return await exactKnnRows(features, { ...options, rows });
  const queries = options.queries ?? features;
  checkFeatures(features, "exactKnn base features");
  checkFeatures(queries, "exactKnn queries");
  if (!(Number.isInteger(k) && k > 0)) throw new LtcError(`exactKnn: k must be a positive integer, got ${k}`);
  if (k > features.n) throw new LtcError(`exactKnn: k = ${k} exceeds the number of base rows (${features.n})`);
  if (queries.dim !== features.dim) {
    throw new LtcError(`exactKnn: queries have dim ${queries.dim} but the base has dim ${features.dim}`);
  }
  const bar = options.progress === false ? undefined : fractionBar("knn");
  try {
    const backend = await openExactBackend(options.backend ?? "auto");
    const { nbrs, dists, gpu } = await backend.knn({ base: features, queries, k, onProgress: bar?.update });
    return { graph: { n: queries.n, k, nbrs, dists }, backend: backend.label, ...(gpu ? { gpu } : {}) };
  } finally {
    bar?.done();
  }
}

/** {@linkcode exactKnn} of rows [start, end) of the self search, through whole aligned query blocks. */
async function exactKnnRows(
  features: Features,
  options: ExactKnnOptions & { rows: { start: number; end: number } },
): Promise<ExactKnnResult> {
  const { start, end } = options.rows;
  if (options.queries) throw new LtcError(`exactKnn: rows select rows of the self search; queries must not be given`);
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= features.n)) {
    throw new LtcError(`exactKnn: rows [${start}, ${end}) are not a non-empty range of the ${features.n} base rows`);
  }
  const b0 = Math.floor(start / EXACT_QUERY_BLOCK) * EXACT_QUERY_BLOCK;
  const b1 = Math.min(features.n, Math.ceil(end / EXACT_QUERY_BLOCK) * EXACT_QUERY_BLOCK);
  const { dim } = features;
  const queries = b0 === 0 && b1 === features.n
    ? features
    : { n: b1 - b0, dim, data: features.data.subarray(b0 * dim, b1 * dim) };
  const r = await exactKnn(features, { ...options, rows: undefined, queries });
  const { k } = options;
  const keep = <T extends Int32Array | Float32Array>(a: T) => a.slice((start - b0) * k, (end - b0) * k) as T;
  return { ...r, graph: { n: end - start, k, nbrs: keep(r.graph.nbrs), dists: keep(r.graph.dists) } };
}

/** A progress bar fed with completed fractions. */
function fractionBar(label: string): { update: (fraction: number) => void; done: () => void } {
  const steps = 1000;
  const p = new Progress(label, steps);
  let shown = 0;
  return {
    update: (fraction: number) => {
      const now = Math.min(steps, Math.floor(fraction * steps));
      if (now > shown) {
        p.tick(now - shown);
        shown = now;
      }
    },
    done: () => p.done(),
  };
}

/** Options of {@linkcode similarityPairs}. */
export interface SimilarityPairsOptions {
  /** keep pairs whose float32 inner product is ≥ this */
  minSim: number;
  /** backend choice (default `auto`) */
  backend?: BackendChoice;
}

/**
 * Every pair i < j whose inner product (computed in float32 by the backend's blocked GEMM) is ≥ `minSim`, over all
 * pairs, ordered by ascending i then j. Blocked like exact kNN; the N×N matrix is never held.
 *
 * Rounding: backends sum in different orders, so a pair whose true inner product lies within ~1e-6 of `minSim` may
 * fall on either side. Where an exact cut matters use {@linkcode pairsWithinDistance}, which widens the search by
 * a safe margin and re-decides every candidate in float64.
 */
export async function similarityPairs(
  features: Features,
  options: SimilarityPairsOptions,
): Promise<PairList & { backend: string }> {
  checkFeatures(features, "similarityPairs features");
  if (!Number.isFinite(options.minSim)) throw new LtcError(`similarityPairs: minSim must be a finite number`);
  const backend = await openExactBackend(options.backend ?? "auto");
  return { ...(await backend.pairs(features, { minSim: options.minSim })), backend: backend.label };
}

/** Options of {@linkcode pairsWithinDistance}. */
export interface PairsWithinDistanceOptions {
  /** keep pairs with Euclidean distance ≤ this */
  maxDist: number;
  /** backend choice for the candidate search (default `auto`) */
  backend?: BackendChoice;
}

/** Float64 Euclidean distance between rows i and j (sum of squared differences in index order, then sqrt). */
export function euclid64(features: Features, i: number, j: number): number {
  const d = features.dim, x = features.data;
  let ss = 0;
  for (let t = 0; t < d; t++) {
    const diff = x[i * d + t]! - x[j * d + t]!;
    ss += diff * diff;
  }
  return Math.sqrt(ss);
}

/**
 * Every pair i < j with Euclidean distance ≤ `maxDist`, decided exactly in float64 as fastcluster/scipy do (the
 * original's FastHAC computes distances in float64 from the float32 features and cuts at height ≤ t). Candidates
 * come from {@linkcode similarityPairs} at `1 − maxDist²/2` lowered by a margin — 1e-4 (far above float32 GEMM
 * rounding) plus the rows' largest shortfall below unit squared norm — so no qualifying pair is missed; each is then
 * re-measured with {@linkcode euclid64}. Meant for L2-normalised rows (for rows far from unit norm the margin, and
 * the candidate count, grow). Returned `sim` is the float32 inner product from the search.
 */
export async function pairsWithinDistance(
  features: Features,
  options: PairsWithinDistanceOptions,
): Promise<PairList & { dist: Float64Array; backend: string }> {
  const { maxDist } = options;
  if (!(Number.isFinite(maxDist) && maxDist >= 0)) {
    throw new LtcError(`pairsWithinDistance: maxDist must be a finite number ≥ 0, got ${maxDist}`);
  }
  // ‖x − y‖² = ‖x‖² + ‖y‖² − 2⟨x, y⟩ ≤ d² needs ⟨x, y⟩ ≥ 1 − δ − d²/2 when every ‖x‖² ≥ 1 − δ; 1e-4 more covers
  // the float32 GEMM's rounding (≈ 1e-6 at dim 512) many times over
  let delta = 0;
  for (let i = 0; i < features.n; i++) {
    let ss = 0;
    for (let t = 0; t < features.dim; t++) ss += features.data[i * features.dim + t]! ** 2;
    delta = Math.max(delta, 1 - ss);
  }
  const margin = 1e-4 + delta;
  const cand = await similarityPairs(features, {
    minSim: 1 - (maxDist * maxDist) / 2 - margin,
    backend: options.backend,
  });
  const keep: number[] = [];
  const dist: number[] = [];
  for (let t = 0; t < cand.i.length; t++) {
    const e = euclid64(features, cand.i[t]!, cand.j[t]!);
    if (e <= maxDist) {
      keep.push(t);
      dist.push(e);
    }
  }
  const pick = <T extends Int32Array | Float32Array>(a: T, make: (n: number) => T): T => {
    const out = make(keep.length);
    for (let t = 0; t < keep.length; t++) out[t] = a[keep[t]!]!;
    return out;
  };
  return {
    i: pick(cand.i, (n) => new Int32Array(n)),
    j: pick(cand.j, (n) => new Int32Array(n)),
    sim: pick(cand.sim, (n) => new Float32Array(n)),
    dist: Float64Array.from(dist),
    backend: cand.backend,
  };
}

export { dotAt } from "./cpu_js.ts";
export { gemmErrorBound, RowMinCandidatesOrt, ScaledGemmOrt } from "./gemm_ort.ts";
export { hnswKnn, hnswLabel, type HnswOptions, type HnswParams, hnswParams } from "./hnsw.ts";
export {
  buildIvfIndex,
  defaultChunkRows,
  defaultNlist,
  defaultNprobe,
  type IvfIndex,
  ivfKnn,
  ivfLabel,
  type IvfOptions,
  type IvfParams,
  ivfParams,
  type IvfResult,
  type IvfSearchResult,
  type IvfStats,
  searchIvf,
} from "./ivf.ts";
export type {
  ExactKnnBackend,
  GpuSweepStats,
  IndexKnnBackend,
  IndexParams,
  IndexRun,
  KnnBackend,
  KnnRows,
  KnnSearch,
} from "./backend.ts";
export { EXACT_KNN_BACKENDS, KNN_INDEXES, openExactBackend, openKnnIndex } from "./registry.ts";
