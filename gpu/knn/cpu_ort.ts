/**
 * The CPU twin of the WGSL kNN kernels: onnxruntime runs small graphs built in code (see ../onnx.ts) over query
 * blocks, so the inner products go through an optimised SGEMM (MLAS in `onnxruntime-node`; the wasm SIMD build of
 * `onnxruntime-web` where the native addon cannot load) and the per-row selection through onnxruntime's TopK.
 *
 * Exact kNN: the base rows are cut into column chunks; each chunk is a session whose graph holds the chunk as a
 * constant (so MLAS pre-packs it once) and computes, for a query block Q, `TopK_k(Q · chunkᵀ)` with global ids.
 * Only one chunk session lives at a time; every query row keeps a running top-k ({@linkcode RowTopK}) merged across
 * chunks in TypeScript. ONNX TopK keeps the lower index among equal values (its output order is not needed:
 * `sorted = 0` skips the per-row sort), and the merge orders by (similarity desc, id asc), so the result equals a
 * full sort with that order. Peak extra memory is one chunk, its packed copy and one query-block × chunk similarity
 * tile.
 *
 * Cost (onnxruntime's profiler, 256 × 65536 × 256 blocks, quiet machine): SGEMM ≈ 23 ms (≈ 370 GFLOP/s), TopK
 * ≈ 10 ms — a scalar scan (≈ 0.36 ns per element even for k = 1) plus ≈ k·ln(n/k) heap insertions per row and call.
 * Cheaper-looking graphs (group maxima by ReduceMax, then TopK on groups and on their members) pay those insertions
 * twice and measured slower. So chunks are large (131072 rows: fewer TopK calls per row; each chunk session also
 * costs ≈ 1 s to build and pre-pack) and query blocks 256 rows (the SGEMM's best M here).
 *
 * Similarity pairs: one session computes `S = Q · Xᵀ` for a query block against a column block and returns the
 * positions and values of the entries ≥ minSim (GreaterOrEqual → NonZero → GatherND).
 * @module
 */
import type { Features } from "../../shared/features.ts";
import { backendLabel } from "../device.ts";
import { int64Initializer, type OnnxModel, OnnxType } from "../onnx.ts";
import { createSession, loadOrt, tryLoadOrt } from "../ort.ts";
import type { ExactBackendEntry } from "./backend.ts";
import { PairBuilder, type PairList, sortPairs } from "./pairs.ts";
import { RowTopK } from "./topk.ts";

const F32 = OnnxType.FLOAT, I32 = OnnxType.INT32;

/**
 * Graph for one base chunk: `V, I = TopK_k(Q · chunkᵀ)`, ids offset by the chunk's first row and cast to int32.
 * The chunk is a constant so onnxruntime pre-packs it for its SGEMM.
 */
function chunkTopKModel(chunk: Float32Array, rows: number, dim: number, k: number, firstId: number): OnnxModel {
  return {
    nodes: [
      { op: "Gemm", inputs: ["Q", "X"], outputs: ["S"], attrs: { transB: 1 } },
      { op: "TopK", inputs: ["S", "K"], outputs: ["V", "I64"], attrs: { axis: -1, largest: 1, sorted: 0 } },
      { op: "Cast", inputs: ["I64"], outputs: ["Ilocal"], attrs: { to: I32 } },
      { op: "Add", inputs: ["Ilocal", "first"], outputs: ["I"] },
    ],
    inputs: [{ name: "Q", type: F32, dims: ["b", dim] }],
    outputs: [{ name: "V", type: F32, dims: ["b", k] }, { name: "I", type: I32, dims: ["b", k] }],
    initializers: [
      { name: "X", type: F32, dims: [rows, dim], data: chunk },
      int64Initializer("K", [k]),
      { name: "first", type: I32, dims: [1], data: Int32Array.of(firstId) },
    ],
  };
}

/** Graph for similarity pairs: positions (int32, row-major order) and values of `Q · Xᵀ ≥ minSim`. */
function pairsModel(dim: number): OnnxModel {
  return {
    nodes: [
      { op: "Gemm", inputs: ["Q", "X"], outputs: ["S"], attrs: { transB: 1 } },
      { op: "GreaterOrEqual", inputs: ["S", "minSim"], outputs: ["mask"] },
      { op: "NonZero", inputs: ["mask"], outputs: ["nz"] },
      { op: "Transpose", inputs: ["nz"], outputs: ["pos64"], attrs: { perm: [1, 0] } },
      { op: "GatherND", inputs: ["S", "pos64"], outputs: ["V"] },
      { op: "Cast", inputs: ["pos64"], outputs: ["P"], attrs: { to: I32 } },
    ],
    inputs: [
      { name: "Q", type: F32, dims: ["b", dim] },
      { name: "X", type: F32, dims: ["c", dim] },
      { name: "minSim", type: F32, dims: [] },
    ],
    outputs: [{ name: "P", type: I32, dims: ["m", 2] }, { name: "V", type: F32, dims: ["m"] }],
  };
}

