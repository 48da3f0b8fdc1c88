/**
 * Approximate kNN with an inverted-file index (IVF: faiss `IndexIVFFlat` with inner product), on onnxruntime.
 *
 * Build: `nlist` coarse centroids by spherical k-means (Lloyd: assign by largest inner product, centroid = the
 * normalised mean of its rows) on a seeded random sample of `trainPerList · nlist` rows, starting from `nlist`
 * sample rows; every base row then joins the list of its nearest centroid. Search: every query ranks the centroids
 * by inner product and scans the lists of its `nprobe` best. The scan is organised by list so that onnxruntime does
 * matrix products: for each list, the queries probing it are gathered into blocks and multiplied by the list's rows
 * (one SGEMM per block), and every query row keeps a running top-k ({@linkcode RowTopK}: similarity desc, ties by
 * ascending id) merged across its lists. So every candidate's similarity is the same float32 SGEMM inner product
 * the exact onnxruntime search computes, and with `nprobe = nlist` the rows equal exact search, ties included.
 *
 * Centroid ranking: one Gemm → TopK graph (TopK keeps the lower index among equal values), used for the k-means
 * assignments, the base rows' lists and the queries' probes. When the queries are the base rows one pass gives
 * both, and a row's own list is its first probe, so a row always finds itself (as faiss's IVF does).
 *
 * Lists: an empty cluster during training is re-seeded with the training row least similar to its centroid (the
 * worst served row), so training ends with `nlist` centroids; a list can still end up empty when every base row
 * prefers another centroid — a query that probes it scans nothing there (documented fallback, counted in
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
import { createSession, loadOrt, type OrtRuntime, type OrtSession } from "../ort.ts";
import type { IndexBackendEntry } from "./backend.ts";
import { RowTopK } from "./topk.ts";

const F32 = OnnxType.FLOAT, I32 = OnnxType.INT32;

/** IVF parameters (all but k optional: defaults from {@linkcode ivfParams}). */
export interface IvfOptions {
  /** neighbours per query row (self included) */
  k: number;
  /** number of lists (coarse centroids); default {@linkcode defaultNlist} of the base row count */
  nlist?: number;
  /** lists scanned per query; default {@linkcode DEFAULT_NPROBE} (at most nlist) */
  nprobe?: number;
  /** training sample rows per centroid (default 50; the sample is all rows when that exceeds them) */
  trainPerList?: number;
  /** Lloyd iterations of the coarse k-means (default 10) */
  iterations?: number;
  /** seed of the training sample and initial centroids (default 100) */
  seed?: number;
  /** called with the completed fraction */
  onProgress?: (fraction: number) => void;
}

/** Resolved IVF parameters, as recorded in sidecars. */
export interface IvfParams {
  nlist: number;
  nprobe: number;
  trainPerList: number;
  iterations: number;
  seed: number;
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

/** Default lists scanned per query (synthetic benchmark, recall@80 ≥ 0.99 at 98K and 584K rows: bench/ivf.ts). */
export const DEFAULT_NPROBE = 48;

/** Default number of lists for `n` base rows: 4·√n (rounded), at least 1 and at most n. */
export function defaultNlist(n: number): number {
  return Math.max(1, Math.min(n, Math.round(4 * Math.sqrt(n))));
}

/**
 * Fill in defaults for `n` base rows and validate. Explicit bad values are errors (`nlist > n`, `nprobe > nlist`,
 * non-positive or non-integer values); the default nprobe is capped at nlist.
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
  const nprobe = options.nprobe ?? Math.min(nlist, DEFAULT_NPROBE);
  check("nprobe", nprobe, 1);
  if (nprobe > nlist) throw new LtcError(`ivf: nprobe (${nprobe}) exceeds nlist (${nlist})`);
  const p = {
    nlist,
    nprobe,
    trainPerList: options.trainPerList ?? 50,
    iterations: options.iterations ?? 10,
    seed: options.seed ?? 100,
  };
  check("trainPerList", p.trainPerList, 1);
  check("iterations", p.iterations, 0);
  check("seed", p.seed, 0);
  return p;
}

/** Entries of one similarity block held inside onnxruntime (16 MiB of float32). */
const BLOCK_ENTRIES = 1 << 22;
/** Most query rows of one list product (the SGEMM's M). */
const MAX_QUERY_BLOCK = 8192;
/** Most rows of one centroid-ranking run. */
const MAX_RANK_BLOCK = 2048;

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

/** Graph of one list product: `S = Q · Xᵀ`. */
function productModel(dim: number): OnnxModel {
  return {
    nodes: [{ op: "Gemm", inputs: ["Q", "X"], outputs: ["S"], attrs: { transB: 1 } }],
    inputs: [{ name: "Q", type: F32, dims: ["b", dim] }, { name: "X", type: F32, dims: ["c", dim] }],
    outputs: [{ name: "S", type: F32, dims: ["b", "c"] }],
  };
}

/** The two onnxruntime sessions of an IVF search. */
class IvfSessions {
  private constructor(
    readonly rt: OrtRuntime,
    readonly rankSession: OrtSession,
    readonly productSession: OrtSession,
    readonly dim: number,
  ) {}

