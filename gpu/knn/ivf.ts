/**
 * Approximate kNN with an inverted-file index (IVF: faiss `IndexIVFFlat` with inner product), on onnxruntime.
 *
 * Build: `nlist` coarse centroids by spherical k-means (Lloyd: assign by largest inner product, centroid = the
 * normalised mean of its rows) on a seeded random sample of `trainPerList · nlist` rows, from a two-level start
 * ({@linkcode twoLevelStart}: `coarse` ≈ √nlist clusters, each split into lists of its own), then `iterations` Lloyd
 * iterations over all lists; every base row then joins the list of its most similar centroid. Search: every query ranks
 * the centroids by inner product and scans the lists of its `nprobe` best. The scan is organised by list so that
 * onnxruntime does matrix products: for each list, the queries probing it are gathered into blocks and multiplied by
 * the list's rows (one SGEMM per block), and every query row keeps a running top-k ({@linkcode RowTopK}: similarity
 * desc, ties by ascending id) merged across its lists. Every candidate's similarity is a float32 SGEMM inner product,
 * as in the exact onnxruntime search, so with `nprobe = nlist` the rows equal exact search's, ties included — up to the
 * last bit of a similarity: onnxruntime's SGEMM splits long sums (256 dimensions) differently for narrow products and
 * takes a GEMV path for one-row blocks, so values can depend on the block shapes (below 128 dimensions they match bit
 * for bit in tests/ivf_test.ts).
 *
 * The index (coarse centroids and every base row's list) is built once ({@linkcode buildIvfIndex}) and searched in
 * chunks of query rows at absolute multiples of `chunkRows` ({@linkcode defaultChunkRows}): each chunk ranks its
 * probes and scans its lists on its own, so every block shape — and with it every last bit — of a row's search
 * depends only on the index and the row's chunk. A shard of whole chunks (cluster/knn_shard.ts) therefore computes
 * exactly the unsharded run's rows. Two passes per chunk keep TypeScript's share small: first every query's 2
 * nearest lists (they hold most of its neighbours, so its top-k threshold is near its final value afterwards), then
 * the other probes with the queries' thresholds fed to the graph, which returns only the entries at or above them
 * (in blocks of {@linkcode scanBlockRows} query rows, which bound its index arrays; the rows do not depend on them).
 *
 * With `screenBits` 8 (the default; gpu/knn/int8.ts) the second pass and the probe ranking use 8-bit products
 * (onnxruntime's u8 × s8 MatMulInteger, about twice the float32 SGEMM's rate here). Second pass: base and query rows
 * rounded to int8 at one scale, the base stored list by list transposed (a product takes its list as a view), the
 * integer products screen the query rows whose best pair in the list comes within a margin (8 standard deviations
 * of the rounding error) of the row's threshold, and the graph multiplies those rows (~6 % at scale-9 geometry) by
 * the list's float32 rows in one SGEMM. On the same probes the rows equal the float32 scan's but for the last bit of
 * a similarity (an SGEMM of another shape) and so the order of near-ties (tests/int8_test.ts). Probe ranking: rows
 * and centroids rounded, TopK over the integer products — centroids within the rounding of each other may swap
 * ranks, which moves a row's list or last probes now and then (recall unchanged in tests and benchmarks). On 1M rows
 * of the scale-9 features at scale-9 list geometry (lists of ~190 rows; float32 and 8-bit alternating in one
 * process, figures in issue #13's note) the second pass took ~0.6 and the ranking ~0.65 of their float32 times
 * (commit 26ea8a2, when the screened pairs were rescored one by one). `screenBits` 32 keeps float32 products
 * throughout (and with `nprobe = nlist` exact search's rows, bit for bit below 128 dimensions).
 *
 * Centroid ranking: one Gemm → TopK graph (TopK keeps the lower index among equal values), used for the k-means
 * assignments, and (float32 or 8-bit, {@linkcode probeRanker}) for the base rows' lists and the queries' probes.
 * When the queries are the base rows, a row's own list is put first among its probes, so a row always finds itself
 * (as faiss's IVF does). The base rows' lists come from ranking them chunk by chunk as a self search ranks its
 * probes (a row's list is its first probe), so an unsharded self search reuses those ranks instead of computing every
 * row's similarities to all centroids twice.
 *
 * Defaults (nlist = 12·√N, nprobe = nlist / 48 but at least 32, 16 training rows per list, coarse = √nlist, 2 flat
 * iterations after the start) were chosen on the synthetic benchmark (stages/synth.ts) for recall@80 ≥ 0.99 against
 * exact search at 98K and 584K rows (bench/ivf.ts; 584K: nlist 9170, nprobe 192, recall 0.9917, 2.1 % of all pairs
 * scanned). Its identities have
 * several modes (pose-like directions shared by everyone), and a row's last neighbours are often rows of other
 * identities in the same mode: lists fine enough to separate modes (≈ 64 rows at 584K) let the ranking find them,
 * where coarse lists (4·√N = 3057 lists at 584K) need 15 % of all lists (16 % of all pairs) for the same recall.
 * Beyond the sizes measured the needed nprobe is not known: the kNN stage's sidecar records recall on a sample.
 *
 * Lists: a centroid left without training rows takes the training row least similar to its centroid (the worst
 * served row), so training ends with `nlist` centroids; a list can still end up empty when every base row prefers
 * another centroid — a query that probes it scans nothing there (documented fallback, counted in
 * {@linkcode IvfStats}). A query whose probed lists hold fewer than k rows is padded with id −1, distance 1.
 *
 * Deterministic: the sample and the initial centroids come from the seeded {@linkcode Rng}; onnxruntime's SGEMM
 * and TopK are deterministic for a given build and thread count (as for exact search, another CPU kind can round
 * the last bit of a similarity differently).
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { Rng } from "../../shared/random.ts";
import { backendLabel } from "../device.ts";
import { int64Initializer, type OnnxModel, OnnxType } from "../onnx.ts";
import { createSession, loadOrt, type OrtRuntime, type OrtSession, type OrtTensor } from "../ort.ts";
import type { IndexBackendEntry } from "./backend.ts";
import { quantizeRows, quantScale, screenThreshold } from "./int8.ts";
import { RowTopK } from "./topk.ts";

const F32 = OnnxType.FLOAT, I32 = OnnxType.INT32;

/**
 * Bits of the later scan passes' and the probe ranking's products: 8 = integer products (in the scan they screen the
 * query rows, which are then multiplied in float32), 32 = float32 products throughout.
 */
export type IvfScreenBits = 8 | 32;

/** IVF parameters (all but k optional: defaults from {@linkcode ivfParams}). */
export interface IvfOptions {
  /** neighbours per query row (self included) */
  k: number;
  /** number of lists (coarse centroids); default {@linkcode defaultNlist} of the base row count */
  nlist?: number;
  /** lists scanned per query; default {@linkcode defaultNprobe} of nlist */
  nprobe?: number;
  /** training sample rows per centroid (default 16; the sample is all rows when that exceeds them) */
  trainPerList?: number;
  /** Lloyd iterations over all lists after the two-level start (default 2) */
  iterations?: number;
  /**
   * clusters of the two-level start (default round(√nlist)); 1 = k-means of all lists from nlist sample rows (5
   * iterations), as before the two-level start
   */
  coarse?: number;
  /** seed of the training sample and initial centroids (default 100) */
  seed?: number;
  /** called with the completed fraction */
  onProgress?: (fraction: number) => void;
  /**
   * query rows per search chunk (default {@linkcode defaultChunkRows}); rows change with it in the last bit of a
   * similarity only, and IVF shards are whole chunks
   */
  chunkRows?: number;
  /**
   * bits of the second pass's and the probe ranking's products (default 8): 8-bit integer products screen the query
   * rows that can still reach their threshold in a list (within 8 standard deviations of the rounding error,
   * gpu/knn/int8.ts) and those rows are multiplied in float32, at about twice the float32 rate; 32: float32 SGEMM
   * products throughout
   */
  screenBits?: number;
}

/** Resolved IVF parameters, as recorded in sidecars. */
export interface IvfParams {
  nlist: number;
  nprobe: number;
  chunkRows: number;
  trainPerList: number;
  iterations: number;
  coarse: number;
  seed: number;
  screenBits: IvfScreenBits;
}