/** Tuning of the blocked loops. */
export interface OrtBlocking {
  /** query rows per run (the GEMM's M) */
  queryBlock?: number;
  /** base rows per chunk session (the GEMM's N) */
  chunkRows?: number;
}

const DEFAULT_QUERY_BLOCK = 256;
const DEFAULT_CHUNK_ROWS = 131072;

/** Split `n` rows into `parts` near-equal contiguous ranges. */
function splitRange(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) out.push([Math.floor((p * n) / parts), Math.floor(((p + 1) * n) / parts)]);
  return out;
}

/** Exact top-k by inner product on onnxruntime. */
export async function knnOrt(
  base: Features,
  queries: Features,
  k: number,
  options: OrtBlocking & { onProgress?: (fraction: number) => void } = {},
): Promise<{ nbrs: Int32Array; dists: Float32Array; label: string }> {
  const rt = await loadOrt();
  const { ort } = rt;
  const dim = base.dim;
  const qb = options.queryBlock ?? DEFAULT_QUERY_BLOCK;
  // chunks never smaller than k, so every chunk can return k candidates (except when the whole base is < k)
  const chunkCount = Math.max(
    1,
    Math.min(Math.ceil(base.n / (options.chunkRows ?? DEFAULT_CHUNK_ROWS)), Math.floor(base.n / k)),
  );
  const chunks = splitRange(base.n, chunkCount);
  const top = new RowTopK(queries.n, k);
  const totalWork = chunks.length * queries.n;
  let done = 0;
  for (const [c0, c1] of chunks) {
    const rows = c1 - c0;
    const kc = Math.min(k, rows);
    const model = chunkTopKModel(base.data.subarray(c0 * dim, c1 * dim), rows, dim, kc, c0);
    const session = await createSession(rt, model);
    try {
      for (let q0 = 0; q0 < queries.n; q0 += qb) {
        const q1 = Math.min(queries.n, q0 + qb);
        const q = new ort.Tensor("float32", queries.data.subarray(q0 * dim, q1 * dim), [q1 - q0, dim]);
        const out = await session.run({ Q: q });
        top.offerRows(q0, q1 - q0, kc, out.V!.data as Float32Array, out.I!.data as Int32Array);
        done += q1 - q0;
        options.onProgress?.(done / totalWork);
      }
    } finally {
      await session.release?.();
    }
  }
  const { nbrs, dists } = top.finishInPlace();
  return { nbrs, dists, label: rt.label };
}

/** Every pair i < j with inner product ≥ minSim on onnxruntime, ordered by ascending i then j. */
export async function pairsOrt(
  features: Features,
  minSim: number,
  options: OrtBlocking & { onProgress?: (fraction: number) => void } = {},
): Promise<PairList & { label: string }> {
  const rt = await loadOrt();
  const { ort } = rt;
  const { n, dim } = features;
  const qb = options.queryBlock ?? DEFAULT_QUERY_BLOCK;
  const cb = options.chunkRows ?? 8192;
  const session = await createSession(rt, pairsModel(dim));
  const minSimT = new ort.Tensor("float32", Float32Array.of(minSim), []);
  const out = new PairBuilder();
  const totalWork = (n * (n + 1)) / 2;
  let done = 0;
  try {
    for (let q0 = 0; q0 < n; q0 += qb) {
      const q1 = Math.min(n, q0 + qb);
      const q = new ort.Tensor("float32", features.data.subarray(q0 * dim, q1 * dim), [q1 - q0, dim]);
      // hits of this query block, column blocks in ascending order; ordered by row (then column) below
      const hits = new PairBuilder();
      for (let c0 = q0; c0 < n; c0 += cb) {
        const c1 = Math.min(n, c0 + cb);
        const x = new ort.Tensor("float32", features.data.subarray(c0 * dim, c1 * dim), [c1 - c0, dim]);
        const res = await session.run({ Q: q, X: x, minSim: minSimT });
        const pos = res.P!.data as Int32Array;
        const val = res.V!.data as Float32Array;
        for (let t = 0; t < val.length; t++) {
          const i = q0 + pos[2 * t]!, j = c0 + pos[2 * t + 1]!;
          if (j > i) hits.push(i, j, val[t]!);
        }
        done += (q1 - q0) * (c1 - c0);
        options.onProgress?.(Math.min(1, done / totalWork));
      }
      out.pushAll(sortPairs(hits.finish(), q1 - q0, q0));
    }
  } finally {
    await session.release?.();
  }
  return { ...out.finish(), label: rt.label };
}

/** The registry entry: the onnxruntime graphs, on whichever build loads here (none: not available). */
export const onnxruntimeBackend: ExactBackendEntry = {
  name: "onnxruntime",
  device: "cpu",
  open: async () => {
    const rt = await tryLoadOrt();
    return rt && {
      label: backendLabel({ kind: "cpu" }, rt.label),
      knn: ({ base, queries, k, onProgress }) => knnOrt(base, queries, k, { onProgress }),
      pairs: (features, { minSim, onProgress }) => pairsOrt(features, minSim, { onProgress }),
    };
  },
};
