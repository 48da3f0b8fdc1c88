/**
 * The CPU twin of the WGSL kNN kernels: onnxruntime runs small graphs built in code (see onnx_proto.ts) over query
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
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { encodeModel, OnnxType } from "./onnx_proto.ts";
import { PairBuilder, type PairList, sortPairs } from "./pairs.ts";
import { RowTopK } from "./topk.ts";

/** The slice of the onnxruntime JS API used here (shared by onnxruntime-node and onnxruntime-web). */
interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
interface OrtApi {
  Tensor: new (type: "float32" | "int32" | "int64", data: Float32Array | Int32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  env?: { wasm?: { numThreads?: number } };
}

/** A loaded onnxruntime build and its label (`onnxruntime-node` or `onnxruntime-web (wasm)`). */
export interface OrtRuntime {
  ort: OrtApi;
  label: string;
  /** session options for this build */
  sessionOptions: Record<string, unknown>;
}

let runtime: Promise<OrtRuntime> | null = null;

/** Number of CPU threads to give onnxruntime. */
function cpuThreads(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/**
 * Load onnxruntime once per process: native `onnxruntime-node` first, `onnxruntime-web` (wasm) when the addon
 * cannot load. `LTC_ORT=web` forces the wasm build (used by tests to exercise the fallback).
 */
export function loadOrt(): Promise<OrtRuntime> {
  if (runtime) return runtime;
  runtime = (async () => {
    const errors: string[] = [];
    if (Deno.env.get("LTC_ORT") !== "web") {
      try {
        const mod = await import("onnxruntime-node");
        const ort = (mod.default ?? mod) as unknown as OrtApi;
        return {
          ort,
          label: "onnxruntime-node",
          sessionOptions: {
            intraOpNumThreads: cpuThreads(),
            interOpNumThreads: 1,
            graphOptimizationLevel: "all",
            executionMode: "sequential",
            logSeverityLevel: 3,
            ...(Deno.env.get("LTC_ORT_SPIN") === "0"
              ? { extra: { session: { intra_op: { allow_spinning: "0" } } } }
              : {}),
          },
        };
      } catch (err) {
        errors.push(`onnxruntime-node: ${(err as Error).message}`);
      }
    }
    try {
      const mod = await import("onnxruntime-web");
      const ort = (mod.default ?? mod) as unknown as OrtApi;
      if (ort.env?.wasm) ort.env.wasm.numThreads = cpuThreads();
      return {
        ort,
        label: "onnxruntime-web (wasm)",
        sessionOptions: { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 },
      };
    } catch (err) {
      errors.push(`onnxruntime-web: ${(err as Error).message}`);
    }
    throw new LtcError(`cannot load onnxruntime (${errors.join("; ")})`);
  })();
  runtime.catch(() => runtime = null);
  return runtime;
}

const F32 = OnnxType.FLOAT, I32 = OnnxType.INT32, I64 = OnnxType.INT64;

function int64s(name: string, values: number[]) {
  return { name, type: I64, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) };
}

/**
 * Graph for one base chunk: `V, I = TopK_k(Q · chunkᵀ)`, ids offset by the chunk's first row and cast to int32.
 * The chunk is a constant so onnxruntime pre-packs it for its SGEMM.
 */
function chunkTopKModel(chunk: Float32Array, rows: number, dim: number, k: number, firstId: number): Uint8Array {
  return encodeModel({
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
      int64s("K", [k]),
      { name: "first", type: I32, dims: [1], data: Int32Array.of(firstId) },
    ],
  });
}

/** Graph for similarity pairs: positions (int32, row-major order) and values of `Q · Xᵀ ≥ minSim`. */
function pairsModel(dim: number): Uint8Array {
  return encodeModel({
    nodes: [
      { op: "Gemm", inputs: ["Q", "X"], outputs: ["S"], attrs: { transB: 1 } },
      { op: "GreaterOrEqual", inputs: ["S", "minSim"], outputs: ["mask"] },
      { op: "NonZero", inputs: ["mask"], outputs: ["nz"] },
      { op: "Transpose", inputs: ["nz"], outputs: ["pos64"], attrs: { perm: { ints: [1, 0] } } },
      { op: "GatherND", inputs: ["S", "pos64"], outputs: ["V"] },
      { op: "Cast", inputs: ["pos64"], outputs: ["P"], attrs: { to: I32 } },
    ],
    inputs: [
      { name: "Q", type: F32, dims: ["b", dim] },
      { name: "X", type: F32, dims: ["c", dim] },
      { name: "minSim", type: F32, dims: [] },
    ],
    outputs: [{ name: "P", type: I32, dims: ["m", 2] }, { name: "V", type: F32, dims: ["m"] }],
  });
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
    const session = await rt.ort.InferenceSession.create(model, rt.sessionOptions);
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
  const session = await ort.InferenceSession.create(pairsModel(dim), rt.sessionOptions);
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