/** What one IVF search did, beyond its rows. */
export interface IvfStats {
  /** rows of the k-means training sample */
  trainRows: number;
  /** lists without any base row */
  emptyLists: number;
  /** rows of the largest list */
  largestList: number;
  /** query–row similarities computed, as a share of the exact search's queries × base rows */
  scannedFraction: number;
}

/** Default lists scanned per query: nlist / 48 rounded up, at least 32, at most nlist (see the module header). */
export function defaultNprobe(nlist: number): number {
  return Math.min(nlist, Math.max(32, Math.ceil(nlist / 48)));
}

/** Default number of lists for `n` base rows: 12·√n (rounded), at least 1 and at most n. */
export function defaultNlist(n: number): number {
  return Math.max(1, Math.min(n, Math.round(12 * Math.sqrt(n))));
}

/**
 * Fill in defaults for `n` base rows and validate. Explicit bad values are errors (`nlist > n`, `nprobe > nlist`,
 * non-positive or non-integer values); the defaults never are.
 */
export function ivfParams(n: number, options: Omit<IvfOptions, "k" | "onProgress">): IvfParams {
  const check = (name: string, v: number, min: number) => {
    if (!(Number.isInteger(v) && v >= min)) {
      throw new LtcError(`ivf: ${name} must be an integer ≥ ${min}, got ${v}`);
    }
  };
  if (!(Number.isInteger(n) && n >= 1)) throw new LtcError(`ivf: the base has no rows`);
  const nlist = options.nlist ?? defaultNlist(n);
  check("nlist", nlist, 1);
  if (nlist > n) throw new LtcError(`ivf: nlist (${nlist}) exceeds the number of base rows (${n})`);
  const nprobe = options.nprobe ?? defaultNprobe(nlist);
  check("nprobe", nprobe, 1);
  if (nprobe > nlist) throw new LtcError(`ivf: nprobe (${nprobe}) exceeds nlist (${nlist})`);
  const p = {
    nlist,
    nprobe,
    chunkRows: options.chunkRows ?? defaultChunkRows(nlist, nprobe),
    trainPerList: options.trainPerList ?? 16,
    iterations: options.iterations ?? 2,
    coarse: options.coarse ?? Math.max(1, Math.round(Math.sqrt(nlist))),
    seed: options.seed ?? 100,
    screenBits: (options.screenBits ?? 8) as IvfScreenBits,
  };
  check("chunkRows", p.chunkRows, 1);
  check("trainPerList", p.trainPerList, 1);
  check("iterations", p.iterations, 0);
  check("coarse", p.coarse, 1);
  if (p.coarse > nlist) throw new LtcError(`ivf: coarse (${p.coarse}) exceeds nlist (${nlist})`);
  check("seed", p.seed, 0);
  if (p.screenBits !== 8 && p.screenBits !== 32) {
    throw new LtcError(`ivf: screenBits must be 8 or 32, got ${p.screenBits}`);
  }
  return p;
}

/** Entries of one similarity block held inside onnxruntime (16 MiB of float32). */
const BLOCK_ENTRIES = 1 << 22;
/** Most query rows of one list product (the SGEMM's M). */
const MAX_QUERY_BLOCK = 8192;
/** Most rows of one centroid-ranking run. */
const MAX_RANK_BLOCK = 2048;
/**
 * Entries of one centroid-ranking block (64 MiB of float32): the SGEMM's M is the block's rows, and below ~500 rows
 * its rate falls (scale-9 geometry, 27,474 centroids: 86 GFLOP/s at 152 rows, 107 at 512 and 2048).
 */
const RANK_BLOCK_ENTRIES = 1 << 24;

/** Rows of one centroid-ranking run against `nlist` centroids (float32 and 8-bit alike). */
function rankBlockRows(nlist: number): number {
  return Math.max(1, Math.min(MAX_RANK_BLOCK, Math.floor(RANK_BLOCK_ENTRIES / nlist)));
}

/** Graph ranking centroids: `V, I = TopK_K(A · Cᵀ)`, largest first, ids as int32. */
function rankModel(dim: number): OnnxModel {
  return {
    nodes: [
      { op: "Gemm", inputs: ["A", "C"], outputs: ["S"], attrs: { transB: 1 } },
      { op: "TopK", inputs: ["S", "K"], outputs: ["V", "I64"], attrs: { axis: -1, largest: 1, sorted: 1 } },
      { op: "Cast", inputs: ["I64"], outputs: ["I"], attrs: { to: I32 } },
    ],
    inputs: [
      { name: "A", type: F32, dims: ["m", dim] },
      { name: "C", type: F32, dims: ["c", dim] },
      { name: "K", type: OnnxType.INT64, dims: [1] },
    ],
    outputs: [{ name: "V", type: F32, dims: ["m", "p"] }, { name: "I", type: I32, dims: ["m", "p"] }],
  };
}

/**
 * Graph ranking centroids with 8-bit products: `I = TopK_K((A8 − 128) · CT)` for uint8 rows offset by 128 and the
 * int8 centroids transposed (dim × c); ids as int32, largest first, ties to the lower id.
 */
function rankInt8Model(dim: number): OnnxModel {
  return {
    nodes: [
      { op: "MatMulInteger", inputs: ["A8", "CT", "zero"], outputs: ["S"] },
      { op: "TopK", inputs: ["S", "K"], outputs: ["V", "I64"], attrs: { axis: -1, largest: 1, sorted: 1 } },
      { op: "Cast", inputs: ["I64"], outputs: ["I"], attrs: { to: I32 } },
    ],
    inputs: [
      { name: "A8", type: OnnxType.UINT8, dims: ["m", dim] },
      { name: "CT", type: OnnxType.INT8, dims: [dim, "c"] },
      { name: "K", type: OnnxType.INT64, dims: [1] },
    ],
    initializers: [{ name: "zero", type: OnnxType.UINT8, dims: [], data: Uint8Array.of(128) }],
    outputs: [{ name: "I", type: I32, dims: ["m", "p"] }],
  };
}

/**
 * The query block of a list product, gathered inside onnxruntime: `Q = D[I]` for all query rows D and the block's
 * row ids I (a TypeScript copy loop cost as much as the SGEMM; onnxruntime's Gather almost nothing).
 */
const GATHER_QUERIES = { op: "Gather", inputs: ["D", "I"], outputs: ["Q"], attrs: { axis: 0 } };

/**
 * The list's rows, gathered inside onnxruntime too: `X = B[J]` for all base rows B and the list's row ids J (the
 * same values as a copy of the base rows in list order, without its N × dim floats beside the base).
 */
const GATHER_LIST = { op: "Gather", inputs: ["B", "J"], outputs: ["X"], attrs: { axis: 0 } };

/** The product of a query block and its list's rows. */
const LIST_PRODUCT = { op: "Gemm", inputs: ["Q", "X"], outputs: ["S"], attrs: { transB: 1 } };

/** Inputs of both list-product graphs: all query rows, a block's row ids, all base rows, the list's row ids. */
function productInputs(dim: number) {
  return [
    { name: "D", type: F32, dims: ["n", dim] },
    { name: "I", type: I32, dims: ["b"] },
    { name: "B", type: F32, dims: ["N", dim] },
    { name: "J", type: I32, dims: ["c"] },
  ];
}

/** Graph of one list product: `S = D[I] · B[J]ᵀ`. */
function productModel(dim: number): OnnxModel {
  return {
    nodes: [GATHER_QUERIES, GATHER_LIST, LIST_PRODUCT],
    inputs: productInputs(dim),
    outputs: [{ name: "S", type: F32, dims: ["b", "c"] }],
  };
}

/**
 * Graph of one list product keeping only the entries at or above their row's threshold: `S = D[I] · B[J]ᵀ`,
 * positions P (2 × count, int32, row-major order) of `S[i, j] ≥ T[i]` and their values V.
 */