  static async create(dim: number): Promise<IvfSessions> {
    const rt = await loadOrt();
    // TypeScript runs between every two runs (gathers, top-k merges): worker threads must not spin meanwhile
    const rank = await createSession(rt, rankModel(dim), { spin: false });
    const product = await createSession(rt, productModel(dim), { spin: false });
    return new IvfSessions(rt, rank, product, dim);
  }

  /**
   * The `count` most similar centroids of each of the `rows` rows of `x` (row-major): ids and similarities,
   * `count` per row, best first (ties: lower centroid id first).
   */
  async nearest(
    x: Float32Array,
    rows: number,
    opts: { centroids: Float32Array; nlist: number; count: number },
  ): Promise<{ ids: Int32Array; sims: Float32Array }> {
    const { centroids, nlist, count } = opts;
    const { Tensor } = this.rt.ort;
    const dim = this.dim;
    const ids = new Int32Array(rows * count), sims = new Float32Array(rows * count);
    const c = new Tensor("float32", centroids.subarray(0, nlist * dim), [nlist, dim]);
    const kk = new Tensor("int64", BigInt64Array.of(BigInt(count)), [1]);
    const block = Math.max(1, Math.min(MAX_RANK_BLOCK, Math.floor(BLOCK_ENTRIES / nlist)));
    for (let r0 = 0; r0 < rows; r0 += block) {
      const r1 = Math.min(rows, r0 + block);
      const a = new Tensor("float32", x.subarray(r0 * dim, r1 * dim), [r1 - r0, dim]);
      const out = await this.rankSession.run({ A: a, C: c, K: kk });
      ids.set(out.I!.data as Int32Array, r0 * count);
      sims.set(out.V!.data as Float32Array, r0 * count);
    }
    return { ids, sims };
  }

