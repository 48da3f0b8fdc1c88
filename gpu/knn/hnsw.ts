/**
 * Approximate kNN with HNSW (hnswlib compiled to wasm, npm `hnswlib-wasm`), the counterpart of the original's
 * `knn_hnsw` (nmslib HNSW, cosine space). Rows are expected L2-normalised; the index uses hnswlib's inner-product
 * space, whose distance `1 − ⟨x, y⟩` is the original's `1 − cosine`. Rows come back by ascending distance, ties by
 * ascending id; when the index returns fewer than k neighbours the row is padded with id −1, distance 1.
 *
 * The index is built in insertion order 0..N−1 with a fixed seed, so runs are deterministic. With `shards` > 1 the
 * rows are cut into contiguous shards, one index per shard, each built and searched in its own worker thread; every
 * query searches every shard and the per-shard lists are merged (exact merge, by distance then id).
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { backendLabel } from "../device.ts";
import type { IndexBackendEntry } from "./backend.ts";
import { RowTopK } from "./topk.ts";

/** HNSW parameters. */
export interface HnswOptions {
  /** neighbours per row (self included) */
  k: number;
  /** graph degree M (default 16) */
  m?: number;
  /** construction beam efConstruction (default 100) */
  efConstruction?: number;
  /** search beam ef (default max(k + 40, 2k)) */
  ef?: number;
  /** random seed of the level generator (default 100) */
  seed?: number;
  /** number of shards built and searched in parallel worker threads (default 1: one index, this thread) */
  shards?: number;
  /** called with the completed fraction */
  onProgress?: (fraction: number) => void;
}

/** The subset of hnswlib-wasm's HierarchicalNSW used here. */
interface HnswIndex {
  initIndex(maxElements: number, m: number, efConstruction: number, randomSeed: number): void;
  addPoint(point: Float32Array, label: number, replaceDeleted: boolean): void;
  setEfSearch(ef: number): void;
  searchKnn(query: Float32Array, k: number, filter: undefined): { distances: number[]; neighbors: number[] };
  delete?(): void;
}
interface HnswLib {
  HierarchicalNSW: new (space: "ip" | "l2" | "cosine", dim: number, autoSaveFilename: string) => HnswIndex;
}

let libPromise: Promise<HnswLib> | null = null;

/**
 * Load hnswlib-wasm. Its emscripten loader only runs where `window` exists, and its package entry point would set
 * up an IndexedDB file system we don't need, so the factory module in `dist/` is imported directly.
 */
export function loadHnswlib(): Promise<HnswLib> {
  if (libPromise) return libPromise;
  libPromise = (async () => {
    const g = globalThis as unknown as { window?: unknown };
    if (g.window === undefined) g.window = globalThis;
    try {
      const mod = await import("hnswlib-wasm/dist/hnswlib-317962d7.js");
      const factory = (mod as { default: () => Promise<HnswLib> }).default;
      return await factory();
    } catch (err) {
      throw new LtcError(`cannot load hnswlib-wasm (${(err as Error).message})`);
    }
  })();
  libPromise.catch(() => libPromise = null);
  return libPromise;
}

/** Resolved HNSW parameters. */
export interface HnswParams {
  m: number;
  efConstruction: number;
  ef: number;
  seed: number;
}

/** Fill in defaults and validate. */
export function hnswParams(options: HnswOptions): HnswParams {
  const p = {
    m: options.m ?? 16,
    efConstruction: options.efConstruction ?? 100,
    ef: options.ef ?? Math.max(options.k + 40, 2 * options.k),
    seed: options.seed ?? 100,
  };
  for (const [name, v] of Object.entries(p)) {
    if (!(Number.isInteger(v) && v > 0)) throw new LtcError(`hnsw: ${name} must be a positive integer, got ${v}`);
  }
  if (p.ef < options.k) throw new LtcError(`hnsw: ef (${p.ef}) must be at least k (${options.k})`);
  return p;
}

/**
 * Build an index over rows [r0, r1) of `data` (ids r0..r1−1) and search every query row; returns per query row the
 * k (or fewer) best as parallel (similarity, id) arrays of width k, −1 ids for padding.
 */
export async function hnswShard(
  data: Float32Array,
  dim: number,
  range: { r0: number; r1: number; queries: Float32Array; nq: number },
  k: number,
  params: HnswParams & { onProgress?: (fraction: number) => void },
): Promise<{ sims: Float32Array; ids: Int32Array; buildSeconds: number; querySeconds: number }> {
  const lib = await loadHnswlib();
  const t0 = performance.now();
  const { r0, r1, queries, nq } = range;
  const index = new lib.HierarchicalNSW("ip", dim, "");
  const rows = r1 - r0;
  index.initIndex(rows, params.m, params.efConstruction, params.seed);
  const total = rows + nq;
  for (let i = r0; i < r1; i++) {
    index.addPoint(data.subarray(i * dim, (i + 1) * dim), i, false);
    if ((i - r0) % 1024 === 1023) params.onProgress?.((i - r0 + 1) / total);
  }
  index.setEfSearch(params.ef);
  const t1 = performance.now();
  const kk = Math.min(k, rows);
  const sims = new Float32Array(nq * k).fill(-Infinity);
  const ids = new Int32Array(nq * k).fill(-1);
  for (let q = 0; q < nq; q++) {
    const res = index.searchKnn(queries.subarray(q * dim, (q + 1) * dim), kk, undefined);
    const len = Math.min(k, res.neighbors.length);
    for (let t = 0; t < len; t++) {
      ids[q * k + t] = res.neighbors[t]!;
      sims[q * k + t] = Math.fround(1 - res.distances[t]!);
    }
    if (q % 1024 === 1023) params.onProgress?.((rows + q + 1) / total);
  }
  index.delete?.();
  return { sims, ids, buildSeconds: (t1 - t0) / 1000, querySeconds: (performance.now() - t1) / 1000 };
}