function productAboveModel(dim: number): OnnxModel {
  return {
    nodes: [
      GATHER_QUERIES,
      GATHER_LIST,
      LIST_PRODUCT,
      { op: "GreaterOrEqual", inputs: ["S", "T"], outputs: ["keep"] },
      { op: "NonZero", inputs: ["keep"], outputs: ["pos64"] },
      { op: "Transpose", inputs: ["pos64"], outputs: ["at"], attrs: { perm: [1, 0] } },
      { op: "GatherND", inputs: ["S", "at"], outputs: ["V"] },
      { op: "Cast", inputs: ["pos64"], outputs: ["P"], attrs: { to: I32 } },
    ],
    inputs: [...productInputs(dim), { name: "T", type: F32, dims: ["b", 1] }],
    outputs: [{ name: "P", type: I32, dims: [2, "count"] }, { name: "V", type: F32, dims: ["count"] }],
  };
}

/**
 * Graph of one 8-bit list product, screened, then exact on the rows it keeps. Integer products
 * `S = (D8[I] − 128) · XT` of the uint8 query rows (offset 128) and the list's int8 rows, given transposed (dim × c,
 * {@linkcode Int8Base}: no gather, no transpose per product); the block rows whose largest product reaches their
 * integer threshold T (the hit rows H, ~6 % of them at scale-9 geometry; NonZero over the whole block cost as much as
 * the product) are multiplied by the list's float32 rows in one SGEMM, `F = D[I[H]] · B[J]ᵀ`, and F comes back whole
 * for TypeScript to offer (a pair-by-pair rescoring of the screened pairs — gather both rows, multiply, sum — cost as
 * much as the integer product; thresholding F in the graph, a NonZero and four more nodes, more than the offers).
 * Outputs: H (hit rows, int32), F (h × c).
 */
function productScreenedModel(dim: number): OnnxModel {
  const gather = (data: string, at: string, out: string) => ({
    op: "Gather",
    inputs: [data, at],
    outputs: [out],
    attrs: { axis: 0 },
  });
  return {
    nodes: [
      gather("D8", "I", "Q"),
      { op: "MatMulInteger", inputs: ["Q", "XT", "zero"], outputs: ["S"] },
      { op: "ReduceMax", inputs: ["S"], outputs: ["M"], attrs: { axes: [1], keepdims: 0 } },
      { op: "GreaterOrEqual", inputs: ["M", "T"], outputs: ["rowHit"] },
      { op: "NonZero", inputs: ["rowHit"], outputs: ["hitRows2"] },
      { op: "Squeeze", inputs: ["hitRows2", "axis0"], outputs: ["hitRows"] },
      gather("I", "hitRows", "qi"),
      gather("D", "qi", "QH"),
      gather("B", "J", "X"),
      { op: "Gemm", inputs: ["QH", "X"], outputs: ["F"], attrs: { transB: 1 } },
      { op: "Cast", inputs: ["hitRows"], outputs: ["H"], attrs: { to: I32 } },
    ],
    inputs: [
      { name: "D", type: F32, dims: ["n", dim] },
      { name: "D8", type: OnnxType.UINT8, dims: ["n", dim] },
      { name: "I", type: I32, dims: ["b"] },
      { name: "B", type: F32, dims: ["N", dim] },
      { name: "XT", type: OnnxType.INT8, dims: [dim, "c"] },
      { name: "J", type: I32, dims: ["c"] },
      { name: "T", type: I32, dims: ["b"] },
    ],
    initializers: [
      { name: "zero", type: OnnxType.UINT8, dims: [], data: Uint8Array.of(128) },
      int64Initializer("axis0", [0]),
    ],
    outputs: [{ name: "H", type: I32, dims: ["h"] }, { name: "F", type: F32, dims: ["h", "c"] }],
  };
}

/** The onnxruntime sessions of an IVF search. */
class IvfSessions {
  private constructor(
    readonly rt: OrtRuntime,
    readonly dim: number,
    readonly sessions: {
      rank: OrtSession;
      rankInt8: OrtSession;
      product: OrtSession;
      productAbove: OrtSession;
      productScreened: OrtSession;
    },
  ) {}

  static async create(dim: number): Promise<IvfSessions> {
    const rt = await loadOrt();
    // TypeScript runs between every two runs (gathers, top-k merges): worker threads must not spin meanwhile
    return new IvfSessions(rt, dim, {
      rank: await createSession(rt, rankModel(dim), { spin: false }),
      rankInt8: await createSession(rt, rankInt8Model(dim), { spin: false }),
      product: await createSession(rt, productModel(dim), { spin: false }),
      productAbove: await createSession(rt, productAboveModel(dim), { spin: false }),
      productScreened: await createSession(rt, productScreenedModel(dim), { spin: false }),
    });
  }

  /**
   * The `count` most similar centroids of each of the `rows` rows of `x` (row-major), best first (ties: lower
   * centroid id first), handed to `each` block by block: the block's first row, ids and similarities (`count` per
   * row).
   */
  async rank(
    x: Float32Array,
    rows: number,
    opts: {
      centroids: Float32Array;
      nlist: number;
      count: number;
      each: (r0: number, ids: Int32Array, sims: Float32Array) => void;
      /** called with the row–centroid products of each finished block (progress) */
      onProducts?: (products: number) => void;
    },
  ): Promise<void> {
    const { centroids, nlist, count } = opts;
    const { Tensor } = this.rt.ort;
    const dim = this.dim;
    const c = new Tensor("float32", centroids.subarray(0, nlist * dim), [nlist, dim]);
    const kk = new Tensor("int64", BigInt64Array.of(BigInt(count)), [1]);
    const block = rankBlockRows(nlist);
    for (let r0 = 0; r0 < rows; r0 += block) {
      const r1 = Math.min(rows, r0 + block);
      const a = new Tensor("float32", x.subarray(r0 * dim, r1 * dim), [r1 - r0, dim]);
      const out = await this.sessions.rank.run({ A: a, C: c, K: kk });
      opts.each(r0, out.I!.data as Int32Array, out.V!.data as Float32Array);
      opts.onProducts?.((r1 - r0) * nlist);
    }
  }

  /**
   * {@linkcode rank} with 8-bit products (ids only): the rows rounded at `scale` (uint8, offset 128), the centroids
   * given rounded and transposed (`centroidsT`: dim × nlist int8).
   */
  async rankInt8(
    x: Float32Array,
    rows: number,
    opts: {
      centroidsT: Int8Array;
      scale: number;
      nlist: number;
      count: number;
      each: (r0: number, ids: Int32Array) => void;
    },
  ): Promise<void> {
    const { centroidsT, nlist, count, scale } = opts;
    const { Tensor } = this.rt.ort;
    const dim = this.dim;
    const ct = new Tensor("int8", centroidsT, [dim, nlist]);
    const kk = new Tensor("int64", BigInt64Array.of(BigInt(count)), [1]);
    const block = rankBlockRows(nlist);
    const a8 = new Uint8Array(Math.min(rows, block) * dim);
    for (let r0 = 0; r0 < rows; r0 += block) {
      const r1 = Math.min(rows, r0 + block);
      quantizeRows(x.subarray(r0 * dim, r1 * dim), r1 - r0, { dim, scale, out: a8, offset: 128 });
      const a = new Tensor("uint8", a8.subarray(0, (r1 - r0) * dim), [r1 - r0, dim]);
      const out = await this.sessions.rankInt8.run({ A8: a, CT: ct, K: kk });
      opts.each(r0, out.I!.data as Int32Array);
    }
  }

  /** The nearest centroid of each row and its similarity. */
  async nearest(
    x: Float32Array,
    rows: number,
    opts: { centroids: Float32Array; nlist: number; onProducts?: (products: number) => void },
  ): Promise<{ ids: Int32Array; sims: Float32Array }> {
    const ids = new Int32Array(rows), sims = new Float32Array(rows);
    await this.rank(x, rows, {
      ...opts,
      count: 1,
      each: (r0, i, v) => {
        ids.set(i, r0);
        sims.set(v, r0);
      },
    });
    return { ids, sims };
  }

  /** `rows` row-major rows as a tensor the list products gather from (wraps the rows, no copy). */
  rowsTensor(data: Float32Array, rows: number): OrtTensor {
    return new this.rt.ort.Tensor("float32", data.subarray(0, rows * this.dim), [rows, this.dim]);
  }