  /** `S = Q · Xᵀ` for row-major q (b × dim) and x (c × dim). */
  async multiply(q: Float32Array, x: Float32Array): Promise<Float32Array> {
    const { Tensor } = this.rt.ort;
    const dim = this.dim;
    const out = await this.productSession.run({
      Q: new Tensor("float32", q, [q.length / dim, dim]),
      X: new Tensor("float32", x, [x.length / dim, dim]),
    });
    return out.S!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.rankSession.release?.();
    await this.productSession.release?.();
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
 * Coarse centroids (nlist × dim, unit norm unless a cluster's rows sum to zero) by spherical k-means on a seeded
 * sample (see the module header).
 */
async function trainCentroids(
  base: Features,
  params: IvfParams,
  sessions: IvfSessions,
): Promise<{ centroids: Float32Array; trainRows: number }> {
  const { nlist, iterations } = params;
  const dim = base.dim;
  const trainRows = Math.min(base.n, params.trainPerList * nlist);
  const sample = sampleIds(base.n, trainRows, new Rng(params.seed, 0x1f5));
  const train = gather(base.data, dim, { ids: sample, from: 0, to: trainRows, out: new Float32Array(trainRows * dim) });
  // the first nlist sample rows (a random draw) start the centroids
  const centroids = train.slice(0, nlist * dim);
  const sums = new Float64Array(nlist * dim);
  const counts = new Int32Array(nlist);
  for (let it = 0; it < iterations; it++) {
    const { ids: label, sims } = await sessions.nearest(train, trainRows, { centroids, nlist, count: 1 });
    sums.fill(0);
    counts.fill(0);
    for (let r = 0; r < trainRows; r++) {
      const c = label[r]!;
      counts[c]!++;
      for (let t = 0; t < dim; t++) sums[c * dim + t]! += train[r * dim + t]!;
    }
    // empty clusters take the worst-served rows (lowest similarity to their centroid; ties by row), one each
    const empty: number[] = [];
    for (let c = 0; c < nlist; c++) if (counts[c] === 0) empty.push(c);
    if (empty.length) {
      const order = Int32Array.from({ length: trainRows }, (_, r) => r).sort((a, b) => sims[a]! - sims[b]! || a - b);
      empty.forEach((c, e) => centroids.set(train.subarray(order[e]! * dim, order[e]! * dim + dim), c * dim));
    }
    for (let c = 0; c < nlist; c++) {
      if (counts[c] === 0) continue;
      let ss = 0;
      for (let t = 0; t < dim; t++) ss += sums[c * dim + t]! ** 2;
      if (!(ss > 0)) continue; // rows summing to zero: keep the previous centroid
      const inv = 1 / Math.sqrt(ss);
      for (let t = 0; t < dim; t++) centroids[c * dim + t] = sums[c * dim + t]! * inv;
    }
  }
  return { centroids, trainRows };
}

/**
 * Rows grouped by list: row r belongs to the lists `lists[r·stride + p]` for ranks p in [from, to);
 * `start[l]..start[l+1]` index `members`, ascending row ids within a list.
 */
function groupByList(lists: Int32Array, opts: { nlist: number; stride: number; from: number; to: number }) {
  const { nlist, stride, from, to } = opts;
  const rows = lists.length / stride;
  const start = new Int32Array(nlist + 1);
  for (let r = 0; r < rows; r++) for (let p = from; p < to; p++) start[lists[r * stride + p]! + 1]!++;
  for (let l = 0; l < nlist; l++) start[l + 1]! += start[l]!;
  const fill = start.slice(0, nlist);
  const members = new Int32Array(start[nlist]!);
  for (let r = 0; r < rows; r++) for (let p = from; p < to; p++) members[fill[lists[r * stride + p]!]!++] = r;
  return { start, members };
}

/**
 * Probe ranks scanned by the first pass: each query's nearest lists, which set its top-k threshold early (synthetic
 * benchmark, 98K rows, nprobe 48: 162 heap insertions per row with 2, 175 with 1, 181 with 3, 416 in one pass).
 */
const FIRST_PASS_PROBES = 2;

/** The lists' rows and buffers shared by the passes of one search. */
interface ScanState {
  base: Features;
  queries: Features;
  lists: { start: Int32Array; members: Int32Array };
  top: RowTopK;
  sessions: IvfSessions;
  xbuf: Float32Array;
  qbuf: Float32Array;
  onPairs: (pairs: number) => void;
}

/**
 * One pass: for every list, the queries probing it at the pass's ranks (`probing`), in blocks, multiplied by the
 * list's rows, each product row merged into its query's top-k.
 */
async function scanPass(state: ScanState, probing: { start: Int32Array; members: Int32Array }): Promise<void> {
  const { base, queries, lists, top, sessions, xbuf, qbuf } = state;
  const dim = base.dim, nlist = lists.start.length - 1;
  for (let l = 0; l < nlist; l++) {
    const l0 = lists.start[l]!, l1 = lists.start[l + 1]!, len = l1 - l0;
    const p0 = probing.start[l]!, p1 = probing.start[l + 1]!;
    if (len === 0 || p0 === p1) continue;
    const x = gather(base.data, dim, { ids: lists.members, from: l0, to: l1, out: xbuf });
    const qb = Math.max(1, Math.min(MAX_QUERY_BLOCK, Math.floor(BLOCK_ENTRIES / len)));
    for (let b0 = p0; b0 < p1; b0 += qb) {
      const b1 = Math.min(p1, b0 + qb);
      const q = gather(queries.data, dim, { ids: probing.members, from: b0, to: b1, out: qbuf });
      const s = await sessions.multiply(q, x);
      for (let r = b0; r < b1; r++) {
        top.offerGathered(probing.members[r]!, s, { off: (r - b0) * len, len, ids: lists.members, idOff: l0 });
      }
      state.onPairs((b1 - b0) * len);
    }
  }
}

/** Result of {@linkcode ivfKnn}. */
export interface IvfResult {
  nbrs: Int32Array;
  dists: Float32Array;
  params: IvfParams;
  stats: IvfStats;
  /** training and assigning the base rows (self search: training only; the one ranking pass counts as query) */
  buildSeconds: number;
  /** ranking the queries' probes and scanning the lists */
  querySeconds: number;
  /** which onnxruntime build ran */
  label: string;
}

/** IVF kNN of every query row (default: the base rows) among the base rows (see the module header). */
export async function ivfKnn(base: Features, options: IvfOptions & { queries?: Features }): Promise<IvfResult> {
  const { k } = options;
  const queries = options.queries ?? base;
  const self = queries === base;
  const { dim } = base;
  if (!(Number.isInteger(k) && k >= 1)) throw new LtcError(`ivf: k must be a positive integer, got ${k}`);
  if (k > base.n) throw new LtcError(`ivf: k = ${k} exceeds the number of base rows (${base.n})`);
  if (queries.dim !== dim) throw new LtcError(`ivf: queries have dim ${queries.dim} but the base has dim ${dim}`);
  if (base.data.length < base.n * dim || queries.data.length < queries.n * dim) {
    throw new LtcError(`ivf: the data holds fewer values than rows × dim`);
  }
  const params = ivfParams(base.n, options);
  const { nlist, nprobe } = params;
  const sessions = await IvfSessions.create(dim);
  try {
    const t0 = performance.now();
    const { centroids, trainRows } = await trainCentroids(base, params, sessions);
    const home = self ? null : (await sessions.nearest(base.data, base.n, { centroids, nlist, count: 1 })).ids;
    const t1 = performance.now();
    const probes = (await sessions.nearest(queries.data, queries.n, { centroids, nlist, count: nprobe })).ids;
    // a base row's list is its best centroid: the first probe when the queries are the base rows
    const lists = groupByList(home ?? probes, { nlist, stride: home ? 1 : nprobe, from: 0, to: 1 });
    // two passes (nearest lists first, then the rest) so most later candidates fall below a query's threshold at
    // one comparison instead of entering its heap
    const split = Math.min(nprobe, FIRST_PASS_PROBES);
    const passes = [[0, split], [split, nprobe]].filter(([a, b]) => b! > a!).map(([from, to]) =>
      groupByList(probes, { nlist, stride: nprobe, from: from!, to: to! })
    );
    let largestList = 0, emptyLists = 0, total = 0;
    for (let l = 0; l < nlist; l++) {
      const len = lists.start[l + 1]! - lists.start[l]!;
      largestList = Math.max(largestList, len);
      if (len === 0) emptyLists++;
      for (const probing of passes) total += len * (probing.start[l + 1]! - probing.start[l]!);
    }
    const top = new RowTopK(queries.n, k);
    let done = 0;
    const state: ScanState = {
      base,
      queries,
      lists,
      top,
      sessions,
      xbuf: new Float32Array(largestList * dim),
      qbuf: new Float32Array(Math.min(queries.n, MAX_QUERY_BLOCK) * dim),
      onPairs: (pairs) => {
        done += pairs;
        options.onProgress?.(done / total);
      },
    };
    for (const probing of passes) await scanPass(state, probing);
    const { nbrs, dists } = top.finishInPlace();
    const t2 = performance.now();
    return {
      nbrs,
      dists,
      params,
      stats: { trainRows, emptyLists, largestList, scannedFraction: total / (queries.n * base.n) },
      buildSeconds: (t1 - t0) / 1000,
      querySeconds: (t2 - t1) / 1000,
      label: sessions.rt.label,
    };
  } finally {
    await sessions.release();
  }
}

/** Label of an IVF run, recorded in sidecars: `cpu (ivf, onnxruntime-node)`. */
export function ivfLabel(ortLabel: string): string {
  return backendLabel({ kind: "cpu" }, `ivf, ${ortLabel}`);
}

const IVF_PARAM_NAMES = ["nlist", "nprobe", "trainPerList", "iterations", "seed"];

/** The registry entry: parameters `nlist`, `nprobe`, `trainPerList`, `iterations`, `seed` ({@linkcode IvfOptions}). */
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