/** HNSW kNN of every query row (default: the base rows) among the base rows. */
export async function hnswKnn(
  base: Features,
  options: HnswOptions & { queries?: Features },
): Promise<
  {
    nbrs: Int32Array;
    dists: Float32Array;
    params: HnswParams;
    shards: number;
    buildSeconds: number;
    querySeconds: number;
  }
> {
  const { k } = options;
  const params = hnswParams(options);
  const queries = options.queries ?? base;
  const shards = Math.max(1, Math.min(options.shards ?? 1, Math.floor(base.n / k)));
  const top = new RowTopK(queries.n, k);
  let buildSeconds = 0, querySeconds = 0;
  if (shards === 1) {
    const r = await hnswShard(base.data, base.dim, { r0: 0, r1: base.n, queries: queries.data, nq: queries.n }, k, {
      ...params,
      onProgress: options.onProgress,
    });
    top.offerRows(0, queries.n, k, r.sims, r.ids);
    buildSeconds = r.buildSeconds;
    querySeconds = r.querySeconds;
  } else {
    const fractions = new Array<number>(shards).fill(0);
    const sharedBase = shared(base.data.subarray(0, base.n * base.dim));
    const sharedQueries = queries === base ? sharedBase : shared(queries.data.subarray(0, queries.n * queries.dim));
    const data = { base: sharedBase, queries: sharedQueries, dim: base.dim, nq: queries.n };
    const results = await Promise.all(
      Array.from({ length: shards }, (_, s) => {
        const r0 = Math.floor((s * base.n) / shards), r1 = Math.floor(((s + 1) * base.n) / shards);
        return runShardWorker(data, { r0, r1, k, params }, (f) => {
          fractions[s] = f;
          options.onProgress?.(fractions.reduce((a, b) => a + b, 0) / shards);
        });
      }),
    );
    for (const r of results) {
      top.offerRows(0, queries.n, k, r.sims, r.ids);
      buildSeconds = Math.max(buildSeconds, r.buildSeconds);
      querySeconds = Math.max(querySeconds, r.querySeconds);
    }
  }
  const { nbrs, dists } = top.finishInPlace();
  return { nbrs, dists, params, shards, buildSeconds, querySeconds };
}

/** Label of an HNSW run, recorded in sidecars: `cpu (hnswlib-wasm)`, or with the worker shards that ran. */
export function hnswLabel(shards: number): string {
  return backendLabel({ kind: "cpu" }, `hnswlib-wasm${shards > 1 ? `, ${shards} worker shards` : ""}`);
}

const HNSW_PARAM_NAMES = ["m", "efConstruction", "ef", "seed", "shards"];

/** The registry entry: parameters `m`, `efConstruction`, `ef`, `seed`, `shards` (see {@linkcode HnswOptions}). */
export const hnswBackend: IndexBackendEntry = {
  name: "hnsw",
  open: (params) => {
    const unknown = Object.keys(params).filter((name) => !HNSW_PARAM_NAMES.includes(name));
    if (unknown.length) return Promise.reject(new LtcError(`hnsw: unknown parameter ${unknown.join(", ")}`));
    return Promise.resolve({
      label: hnswLabel(params.shards ?? 1),
      knn: async ({ base, queries, k, onProgress }) => {
        const r = await hnswKnn(base, { ...params, k, queries, onProgress });
        return { ...r, label: hnswLabel(r.shards), params: { ...r.params, shards: r.shards } };
      },
    });
  },
};

/** Copy rows into shared memory so every worker reads them without its own copy. */
function shared(data: Float32Array): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(data.byteLength));
  out.set(data);
  return out;
}

/** Run one shard in a worker thread (hnsw_worker.ts). */
function runShardWorker(
  data: { base: Float32Array; queries: Float32Array; dim: number; nq: number },
  job: { r0: number; r1: number; k: number; params: HnswParams },
  onProgress: (fraction: number) => void,
): Promise<{ sims: Float32Array; ids: Int32Array; buildSeconds: number; querySeconds: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./hnsw_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (ev: MessageEvent) => {
      const msg = ev.data as
        | { kind: "progress"; fraction: number }
        | { kind: "done"; sims: Float32Array; ids: Int32Array; buildSeconds: number; querySeconds: number }
        | { kind: "error"; message: string };
      if (msg.kind === "progress") onProgress(msg.fraction);
      else {
        worker.terminate();
        if (msg.kind === "done") resolve(msg);
        else reject(new LtcError(`hnsw worker: ${msg.message}`));
      }
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      worker.terminate();
      reject(new LtcError(`hnsw worker: ${ev.message}`));
    };
    worker.postMessage({ ...data, ...job });
  });
}