  /**
   * `S = D[ids] · B[list]ᵀ` for the query rows D and the base rows B (both {@linkcode rowsTensor}) and a list's row
   * ids.
   */
  async multiply(d: OrtTensor, ids: Int32Array, opts: { base: OrtTensor; list: Int32Array }): Promise<Float32Array> {
    const { Tensor } = this.rt.ort;
    const out = await this.sessions.product.run({
      D: d,
      I: new Tensor("int32", ids, [ids.length]),
      B: opts.base,
      J: new Tensor("int32", opts.list, [opts.list.length]),
    });
    return out.S!.data as Float32Array;
  }

  /** The entries of `S = D[ids] · B[list]ᵀ` at or above their row's threshold `t[i]`, in row-major order. */
  async multiplyAbove(
    d: OrtTensor,
    ids: Int32Array,
    opts: { base: OrtTensor; list: Int32Array; t: Float32Array },
  ): Promise<{ rows: Int32Array; cols: Int32Array; sims: Float32Array }> {
    const { Tensor } = this.rt.ort;
    const { list, t } = opts;
    const b = ids.length;
    const out = await this.sessions.productAbove.run({
      D: d,
      I: new Tensor("int32", ids, [b]),
      B: opts.base,
      J: new Tensor("int32", list, [list.length]),
      T: new Tensor("float32", t, [b, 1]),
    });
    const p = out.P!.data as Int32Array, count = p.length / 2;
    return { rows: p.subarray(0, count), cols: p.subarray(count), sims: out.V!.data as Float32Array };
  }

  /**
   * The rows of `D[ids] · B[list]ᵀ` whose largest 8-bit product `(D8[ids] − 128) · XT` reaches their integer
   * threshold `t[i]` ({@linkcode productScreenedModel}): their block rows and their products (rows × list length,
   * float32). D, B: {@linkcode rowsTensor}; D8: {@linkcode queryRows8Tensor}; XT: the list's int8 rows transposed
   * (dim × list length).
   */
  async multiplyScreened(
    d: { rows: OrtTensor; rows8: OrtTensor },
    ids: Int32Array,
    opts: { base: OrtTensor; listT: Int8Array; list: Int32Array; t: Int32Array },
  ): Promise<{ rows: Int32Array; sims: Float32Array }> {
    const { Tensor } = this.rt.ort;
    const { list } = opts;
    const b = ids.length;
    const out = await this.sessions.productScreened.run({
      D: d.rows,
      D8: d.rows8,
      I: new Tensor("int32", ids, [b]),
      B: opts.base,
      XT: new Tensor("int8", opts.listT, [this.dim, list.length]),
      J: new Tensor("int32", list, [list.length]),
      T: new Tensor("int32", opts.t, [b]),
    });
    return { rows: out.H!.data as Int32Array, sims: out.F!.data as Float32Array };
  }

  /** `rows` quantized query rows (uint8, offset 128) as a tensor the 8-bit products gather from. */
  queryRows8Tensor(data: Uint8Array, rows: number): OrtTensor {
    return new this.rt.ort.Tensor("uint8", data.subarray(0, rows * this.dim), [rows, this.dim]);
  }

  async release(): Promise<void> {
    for (const session of Object.values(this.sessions)) await session.release?.();
  }
}

/** Copy rows `ids[from..to)` of `data` into `out` (row-major), returning the filled part. */
function gather(
  data: Float32Array,
  dim: number,
  sel: { ids: Int32Array; from: number; to: number; out: Float32Array },
) {
  const { ids, from, to, out } = sel;
  for (let t = from; t < to; t++) {
    const id = ids[t]!;
    out.set(data.subarray(id * dim, id * dim + dim), (t - from) * dim);
  }
  return out.subarray(0, (to - from) * dim);
}

/** Seeded sample of `count` distinct row ids out of `n` (partial Fisher–Yates), in draw order. */
function sampleIds(n: number, count: number, rng: Rng): Int32Array {
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  for (let t = 0; t < count; t++) {
    const j = t + rng.int(n - t);
    const v = ids[t]!;
    ids[t] = ids[j]!;
    ids[j] = v;
  }
  return ids.slice(0, count);
}

/**
 * Spherical k-means (Lloyd) of the `rows` rows of `x`, from the `count` centroids given (updated in place): assign
 * each row to its most similar centroid, move each centroid to the normalised sum of its rows. A centroid left
 * without rows takes the worst-served row (lowest similarity to its centroid; ties by row), one row each.
 */
async function lloyd(
  x: Float32Array,
  rows: number,
  opts: {
    centroids: Float32Array;
    count: number;
    iterations: number;
    sessions: IvfSessions;
    onProducts?: (products: number) => void;
  },
): Promise<void> {
  const { centroids, count, sessions, onProducts } = opts;
  const dim = sessions.dim;
  const sums = new Float64Array(count * dim);
  const counts = new Int32Array(count);
  for (let it = 0; it < opts.iterations; it++) {
    const { ids: label, sims } = await sessions.nearest(x, rows, { centroids, nlist: count, onProducts });
    sums.fill(0);
    counts.fill(0);
    for (let r = 0; r < rows; r++) {
      const c = label[r]!;
      counts[c]!++;
      for (let t = 0; t < dim; t++) sums[c * dim + t]! += x[r * dim + t]!;
    }
    const empty: number[] = [];
    for (let c = 0; c < count; c++) if (counts[c] === 0) empty.push(c);
    if (empty.length) {
      const order = Int32Array.from({ length: rows }, (_, r) => r).sort((a, b) => sims[a]! - sims[b]! || a - b);
      empty.forEach((c, e) => centroids.set(x.subarray(order[e]! * dim, order[e]! * dim + dim), c * dim));
    }
    for (let c = 0; c < count; c++) {
      if (counts[c] === 0) continue;
      let ss = 0;
      for (let t = 0; t < dim; t++) ss += sums[c * dim + t]! ** 2;
      if (!(ss > 0)) continue; // rows summing to zero: keep the previous centroid
      const inv = 1 / Math.sqrt(ss);
      for (let t = 0; t < dim; t++) centroids[c * dim + t] = sums[c * dim + t]! * inv;
    }
  }
}

/**
 * Coarse centroids (nlist × dim, unit norm unless a cluster's rows sum to zero): spherical k-means
 * ({@linkcode lloyd}) on a seeded sample of `trainPerList · nlist` rows (all rows when fewer): the two-level start
 * ({@linkcode twoLevelStart}), then `iterations` Lloyd iterations over all lists.
 */
export async function trainIvfCentroids(
  base: Features,
  params: IvfParams,
): Promise<{ centroids: Float32Array; trainRows: number }> {
  const sessions = await IvfSessions.create(base.dim);
  try {
    return await trainCentroids(base, { params, sessions });
  } finally {
    await sessions.release();
  }
}

/** Lloyd iterations of each k-means of the two-level start. */
const START_ITERATIONS = 5;

/** Rows of the k-means training sample for `n` base rows. */
function trainRowsOf(n: number, params: IvfParams): number {
  return Math.min(n, params.trainPerList * params.nlist);
}

/**
 * Row–centroid products of training (an estimate where the start's lists are shared out: nlist / coarse per cluster)
 * and of ranking `n` base rows against the centroids once: the units of the build's progress.
 */
export function ivfBuildProducts(n: number, params: IvfParams): number {
  const { nlist, coarse, iterations } = params;
  const rows = trainRowsOf(n, params);
  const start = coarse === 1
    ? rows * nlist * START_ITERATIONS
    : rows * (coarse * (START_ITERATIONS + 1) + (nlist / coarse) * START_ITERATIONS);
  return start + rows * nlist * iterations + n * nlist;
}

/** {@linkcode trainIvfCentroids} on open sessions. */
async function trainCentroids(
  base: Features,
  ctx: { params: IvfParams; sessions: IvfSessions; onProducts?: (products: number) => void },
): Promise<{ centroids: Float32Array; trainRows: number }> {
  const { params, sessions, onProducts } = ctx;
  const { nlist, iterations } = params;
  const dim = base.dim;
  const trainRows = trainRowsOf(base.n, params);
  const sample = sampleIds(base.n, trainRows, new Rng(params.seed, 0x1f5));
  const train = gather(base.data, dim, { ids: sample, from: 0, to: trainRows, out: new Float32Array(trainRows * dim) });
  const centroids = await twoLevelStart(train, trainRows, { nlist, coarse: params.coarse, sessions, onProducts });
  await lloyd(train, trainRows, { centroids, count: nlist, iterations, sessions, onProducts });
  return { centroids, trainRows };
}

/**
 * The start of the coarse k-means: `coarse` clusters by k-means of the sample (from its first rows, a random draw),
 * then each cluster's sample rows split into lists by a k-means of their own (from the cluster's first rows), the
 * nlist lists shared out in proportion to the clusters' rows (largest remainders, ties by cluster; never more lists
 * than rows). Each k-means runs {@linkcode START_ITERATIONS} iterations. A sample row meets coarse + nlist / coarse
 * centroids per iteration instead of nlist; with 2 flat iterations after it the lists are as good as 5 flat
 * iterations from random rows (recall@80 over all rows at the defaults, synthetic part1 split, nlist 9,185, coarse 96:
 * 0.9937 vs 0.9936; 70,790 rows: 0.9982 vs 0.9967) for under half the training products. With `coarse` 1 it is
 * the flat k-means from nlist sample rows.
 */
async function twoLevelStart(
  train: Float32Array,
  rows: number,
  opts: { nlist: number; coarse: number; sessions: IvfSessions; onProducts?: (products: number) => void },
): Promise<Float32Array> {
  const { nlist, coarse, sessions, onProducts } = opts;
  const dim = sessions.dim;
  const iterations = START_ITERATIONS;
  let label: Int32Array = new Int32Array(rows);
  if (coarse > 1) {
    const top = train.slice(0, coarse * dim);
    await lloyd(train, rows, { centroids: top, count: coarse, iterations, sessions, onProducts });
    label = (await sessions.nearest(train, rows, { centroids: top, nlist: coarse, onProducts })).ids;
  }
  const groups = groupByList(label, { nlist: coarse, stride: 1, from: 0, to: 1, r0: 0, r1: rows });
  const lists = shareLists(Array.from({ length: coarse }, (_, c) => groups.start[c + 1]! - groups.start[c]!), nlist);
  const centroids = new Float32Array(nlist * dim);
  let at = 0;
  for (let c = 0; c < coarse; c++) {
    const g0 = groups.start[c]!, g1 = groups.start[c + 1]!, count = lists[c]!;
    if (count === 0) continue;
    const x = gather(train, dim, { ids: groups.members, from: g0, to: g1, out: new Float32Array((g1 - g0) * dim) });
    const own = x.slice(0, count * dim);
    await lloyd(x, g1 - g0, { centroids: own, count, iterations, sessions, onProducts });
    centroids.set(own, at * dim);
    at += count;
  }
  return centroids;
}

/**
 * `total` lists shared out over clusters of `sizes` rows in proportion to their rows: the whole parts, then one more
 * each by largest remainder (ties: lower cluster), never more lists than a cluster's rows (the total must not exceed
 * the rows).
 */
export function shareLists(sizes: number[], total: number): Int32Array {
  const rows = sizes.reduce((a, b) => a + b, 0);
  if (total > rows) throw new Error(`ivf: ${total} lists for ${rows} rows`);
  const quota = sizes.map((m) => (total * m) / rows);
  const out = Int32Array.from(quota, (q) => Math.floor(q));
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = sizes.map((_, c) => c).sort((a, b) => (quota[b]! - out[b]!) - (quota[a]! - out[a]!) || a - b);
  while (left > 0) {
    for (const c of order) {
      if (left === 0) break;
      if (out[c]! < sizes[c]!) out[c]!++, left--;
    }
  }
  return out;
}

/** Rows grouped by list: `start[l]..start[l+1]` index `members`, ascending row ids within a list. */
interface ListGroups {
  start: Int32Array;
  members: Int32Array;
}

/**
 * Rows [r0, r1) grouped by list: row r belongs to the lists `lists[r·stride + p]` for ranks p in [from, to).
 */
function groupByList(
  lists: Int32Array | Uint16Array,
  opts: { nlist: number; stride: number; from: number; to: number; r0: number; r1: number },
): ListGroups {
  const { nlist, stride, from, to, r0, r1 } = opts;
  const start = new Int32Array(nlist + 1);
  for (let r = r0; r < r1; r++) for (let p = from; p < to; p++) start[lists[r * stride + p]! + 1]!++;
  for (let l = 0; l < nlist; l++) start[l + 1]! += start[l]!;
  const fill = start.slice(0, nlist);
  const members = new Int32Array(start[nlist]!);
  for (let r = r0; r < r1; r++) for (let p = from; p < to; p++) members[fill[lists[r * stride + p]!]!++] = r;
  return { start, members };
}

/**
 * Probe ranks scanned by the first pass: each query's nearest lists, which set its top-k threshold early (synthetic
 * benchmark, 98K rows, nlist 1254, nprobe 48: 162 heap insertions per row with 2, 175 with 1, 181 with 3, 416 in one
 * pass).
 */
const FIRST_PASS_PROBES = 2;

/** The base rows quantized for the 8-bit screen (gpu/knn/int8.ts) and each list's largest row norms. */
interface Int8Base {
  scale: number;
  /**
   * the int8 base rows list by list, each list transposed (list l: dim × its length at `start[l] · dim`, columns in
   * the scan's list order), so that a product takes its list as a view
   */
  listsT: Int8Array;
  /** per list: the largest ‖q‖ and ‖q − s·x‖ of its rows (0 for an empty list) */
  listQmax: Float64Array;
  listEmax: Float64Array;
}

/** One chunk's queries quantized (uint8, offset 128) beside the base. */
interface Int8Chunk extends Int8Base {
  queryRows: OrtTensor;
  /** per query row: ‖x‖ and ‖q − s·x‖ */
  xnorm: Float64Array;
  enorm: Float64Array;
  /** integer thresholds of one block */
  tbuf: Int32Array;
}

/**
 * Quantize the base rows at the scale of the base and the other queries (if any) together, and take each list's
 * largest norms.
 */
function quantizeBase(
  base: Features,
  ctx: { queries: Features | null; lists: ListGroups; sessions: IvfSessions },
): Int8Base {
  const { dim, n } = base;
  const { start, members } = ctx.lists;
  const nlist = start.length - 1;
  const sets = [{ data: base.data, count: n * dim }];
  if (ctx.queries) sets.push({ data: ctx.queries.data, count: ctx.queries.n * dim });
  const scale = quantScale(sets);
  // each row's list and column in it
  const listOf = new Int32Array(n), column = new Int32Array(n);
  for (let l = 0; l < nlist; l++) {
    for (let j = start[l]!; j < start[l + 1]!; j++) listOf[members[j]!] = l, column[members[j]!] = j - start[l]!;
  }
  const listsT = new Int8Array(n * dim);
  const listQmax = new Float64Array(nlist), listEmax = new Float64Array(nlist);
  const block = 1 << 14, rows = new Int8Array(block * dim);
  for (let r0 = 0; r0 < n; r0 += block) {
    const r1 = Math.min(n, r0 + block);
    const norms = quantizeRows(base.data.subarray(r0 * dim, r1 * dim), r1 - r0, { dim, scale, out: rows });
    for (let r = r0; r < r1; r++) {
      const l = listOf[r]!, l0 = start[l]!, len = start[l + 1]! - l0, j = column[r]!;
      listQmax[l] = Math.max(listQmax[l]!, norms.qnorm[r - r0]!);
      listEmax[l] = Math.max(listEmax[l]!, norms.enorm[r - r0]!);
      for (let t = 0, at = l0 * dim + j, from = (r - r0) * dim; t < dim; t++, at += len) listsT[at] = rows[from + t]!;
    }
  }
  return { scale, listsT, listQmax, listEmax };
}

/** Quantize one chunk's query rows (uint8, offset 128) at the base's scale. */
function quantizeChunk(b: Int8Base, ctx: { data: Float32Array; rows: number; sessions: IvfSessions }): Int8Chunk {
  const { data, rows, sessions } = ctx;
  const dim = sessions.dim;
  const q = new Uint8Array(rows * dim);
  const { xnorm, enorm } = quantizeRows(data, rows, { dim, scale: b.scale, out: q, offset: 128 });
  return {
    ...b,
    queryRows: sessions.queryRows8Tensor(q, rows),
    xnorm,
    enorm,
    tbuf: new Int32Array(Math.min(rows, MAX_QUERY_BLOCK)),
  };
}

/** The lists' rows and buffers shared by the passes of one search. */
interface ScanState {
  /** the 8-bit screen of the later passes, or null (float32 products) */
  screen: Int8Chunk | null;
  /** all query rows, as the list products' gather source */
  queryRows: OrtTensor;
  /** all base rows, as the list products' gather source */
  baseRows: OrtTensor;
  /** base row ids by list */
  lists: ListGroups;
  top: RowTopK;
  sessions: IvfSessions;
  tbuf: Float32Array;
  onPairs: (pairs: number) => void;
}

/**
 * One pass: for every list, the queries probing it at the pass's ranks (`probing`), in blocks, multiplied by the
 * list's rows. First pass (`above` false): every product row is merged into its query's top-k in TypeScript. Later
 * passes (`above` true): the queries' current top-k thresholds go into the graph, which returns only the entries at
 * or above them — the others cannot enter a top-k whose threshold only rises, so the result is the same.
 */
async function scanPass(state: ScanState, probing: ListGroups, above: boolean): Promise<void> {
  const { queryRows, baseRows, lists, top, sessions, tbuf } = state;
  const nlist = lists.start.length - 1;
  const listIds = lists.members, queryIds = probing.members;
  for (let l = 0; l < nlist; l++) {
    const l0 = lists.start[l]!, l1 = lists.start[l + 1]!, len = l1 - l0;
    const p0 = probing.start[l]!, p1 = probing.start[l + 1]!;
    if (len === 0 || p0 === p1) continue;
    const list = listIds.subarray(l0, l1);
    const qb = Math.max(1, Math.min(MAX_QUERY_BLOCK, Math.floor(BLOCK_ENTRIES / len)));
    for (let b0 = p0; b0 < p1; b0 += qb) {
      const b1 = Math.min(p1, b0 + qb);
      const ids = queryIds.subarray(b0, b1);
      if (above && state.screen) {
        await screenedProducts(state, { l, b0, b1, list, queryIds });
      } else if (above) {
        for (let r = b0; r < b1; r++) tbuf[r - b0] = top.threshold(queryIds[r]!);
        const hits = await sessions.multiplyAbove(queryRows, ids, {
          base: baseRows,
          list,
          t: tbuf.subarray(0, b1 - b0),
        });
        const { rows, cols, sims } = hits;
        for (let t = 0; t < sims.length; t++) top.offer(queryIds[b0 + rows[t]!]!, sims[t]!, listIds[l0 + cols[t]!]!);
      } else {
        const s = await sessions.multiply(queryRows, ids, { base: baseRows, list });
        for (let r = b0; r < b1; r++) {
          top.offerGathered(queryIds[r]!, s, { off: (r - b0) * len, len, ids: listIds, idOff: l0 });
        }
      }
      state.onPairs((b1 - b0) * len);
    }
  }
}

/**
 * One block of a later pass through the 8-bit screen: integer thresholds from the rows' current thresholds and the
 * list's norms; the float32 products of the rows that pass the screen are offered.
 */
async function screenedProducts(
  state: ScanState,
  block: { l: number; b0: number; b1: number; list: Int32Array; queryIds: Int32Array },
): Promise<void> {
  const { lists, top, sessions } = state;
  const sc = state.screen!;
  const { l, b0, b1, list, queryIds } = block;
  const dim = sessions.dim, l0 = lists.start[l]!, l1 = lists.start[l + 1]!;
  const listQmax = sc.listQmax[l]!, listEmax = sc.listEmax[l]!;
  for (let r = b0; r < b1; r++) {
    const q = queryIds[r]!;
    sc.tbuf[r - b0] = screenThreshold(top.threshold(q), {
      scale: sc.scale,
      dim,
      xnorm: sc.xnorm[q]!,
      enorm: sc.enorm[q]!,
      listQmax,
      listEmax,
    });
  }
  const { rows, sims } = await sessions.multiplyScreened(
    { rows: state.queryRows, rows8: sc.queryRows },
    queryIds.subarray(b0, b1),
    { base: state.baseRows, listT: sc.listsT.subarray(l0 * dim, l1 * dim), list, t: sc.tbuf.subarray(0, b1 - b0) },
  );
  const len = l1 - l0;
  for (let h = 0; h < rows.length; h++) {
    top.offerGathered(queryIds[b0 + rows[h]!]!, sims, { off: h * len, len, ids: lists.members, idOff: l0 });
  }
}

/**
 * An IVF index: the coarse centroids and the list of every base row. Built once ({@linkcode buildIvfIndex}) and
 * searched by any number of query chunks, in one run or in shards (cluster/knn_shard.ts stores it).
 */
export interface IvfIndex {
  params: IvfParams;
  /** base rows and their dimension */
  n: number;
  dim: number;
  /** nlist × dim, row-major */
  centroids: Float32Array;
  /** the list (most similar centroid) of every base row */
  lists: Int32Array;
  /** rows of the k-means training sample */
  trainRows: number;
}

/**
 * Most bytes of a self search's probes kept from the index build for the search (N × nprobe ids): 8 GiB, so that
 * the seed's largest scale keeps them (5.24M rows × 573 16-bit ids = 6.0 GB; with the base rows, 5.4 GB, and the
 * result, 3.4 GB, the search stays near 15 GB). Keeping them saves ranking every row against every centroid a
 * second time (at that scale 7.4·10¹³ FLOP, minutes on 2 cores).
 */
const KEPT_PROBES_BYTES = 8 * 2 ** 30;

/** Ranks rows' probes: the `count` best lists of each of `rows` rows of `x`, handed to `each` block by block. */
type ProbeRanker = (
  x: Float32Array,
  rows: number,
  opts: { count: number; each: (r0: number, ids: Int32Array) => void },
) => Promise<void>;

/**
 * The probe ranking of an index, shared by its build (every base row's list) and every search of it (each chunk's
 * probes), so that both rank alike. With `screenBits` 8 the products are 8-bit too: the centroids rounded at their
 * own scale, the rows at the base rows' scale (queries beyond the base's largest magnitude are clamped): about twice
 * the float32 rate, and near-ties among the centroids (within the rounding) may rank the other way.
 */
function probeRanker(
  sessions: IvfSessions,
  ctx: { centroids: Float32Array; nlist: number; base: Features; screenBits: IvfScreenBits },
): ProbeRanker {
  const { centroids, nlist, base } = ctx;
  const dim = sessions.dim;
  if (ctx.screenBits === 32) {
    return (x, rows, { count, each }) => sessions.rank(x, rows, { centroids, nlist, count, each });
  }
  const centroidScale = quantScale([{ data: centroids, count: nlist * dim }]);
  const c8 = new Int8Array(nlist * dim);
  quantizeRows(centroids, nlist, { dim, scale: centroidScale, out: c8 });
  const centroidsT = new Int8Array(nlist * dim);
  for (let c = 0; c < nlist; c++) for (let t = 0; t < dim; t++) centroidsT[t * nlist + c] = c8[c * dim + t]!;
  const scale = quantScale([{ data: base.data, count: base.n * dim }]);
  return (x, rows, { count, each }) => sessions.rankInt8(x, rows, { centroidsT, scale, nlist, count, each });
}

/** An array for `count` list ids out of `nlist`: 16-bit while they fit. */
function listIds(nlist: number, count: number): Uint16Array | Int32Array {
  return nlist <= 0x10000 ? new Uint16Array(count) : new Int32Array(count);
}

/**
 * Build the index of `base` (see the module header): k-means on the seeded sample, then every base row's list. The
 * base rows are ranked against the centroids chunk by chunk exactly as a self search ranks its probes (same chunks,
 * same `nprobe`), and a row's list is its first probe: so a self search can take its probes from here instead of
 * ranking every row a second time (`keepProbes`: the ids are returned when they fit in
 * {@linkcode KEPT_PROBES_BYTES}), and a search that ranks its chunks itself (a shard) gets the same probes. Where the
 * ids are not kept (a shard's build, or more bytes of them) only each row's nearest centroid is ranked — the same
 * first probe, as the products are the same. A row's list depends on the base and the parameters alone.
 */
export async function buildIvfIndex(
  base: Features,
  options: Omit<IvfOptions, "k"> & { keepProbes?: boolean },
): Promise<
  IvfIndex & { seconds: { train: number; assign: number }; label: string; probes: Uint16Array | Int32Array | null }
> {
  const { dim } = base;
  if (base.data.length < base.n * dim) throw new LtcError(`ivf: the data holds fewer values than rows × dim`);
  const params = ivfParams(base.n, options);
  const { nlist, nprobe, chunkRows } = params;
  const sessions = await IvfSessions.create(dim);
  try {
    // progress: row–centroid products done, out of training's and the base rows' ranking
    const units = ivfBuildProducts(base.n, params);
    let done = 0;
    const onProducts = options.onProgress &&
      ((products: number) => options.onProgress!(Math.min(1, (done += products) / units)));
    const t0 = performance.now();
    const { centroids, trainRows } = await trainCentroids(base, { params, sessions, onProducts });
    const t1 = performance.now();
    const keep = options.keepProbes && base.n * nprobe * listIds(nlist, 1).BYTES_PER_ELEMENT <= KEPT_PROBES_BYTES;
    const probes = keep ? listIds(nlist, base.n * nprobe) : null;
    // not kept: the nearest centroid alone (TopK's first of 1 is its first of nprobe: the same list)
    const count = keep ? nprobe : 1;
    const scratch = probes ?? listIds(nlist, Math.min(chunkRows, base.n));
    const lists = new Int32Array(base.n);
    const rank = probeRanker(sessions, { centroids, nlist, base, screenBits: params.screenBits });
    for (let c0 = 0; c0 < base.n; c0 += chunkRows) {
      const nq = Math.min(chunkRows, base.n - c0);
      const off = probes ? c0 : 0;
      await rank(base.data.subarray(c0 * dim, (c0 + nq) * dim), nq, {
        count,
        each: (r0, got) => scratch.set(got, (off + r0) * count),
      });
      onProducts?.(nq * nlist);
      for (let r = 0; r < nq; r++) lists[c0 + r] = scratch[(off + r) * count]!;
    }
    options.onProgress?.(1); // the start's products were estimated: the build ends at 1 all the same
    const t2 = performance.now();
    return {
      params,
      n: base.n,
      dim,
      centroids,
      lists,
      trainRows,
      seconds: { train: (t1 - t0) / 1000, assign: (t2 - t1) / 1000 },
      label: sessions.rt.label,
      probes,
    };
  } finally {
    await sessions.release();
  }
}

/**
 * Default query rows of one search chunk. Every chunk is ranked and scanned (both passes) on its own, so a row's
 * result depends only on the index and its chunk's rows, and chunks start at absolute multiples of this: a shard of
 * whole chunks computes exactly the unsharded run's rows. Sized for the first pass, whose products are a list's rows
 * times the chunk's queries probing it at its two nearest ranks: 16·nlist rows give ~32 queries a product (at the
 * seed's largest scale, chunks of 58,624 rows gave 4 and the first pass was onnxruntime's fixed cost per run: 430 of
 * its 3,972 s). At least 8192 rows; at most 2²⁸ probe ids per chunk (512 MiB as 16-bit ids where a shard ranks its
 * chunk's probes). The later pass goes through a chunk in blocks of {@linkcode scanBlockRows}. Multiples of 256;
 * depends on nlist and nprobe only.
 */
export function defaultChunkRows(nlist: number, nprobe: number): number {
  const wanted = Math.max(8192, Math.ceil((16 * nlist) / 256) * 256);
  return Math.max(256, Math.min(wanted, Math.floor(2 ** 28 / nprobe / 256) * 256));
}

/**
 * Query rows of one block of the later pass within a chunk: its index arrays hold (nprobe − 2) ids per row, at most
 * 2²⁶ entries (256 MiB); at the seed's largest scale 117,504 rows, ~2,400 queries per list product (half that cost
 * ~8 % more time: the 8-bit products' fixed costs). The block's product shapes depend on the chunk and the index
 * only, so shards stay exact. Multiples of 256.
 */
export function scanBlockRows(nprobe: number): number {
  const later = Math.max(1, nprobe - FIRST_PASS_PROBES);
  return Math.max(256, Math.floor(2 ** 26 / later / 256) * 256);
}

/** What {@linkcode searchIvf} returns beyond the rows. */
export interface IvfSearchResult {
  nbrs: Int32Array;
  dists: Float32Array;
  /** query–row similarities computed, as a share of the searched rows × base rows */
  scannedFraction: number;
  /** rows of the largest list, lists without rows */
  largestList: number;
  emptyLists: number;
  /** seconds quantizing the rows (int8 screen), ranking the chunks' probes and scanning the lists */
  phaseSeconds: { quantize: number; rank: number; firstPass: number; secondPass: number };
  /** which onnxruntime build ran */
  label: string;
}

/** Options of {@linkcode searchIvf}. */
export interface IvfSearchOptions {
  k: number;
  /** other query rows (default: the base rows themselves — a self search) */
  queries?: Features;
  /**
   * Self search only: rows [start, end) of it (default all); start and end must be multiples of the index's
   * `params.chunkRows`, end may also be N
   */
  rows?: { start: number; end: number };
  /**
   * Self search of all rows only: every row's probes as the index build ranked them ({@linkcode buildIvfIndex}
   * `keepProbes`), used instead of ranking again — the same ids the search would compute
   */
  probes?: Uint16Array | Int32Array | null;
  /** query rows of one later-pass block (default {@linkcode scanBlockRows}; the rows do not depend on it) */
  scanRows?: number;
  onProgress?: (fraction: number) => void;
}

/**
 * Search the index: the k nearest base rows of every query row (or of self-search rows [start, end)), chunk by
 * chunk. In a self search a row's own list is always its first probe (as faiss's IVF finds every row itself).
 */
export async function searchIvf(
  base: Features,
  index: IvfIndex,
  options: IvfSearchOptions,
): Promise<IvfSearchResult> {
  const { k } = options;
  const { dim } = base;
  const { nlist, nprobe } = index.params;
  if (!(Number.isInteger(k) && k >= 1)) throw new LtcError(`ivf: k must be a positive integer, got ${k}`);
  if (k > base.n) throw new LtcError(`ivf: k = ${k} exceeds the number of base rows (${base.n})`);
  if (index.n !== base.n || index.dim !== dim) {
    throw new LtcError(`ivf: the index is of ${index.n} × ${index.dim} rows, the base has ${base.n} × ${dim}`);
  }
  const queries = options.queries ?? base;
  const self = options.queries === undefined || options.queries === base;
  if (queries.dim !== dim) throw new LtcError(`ivf: queries have dim ${queries.dim} but the base has dim ${dim}`);
  if (base.data.length < base.n * dim || queries.data.length < queries.n * dim) {
    throw new LtcError(`ivf: the data holds fewer values than rows × dim`);
  }
  const chunk = index.params.chunkRows;
  const { start, end } = options.rows ?? { start: 0, end: queries.n };
  if (options.rows && !self) throw new LtcError(`ivf: rows select rows of a self search; not with other queries`);
  if (
    !(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= queries.n) ||
    start % chunk !== 0 || (end % chunk !== 0 && end !== queries.n)
  ) {
    throw new LtcError(
      `ivf: rows [${start}, ${end}) are not a non-empty range of whole ${chunk}-row chunks of the ${queries.n} rows`,
    );
  }
  const scanRows = options.scanRows ?? scanBlockRows(nprobe);
  if (!(Number.isInteger(scanRows) && scanRows >= 1)) throw new LtcError(`ivf: scanRows must be a positive integer`);
  const sessions = await IvfSessions.create(dim);
  try {
    const lists = groupByList(index.lists, { nlist, stride: 1, from: 0, to: 1, r0: 0, r1: base.n });
    const baseRows = sessions.rowsTensor(base.data, base.n);
    let largestList = 0, emptyLists = 0;
    for (let l = 0; l < nlist; l++) {
      const len = lists.start[l + 1]! - lists.start[l]!;
      largestList = Math.max(largestList, len);
      if (len === 0) emptyLists++;
    }
    const rows = end - start;
    const nbrs = new Int32Array(rows * k), dists = new Float32Array(rows * k);
    const phase = { quantize: 0, rank: 0, firstPass: 0, secondPass: 0 };
    const tq = performance.now();
    const int8 = index.params.screenBits === 8 && nprobe > FIRST_PASS_PROBES
      ? quantizeBase(base, { queries: self ? null : queries, lists, sessions })
      : null;
    phase.quantize = (performance.now() - tq) / 1000;
    const maxChunk = Math.min(chunk, rows);
    // a chunk's probes, best first (16-bit ids while they fit)
    const kept = options.probes ?? null;
    if (kept && !(self && start === 0 && end === queries.n && kept.length === queries.n * nprobe)) {
      throw new Error(`ivf: kept probes are for a self search of all ${base.n} rows`);
    }
    const chunkProbes = kept ? null : listIds(nlist, maxChunk * nprobe);
    const rank = kept
      ? null
      : probeRanker(sessions, { centroids: index.centroids, nlist, base, screenBits: index.params.screenBits });
    const split = Math.min(nprobe, FIRST_PASS_PROBES);
    let scanned = 0, done = 0;
    for (let c0 = start; c0 < end; c0 += chunk) {
      const c1 = Math.min(end, c0 + chunk), nq = c1 - c0;
      const t0 = performance.now();
      const data = queries.data.subarray(c0 * dim, c1 * dim);
      const probes = kept ? kept.subarray(c0 * nprobe, c1 * nprobe) : chunkProbes!;
      if (!kept) {
        await rank!(data, nq, { count: nprobe, each: (r0, ids) => probes.set(ids, r0 * nprobe) });
      }
      if (self) homeFirst(probes, { lists: index.lists, row0: c0, rows: nq, nprobe });
      let total = 0;
      for (let t = 0; t < nq * nprobe; t++) total += lists.start[probes[t]! + 1]! - lists.start[probes[t]!]!;
      scanned += total;
      const t1 = performance.now();
      const top = new RowTopK(nq, k);
      const screen = int8 && quantizeChunk(int8, { data, rows: nq, sessions });
      const state: ScanState = {
        screen,
        queryRows: sessions.rowsTensor(data, nq),
        baseRows,
        lists,
        top,
        sessions,
        tbuf: new Float32Array(Math.min(nq, MAX_QUERY_BLOCK)),
        onPairs: (pairs) => {
          done += pairs;
          options.onProgress?.(Math.min(1, (c0 - start + nq * (total ? Math.min(1, done / total) : 1)) / rows));
        },
      };
      const group = (from: number, to: number, r0 = 0, r1 = nq) =>
        groupByList(probes, { nlist, stride: nprobe, from, to, r0, r1 });
      // first pass: the chunk's nearest lists, then the other probes with the thresholds they left
      await scanPass(state, group(0, split), false);
      const t2 = performance.now();
      if (split < nprobe) {
        for (let s0 = 0; s0 < nq; s0 += scanRows) {
          await scanPass(state, group(split, nprobe, s0, Math.min(nq, s0 + scanRows)), true);
        }
      }
      top.finishInto(nbrs, dists, c0 - start);
      done = 0;
      const t3 = performance.now();
      phase.rank += (t1 - t0) / 1000;
      phase.firstPass += (t2 - t1) / 1000;
      phase.secondPass += (t3 - t2) / 1000;
    }
    return {
      nbrs,
      dists,
      scannedFraction: scanned / (rows * base.n),
      largestList,
      emptyLists,
      phaseSeconds: phase,
      label: sessions.rt.label,
    };
  } finally {
    await sessions.release();
  }
}

/**
 * Put each self-search row's own list first among its probes (moving it up, or in place of the last probe when the
 * ranking left it out — possible only when the chunk's products round a similarity differently from the index's).
 */
function homeFirst(
  probes: Uint16Array | Int32Array,
  ctx: { lists: Int32Array; row0: number; rows: number; nprobe: number },
): void {
  const { lists, row0, rows, nprobe } = ctx;
  for (let r = 0; r < rows; r++) {
    const home = lists[row0 + r]!, o = r * nprobe;
    if (probes[o] === home) continue;
    let p = 1;
    while (p < nprobe && probes[o + p] !== home) p++;
    probes.copyWithin(o + 1, o, o + Math.min(p, nprobe - 1));
    probes[o] = home;
  }
}

/** Result of {@linkcode ivfKnn}. */
export interface IvfResult {
  nbrs: Int32Array;
  dists: Float32Array;
  params: IvfParams;
  stats: IvfStats;
  /** training and assigning the base rows to lists (the index) */
  buildSeconds: number;
  /** ranking the queries' probes and scanning the lists */
  querySeconds: number;
  /** the parts: k-means, assigning the base rows, ranking the probes, the two scan passes */
  phaseSeconds: {
    train: number;
    assign: number;
    quantize: number;
    rank: number;
    firstPass: number;
    secondPass: number;
  };
  /** which onnxruntime build ran */
  label: string;
}

/** IVF kNN of every query row (default: the base rows) among the base rows: build the index, then search it. */
export async function ivfKnn(base: Features, options: IvfOptions & { queries?: Features }): Promise<IvfResult> {
  const { k } = options;
  const queries = options.queries ?? base;
  if (!(Number.isInteger(k) && k >= 1)) throw new LtcError(`ivf: k must be a positive integer, got ${k}`);
  if (k > base.n) throw new LtcError(`ivf: k = ${k} exceeds the number of base rows (${base.n})`);
  if (queries.dim !== base.dim) {
    throw new LtcError(`ivf: queries have dim ${queries.dim} but the base has dim ${base.dim}`);
  }
  const self = options.queries === undefined || options.queries === base;
  // progress over both: the build's row–centroid products and the search's row–row products (its probe ranking
  // too unless the build's are kept), each a dot product of dim values; the scan estimated from the mean list length
  const p = ivfParams(base.n, options);
  const buildUnits = ivfBuildProducts(base.n, p);
  const searchUnits = (self ? 0 : queries.n * p.nlist) + queries.n * p.nprobe * (base.n / p.nlist);
  const share = buildUnits / (buildUnits + searchUnits);
  const report = options.onProgress;
  // a self search takes its probes from the build, which ranked every row already
  const index = await buildIvfIndex(base, {
    ...options,
    keepProbes: self,
    onProgress: report && ((f) => report(f * share)),
  });
  const t1 = performance.now();
  const r = await searchIvf(base, index, {
    k,
    queries: options.queries,
    probes: index.probes,
    onProgress: report && ((f) => report(share + f * (1 - share))),
  });
  const t2 = performance.now();
  return {
    nbrs: r.nbrs,
    dists: r.dists,
    params: index.params,
    stats: {
      trainRows: index.trainRows,
      emptyLists: r.emptyLists,
      largestList: r.largestList,
      scannedFraction: r.scannedFraction,
    },
    buildSeconds: index.seconds.train + index.seconds.assign,
    querySeconds: (t2 - t1) / 1000,
    phaseSeconds: { ...index.seconds, ...r.phaseSeconds },
    label: r.label,
  };
}

/** Label of an IVF run, recorded in sidecars: `cpu (ivf, onnxruntime-node)`. */
export function ivfLabel(ortLabel: string): string {
  return backendLabel({ kind: "cpu" }, `ivf, ${ortLabel}`);
}

const IVF_PARAM_NAMES = ["nlist", "nprobe", "chunkRows", "trainPerList", "iterations", "coarse", "seed", "screenBits"];

/**
 * The registry entry: parameters `nlist`, `nprobe`, `chunkRows`, `trainPerList`, `iterations`, `coarse`, `seed`,
 * `screenBits` ({@linkcode IvfOptions}).
 */
export const ivfBackend: IndexBackendEntry = {
  name: "ivf",
  open: async (params) => {
    const unknown = Object.keys(params).filter((name) => !IVF_PARAM_NAMES.includes(name));
    if (unknown.length) throw new LtcError(`ivf: unknown parameter ${unknown.join(", ")}`);
    const rt = await loadOrt();
    return {
      label: ivfLabel(rt.label),
      knn: async ({ base, queries, k, onProgress }) => {
        const r = await ivfKnn(base, { ...params, k, queries, onProgress });
        return { ...r, label: ivfLabel(r.label), params: { ...r.params } };
      },
    };
  },
};
