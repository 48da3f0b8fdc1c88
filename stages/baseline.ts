/**
 * Stage `baseline`: the clustering baselines of the original's results table (reference §9), one exported function
 * per method, plus the original driver's output layout (`tools/baseline_cluster.py`).
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
 * @module
 */
import { join } from "node:path";
import { isUpToDate, Timings, writeSidecar } from "../shared/artifact.ts";
import { type CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import type { Features } from "../shared/features.ts";
import {
  type Clustering,
  clusteringToLabels,
  connectedComponents,
  filterKnns,
  graphPropagation,
  labelsToClustering,
} from "../shared/graph.ts";
import { knnFileName, type KnnGraph } from "../shared/knn_file.ts";
import { readLabels, relabelDense, writeLabels } from "../shared/meta.ts";
import { type AllMetrics, countClusters, evaluateAll, formatMetrics } from "../shared/metrics.ts";
import { log, Progress } from "../shared/progress.ts";
import type { BackendChoice } from "../gpu/device.ts";
import {
  dotAt,
  exactKnn,
  gemmErrorBound,
  pairsWithinDistance,
  RowMinCandidatesOrt,
  ScaledGemmOrt,
} from "../gpu/knn/mod.ts";
import { FeatureCache, KNN_METHODS, type KnnMethod, loadOrBuildKnn, pyFloatStr } from "./proposals.ts";

// ---------------------------------------------------------------------------------------------------------------
// Random streams

/**
 * MT19937, seeded either like CPython's `random.seed(int)` (`init_by_array`) or like numpy's legacy
 * `RandomState(int)` (`init_genrand`), with the draws both libraries build on.
 */
export class Mt19937 {
  readonly #mt = new Uint32Array(624);
  #idx = 625;

  private constructor() {}

  /** Seeded as numpy's `RandomState(seed)` (0 ≤ seed < 2³²). */
  static numpy(seed: number): Mt19937 {
    const r = new Mt19937();
    r.#initGenrand(seed >>> 0);
    return r;
  }

  /** Seeded as CPython's `random.seed(seed)` for a non-negative integer below 2⁵³. */
  static python(seed: number): Mt19937 {
    const r = new Mt19937();
    let a = Math.abs(Math.trunc(seed));
    const key: number[] = [];
    do {
      key.push(a % 0x100000000);
      a = Math.floor(a / 0x100000000);
    } while (a > 0);
    r.#initByArray(key);
    return r;
  }

  #initGenrand(s: number): void {
    const mt = this.#mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.#idx = 624;
  }

  #initByArray(key: number[]): void {
    const mt = this.#mt;
    this.#initGenrand(19650218);
    let i = 1, j = 0;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++, j++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /** Next 32-bit output. */
  nextU32(): number {
    const mt = this.#mt;
    if (this.#idx >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#idx = 0;
    }
    let y = mt[this.#idx++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Python's `getrandbits(k)` for 1 ≤ k ≤ 32. */
  getrandbits(k: number): number {
    return this.nextU32() >>> (32 - k);
  }

  /** Python's `random.shuffle(x)` (in place). */
  pyShuffle(x: Int32Array): void {
    for (let i = x.length - 1; i >= 1; i--) {
      const n = i + 1;
      const k = 32 - Math.clz32(n);
      let r = this.getrandbits(k);
      while (r >= n) r = this.getrandbits(k);
      const t = x[i]!;
      x[i] = x[r]!;
      x[r] = t;
    }
  }

  /** numpy's legacy bounded draw in [0, max] by masked rejection (`randint`, `shuffle`). */
  #masked(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    while ((v = (this.nextU32() & mask) >>> 0) > max);
    return v;
  }

  /** numpy `RandomState.randint(low, high)`: one integer in [low, high). */
  randint(low: number, high: number): number {
    return low + this.#masked(high - low - 1);
  }

  /** numpy `RandomState.random_sample()`: a 53-bit double in [0, 1). */
  randomSample(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** numpy legacy `RandomState.choice(n, size, replace=False)` = `permutation(n)[:size]`. */
  choiceNoReplace(n: number, size: number): Int32Array {
    const arr = new Int32Array(n);
    for (let i = 0; i < n; i++) arr[i] = i;
    for (let i = n - 1; i >= 1; i--) {
      const j = this.#masked(i);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
    return arr.slice(0, size);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Methods

/**
 * The original's sparse kNN matrix (`fast_knns2spmat`) as CSR rows with sorted columns: entries (i, j), j ≠ i,
 * j ≠ −1, whose weight w (= similarity `1 − dist` when `useSim`, else the distance) is ≥ `th`; a neighbour listed
 * twice in a row is summed, as scipy does when building the matrix.
 */
export function knnToCsr(
  knn: KnnGraph,
  options: { th: number; useSim: boolean },
): { indptr: Int32Array; indices: Int32Array; data: Float64Array } {
  const { n, k, nbrs, dists } = knn;
  const indptr = new Int32Array(n + 1);
  const slot = new Int32Array(n).fill(-1);
  let indices = new Int32Array(0), data = new Float64Array(0);
  // Two passes over the same entries: the first only counts each row's distinct kept columns, so the second writes
  // into arrays of their final size (an N × k float64 scratch would be 375 MB at MS1M part1 size).
  for (const fill of [false, true]) {
    slot.fill(-1);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const start = m;
      for (let t = 0; t < k; t++) {
        const j = nbrs[i * k + t]!;
        if (j < 0 || j === i) continue;
        const d = dists[i * k + t]!;
        const w = options.useSim ? 1 - d : d;
        if (!(w >= options.th)) continue;
        if (slot[j]! >= start) {
          if (fill) data[slot[j]!]! += w;
          continue;
        }
        slot[j] = m;
        if (fill) indices[m] = j, data[m] = w;
        m++;
      }
      if (!fill) continue;
      // Sort this row by column (rows are short).
      const len = m - start;
      if (len > 1) {
        const order = Array.from({ length: len }, (_, t) => start + t).sort((x, y) => indices[x]! - indices[y]!);
        const ci = order.map((p) => indices[p]!), cd = order.map((p) => data[p]!);
        for (let t = 0; t < len; t++) {
          indices[start + t] = ci[t]!;
          data[start + t] = cd[t]!;
        }
      }
      indptr[i + 1] = m;
    }
    if (!fill) indices = new Int32Array(m), data = new Float64Array(m);
  }
  return { indptr, indices, data };
}

/**
 * KNN-DBSCAN (reference §9.2): sklearn `DBSCAN(eps, min_samples, metric='precomputed')` on the kNN distance matrix
 * of entries with distance ≥ `thSim` (the original passes `th_sim` to `fast_knns2spmat` with `use_sim=False`).
 * Returns sklearn's labels: cluster ids by discovery, −1 for noise.
 */
export function knnDbscan(knn: KnnGraph, options: { eps: number; minSamples: number; thSim?: number }): Int32Array {
  const { n } = knn;
  const { eps, minSamples } = options;
  const csr = knnToCsr(knn, { th: options.thSim ?? 0, useSim: false });
  // Neighbourhoods: self (sklearn stores the diagonal explicitly) plus stored entries with d ≤ eps.
  const nbStart = new Int32Array(n + 1);
  const nb: number[] = [];
  for (let i = 0; i < n; i++) {
    nb.push(i);
    for (let p = csr.indptr[i]!; p < csr.indptr[i + 1]!; p++) if (csr.data[p]! <= eps) nb.push(csr.indices[p]!);
    nbStart[i + 1] = nb.length;
  }
  const isCore = new Uint8Array(n);
  for (let i = 0; i < n; i++) isCore[i] = nbStart[i + 1]! - nbStart[i]! >= minSamples ? 1 : 0;
  const labels = new Int32Array(n).fill(-1);
  let label = 0;
  const stack: number[] = [];
  for (let seed = 0; seed < n; seed++) {
    if (labels[seed] !== -1 || !isCore[seed]) continue;
    let i = seed;
    for (;;) {
      if (labels[i] === -1) {
        labels[i] = label;
        if (isCore[i]) {
          for (let p = nbStart[i]!; p < nbStart[i + 1]!; p++) if (labels[nb[p]!] === -1) stack.push(nb[p]!);
        }
      }
      if (stack.length === 0) break;
      i = stack.pop()!;
    }
    label++;
  }
  return labels;
}

/** CDP single model: kNN pairs with sim > th (strict), then graph propagation (reference §9.2). */
export function cdp(
  knn: KnnGraph,
  options: { th: number; maxSz?: number; step?: number; maxIter?: number },
): Clustering {
  const pairs = filterKnns(knn, options.th, { strict: true });
  return graphPropagation(pairs, {
    maxSz: options.maxSz ?? 600,
    step: options.step ?? 0.05,
    maxIter: options.maxIter ?? 100,
    n: knn.n,
  }).clustering;
}

/**
 * FastHAC with single linkage cut at Euclidean distance `distance` (fastcluster + `fcluster(criterion='distance')`):
 * connected components of all pairs with float64 distance ≤ the cut.
 */
export async function fastHac(
  features: Features,
  options: { distance: number; hmethod?: string; backend?: BackendChoice },
): Promise<Clustering> {
  const h = options.hmethod ?? "single";
  if (h !== "single") {
    throw new LtcError(`baseline fast_hac: hmethod '${h}' is not implemented (only 'single', the original's default)`);
  }
  const pairs = await pairsWithinDistance(features, { maxDist: options.distance, backend: options.backend });
  return connectedComponents(features.n, pairs.i, pairs.j);
}

/**
 * Approximate rank-order clustering (reference §9.2) on kNN rows (`nbrs`, N × k, position 0 taken as self):
 * for position Oi ≥ 1 of row i holding j, if i sits at position Oj − 1 of row j the distance is
 * (|row_i[0:Oi] \ row_j| + |row_j[0:Oj] \ row_i|) / min(Oi, Oj), else 9999; position 0 has distance 0. Entries with
 * distance ≤ 1 − thSim link i → j, and clusters are BFS trees over those directed links from seeds in index order.
 */
export function aroCluster(nbrs: Int32Array, options: { n: number; k: number; thSim: number }): Clustering {
  const { n, k } = options;
  const thresh = 1 - options.thSim;
  const inRowI = new Int32Array(n).fill(-1);
  const inRowJ = new Int32Array(n).fill(-1);
  const counted = new Int32Array(n).fill(-1);
  let stampJ = 0, stampC = 0;
  const linkStart = new Int32Array(n + 1);
  const links: number[] = [];
  for (let i = 0; i < n; i++) {
    const ri = i * k;
    for (let t = 0; t < k; t++) if (nbrs[ri + t]! >= 0) inRowI[nbrs[ri + t]!] = i;
    for (let oi = 0; oi < k; oi++) {
      const j = nbrs[ri + oi]!;
      if (j < 0) continue;
      if (oi === 0) {
        links.push(j);
        continue;
      }
      const rj = j * k;
      let p = -1;
      for (let t = 0; t < k; t++) {
        if (nbrs[rj + t] === i) {
          p = t;
          break;
        }
      }
      if (p < 0) continue;
      const oj = p + 1;
      stampJ++;
      for (let t = 0; t < k; t++) if (nbrs[rj + t]! >= 0) inRowJ[nbrs[rj + t]!] = stampJ;
      let dij = 0, dji = 0;
      stampC++;
      for (let t = 0; t < oi; t++) {
        const x = nbrs[ri + t]!;
        if (counted[x] === stampC) continue;
        counted[x] = stampC;
        if (inRowJ[x] !== stampJ) dij++;
      }
      stampC++;
      for (let t = 0; t < oj; t++) {
        const x = nbrs[rj + t]!;
        if (x < 0 || counted[x] === stampC) continue;
        counted[x] = stampC;
        if (inRowI[x] !== i) dji++;
      }
      if ((dij + dji) / Math.min(oi, oj) <= thresh) links.push(j);
    }
    linkStart[i + 1] = links.length;
  }
  const label = new Int32Array(n).fill(-1);
  let count = 0;
  const queue = new Int32Array(n);
  for (let seed = 0; seed < n; seed++) {
    if (label[seed] !== -1) continue;
    const c = count++;
    let head = 0, tail = 0;
    queue[tail++] = seed;
    label[seed] = c;
    while (head < tail) {
      const u = queue[head++]!;
      for (let p = linkStart[u]!; p < linkStart[u + 1]!; p++) {
        const v = links[p]!;
        if (label[v] === -1) {
          label[v] = c;
          queue[tail++] = v;
        }
      }
    }
  }
  // Number clusters by smallest member for a canonical result.
  return labelsToClustering(label);
}

/** ARO on the exact kNN of the features (k neighbours, self first). */
export async function aro(
  features: Features,
  options: { knn: number; thSim: number; backend?: BackendChoice },
): Promise<Clustering> {
  const res = await exactKnn(features, { k: options.knn, backend: options.backend });
  return aroCluster(res.graph.nbrs, { n: features.n, k: options.knn, thSim: options.thSim });
}

/** ARO on a stored kNN graph, rows in stored order. */
export function knnAro(knn: KnnGraph, options: { knn?: number; thSim: number }): Clustering {
  const k = options.knn ?? knn.k;
  if (k > knn.k) throw new LtcError(`knn_aro: k = ${k} exceeds the kNN graph's ${knn.k} neighbours`);
  let nbrs = knn.nbrs;
  if (k < knn.k) {
    nbrs = new Int32Array(knn.n * k);
    for (let i = 0; i < knn.n; i++) nbrs.set(knn.nbrs.subarray(i * knn.k, i * knn.k + k), i * k);
  }
  return aroCluster(nbrs, { n: knn.n, k, thSim: options.thSim });
}

/**
 * Chinese Whispers (reference §9.2) on the kNN graph with similarity ≥ `thSim`: `iters` rounds, each visiting all
 * nodes in a Python-`random.shuffle` order (seeded like `random.seed(seed)`), every node with neighbours taking the
 * neighbour cluster of largest total edge weight (ties: the cluster met first in neighbour order). Neighbour order
 * and weights follow the original's networkx graph built from the CSR matrix. Returns labels by node.
 */
export function chineseWhispers(knn: KnnGraph, options: { thSim: number; iters?: number; seed?: number }): Clustering {
  const { n } = knn;
  const iters = options.iters ?? 20;
  const csr = knnToCsr(knn, { th: options.thSim, useSim: true });
  const e = csr.indices.length;
  // Undirected pairs: first occurrence (in CSR order) fixes neighbour order, the last one the weight.
  const rowOf = new Int32Array(e);
  for (let i = 0; i < n; i++) for (let p = csr.indptr[i]!; p < csr.indptr[i + 1]!; p++) rowOf[p] = i;
  const loStart = new Int32Array(n + 1);
  for (let p = 0; p < e; p++) loStart[Math.min(rowOf[p]!, csr.indices[p]!) + 1]!++;
  for (let i = 0; i < n; i++) loStart[i + 1]! += loStart[i]!;
  const byLo = new Int32Array(e);
  const fill = loStart.slice(0, n);
  for (let p = 0; p < e; p++) byLo[fill[Math.min(rowOf[p]!, csr.indices[p]!)]!++] = p;
  const firstAt = new Int32Array(e).fill(-1); // entry position → pair id, for first occurrences
  const pairW: number[] = [];
  const pairA: number[] = [], pairB: number[] = [];
  const seen = new Int32Array(n).fill(-1);
  const pairOf = new Int32Array(n);
  for (let lo = 0; lo < n; lo++) {
    for (let q = loStart[lo]!; q < loStart[lo + 1]!; q++) {
      const p = byLo[q]!;
      const hi = Math.max(rowOf[p]!, csr.indices[p]!);
      if (seen[hi] === lo) {
        pairW[pairOf[hi]!] = csr.data[p]!;
        continue;
      }
      seen[hi] = lo;
      pairOf[hi] = pairW.length;
      firstAt[p] = pairW.length;
      pairA.push(lo);
      pairB.push(hi);
      pairW.push(csr.data[p]!);
    }
  }
  const adjStart = new Int32Array(n + 1);
  for (let t = 0; t < pairA.length; t++) {
    adjStart[pairA[t]! + 1]!++;
    adjStart[pairB[t]! + 1]!++;
  }
  for (let i = 0; i < n; i++) adjStart[i + 1]! += adjStart[i]!;
  const adj = new Int32Array(adjStart[n]!);
  const adjW = new Float64Array(adjStart[n]!);
  const afill = adjStart.slice(0, n);
  for (let p = 0; p < e; p++) {
    const t = firstAt[p]!;
    if (t < 0) continue;
    const a = pairA[t]!, b = pairB[t]!;
    adj[afill[a]!] = b;
    adjW[afill[a]!++] = pairW[t]!;
    adj[afill[b]!] = a;
    adjW[afill[b]!++] = pairW[t]!;
  }
  const cluster = new Int32Array(n);
  for (let i = 0; i < n; i++) cluster[i] = i;
  const rng = Mt19937.python(options.seed ?? 42);
  const order = new Int32Array(n);
  const total = new Float64Array(n);
  const touched: number[] = [];
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < n; i++) order[i] = i;
    rng.pyShuffle(order);
    for (const v of order) {
      if (adjStart[v + 1] === adjStart[v]) continue;
      touched.length = 0;
      for (let p = adjStart[v]!; p < adjStart[v + 1]!; p++) {
        const c = cluster[adj[p]!]!;
        if (total[c] === 0 && !touched.includes(c)) touched.push(c);
        total[c]! += adjW[p]!;
      }
      let best = touched[0]!, bestW = total[best]!;
      for (const c of touched) {
        if (total[c]! > bestW) {
          best = c;
          bestW = total[c]!;
        }
      }
      for (const c of touched) total[c] = 0;
      cluster[v] = best;
    }
  }
  return labelsToClustering(cluster);
}

// ---------------------------------------------------------------------------------------------------------------
// MiniBatchKMeans

/**
 * Where MiniBatchKMeans computes its distances. `js`: scalar float64 loops. `ort`: an onnxruntime float32 SGEMM
 * screens every row–centre pair, and the pairs its error bound ({@linkcode gemmErrorBound}) cannot decide are
 * recomputed by the scalar formula, so the labels, distances and random draws equal the scalar path's. `auto`
 * (default): `ort` for the calls large enough to pay for an onnxruntime run, `js` when onnxruntime cannot load.
 */
export type KmeansEngine = "auto" | "js" | "ort";

/** Multiply-adds below which `auto` keeps a distance call on the scalar loops (an onnxruntime run costs ~0.1 ms). */
const ORT_MIN_WORK = 1 << 21;
/** Product entries of one onnxruntime run (16 MiB of float32 held inside onnxruntime). */
const ORT_BLOCK_ENTRIES = 1 << 22;
/** Query rows of one nearest-centre run: the SGEMM's best M on this 2-core machine (≈ 110 GFLOP/s at k = 8573). */
const ORT_MAX_BLOCK_ROWS = 256;

/** The distance engine of one MiniBatchKMeans call: the onnxruntime sessions (null: scalar only), their threshold. */
interface KmeansDistances {
  ort: { gemm: ScaledGemmOrt; near: RowMinCandidatesOrt } | null;
  minWork: number;
}

async function kmeansDistances(
  engine: KmeansEngine,
  options: { x: Float32Array; dim: number; work: number },
): Promise<KmeansDistances> {
  const scalar = { ort: null, minWork: Infinity };
  if (engine === "js" || (engine === "auto" && options.work < ORT_MIN_WORK)) return scalar;
  // the float32 products must not overflow for the error bounds to hold (features are finite, centres are means
  // or copies of rows)
  let maxAbs = 0;
  for (const v of options.x) maxAbs = Math.max(maxAbs, Math.abs(v));
  if (maxAbs > 1e15) {
    if (engine === "ort") throw new LtcError(`mini_batch_kmeans: feature values up to ${maxAbs} overflow float32`);
    return scalar;
  }
  try {
    const gemm = await ScaledGemmOrt.create(options.dim, { alpha: -2 });
    const near = await RowMinCandidatesOrt.create(options.dim, { alpha: -2 });
    return { ort: { gemm, near }, minWork: engine === "ort" ? 0 : ORT_MIN_WORK };
  } catch (err) {
    if (engine === "ort") throw err;
    log(`mini_batch_kmeans: ${(err as Error).message}; computing distances on the scalar path (slow at scale)`);
    return scalar;
  }
}

/** The onnxruntime sessions to use for a call of `work` multiply-adds, or null for the scalar loops. */
function ortFor(engine: KmeansDistances, work: number): { gemm: ScaledGemmOrt; near: RowMinCandidatesOrt } | null {
  return work >= engine.minWork ? engine.ort : null;
}

/**
 * The scalar path's squared distances between feature rows and k centres: float64 sums of the float32 products
 * (four interleaved partial sums), `‖x‖² − 2x·c + ‖c‖²` clamped at 0. Both engines decide with these values.
 */
class CentreDistances {
  readonly cnorm: Float64Array;
  readonly #x: Float32Array;
  readonly #centers: Float32Array;
  readonly #dim: number;

  constructor(x: Float32Array, centers: Float32Array, options: { dim: number; k: number }) {
    const { dim, k } = options;
    this.#x = x;
    this.#centers = centers;
    this.#dim = dim;
    this.cnorm = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += centers[c * dim + t]! * centers[c * dim + t]!;
      this.cnorm[c] = s;
    }
  }

  /** ‖x‖² of the row starting at offset `o`. */
  rowNorm(o: number): number {
    const x = this.#x, dim = this.#dim;
    let xn = 0;
    for (let t = 0; t < dim; t++) xn += x[o + t]! * x[o + t]!;
    return xn;
  }

  /** Squared distance of the row at offset `o` (with ‖x‖² = `xn`) to centre `c`. */
  dist(o: number, xn: number, c: number): number {
    const dim = this.#dim;
    return Math.max(0, xn - 2 * dotAt(this.#x, o, this.#centers, c * dim, dim) + this.cnorm[c]!);
  }
}

/** Squared Euclidean distances in float64 and the nearest centre of each row (first on ties). */
async function nearest(
  x: Float32Array,
  rows: ArrayLike<number>,
  centers: Float32Array,
  options: { dim: number; k: number; engine: KmeansDistances; progress?: Progress },
): Promise<{ label: Int32Array; dist: Float64Array }> {
  const { dim, k } = options;
  const out = new NearestCentres(x, rows, { centers, dim, k });
  const ort = ortFor(options.engine, rows.length * k * dim);
  if (ort === null) {
    for (let r0 = 0; r0 < rows.length; r0 += 1024) {
      const r1 = Math.min(rows.length, r0 + 1024);
      for (let r = r0; r < r1; r++) out.scan(r);
      options.progress?.tick(r1 - r0);
    }
    return out;
  }
  const bias = Float32Array.from(out.geo.cnorm);
  const blockRows = Math.max(1, Math.min(ORT_MAX_BLOCK_ROWS, Math.floor(ORT_BLOCK_ENTRIES / k)));
  const block = new Float32Array(blockRows * dim), margin = new Float32Array(blockRows);
  for (let r0 = 0; r0 < rows.length; r0 += blockRows) {
    const r1 = Math.min(rows.length, r0 + blockRows);
    for (let r = r0; r < r1; r++) {
      block.set(x.subarray(rows[r]! * dim, rows[r]! * dim + dim), (r - r0) * dim);
      margin[r - r0] = out.margin(r);
    }
    const near = await ort.near.run(block.subarray(0, (r1 - r0) * dim), {
      b: centers,
      bias,
      margin: margin.subarray(0, r1 - r0),
    });
    out.decide(near, { r0, r1 });
    options.progress?.tick(r1 - r0);
  }
  return out;
}

/** The nearest centre and its scalar distance for each of `rows`, filled row by row. */
class NearestCentres {
  readonly label: Int32Array;
  readonly dist: Float64Array;
  readonly geo: CentreDistances;
  readonly #rows: ArrayLike<number>;
  readonly #dim: number;
  readonly #k: number;
  /** error bound per unit magnitude of a float32 product entry */
  readonly #unit: number;
  readonly #cmax2: number;

  constructor(x: Float32Array, rows: ArrayLike<number>, options: { centers: Float32Array; dim: number; k: number }) {
    const { dim, k } = options;
    this.geo = new CentreDistances(x, options.centers, { dim, k });
    this.label = new Int32Array(rows.length);
    this.dist = new Float64Array(rows.length);
    this.#rows = rows;
    this.#dim = dim;
    this.#k = k;
    this.#unit = gemmErrorBound(dim, 1, 0);
    let cmax2 = 0;
    for (const cn of this.geo.cnorm) cmax2 = Math.max(cmax2, cn);
    this.#cmax2 = cmax2;
  }

  /** Row `r` by the scalar scan over all centres. */
  scan(r: number): void {
    const geo = this.geo, k = this.#k;
    const o = this.#rows[r]! * this.#dim, xn = geo.rowNorm(o);
    let best = 0, bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const d = geo.dist(o, xn, c);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    this.label[r] = best;
    this.dist[r] = bestD;
  }

  /**
   * The screening margin of row `r` for `S = ‖c‖² − 2x·c` in float32. An entry is off by at most err (its bound at
   * the largest centre norm) and the scalar values by far less than 1e-12 of their scale, so only the centres whose
   * entry is within 2·err + that slack of the row's smallest entry can hold the scalar minimum. Widened for the
   * float32 rounding of the margin and of `min + margin` in the graph.
   */
  margin(r: number): number {
    const xn = this.geo.rowNorm(this.#rows[r]! * this.#dim), cmax2 = this.#cmax2;
    const scale = cmax2 + 2 * Math.sqrt(xn * cmax2);
    return (1 + 2 ** -20) * ((2 * this.#unit + 2 ** -21) * scale + 1e-12 * (1 + xn + cmax2));
  }

  /**
   * Rows r0..r1 from their screened centres (positions relative to r0, row-major): the scalar distances of those
   * alone decide, in index order (first wins on ties, as in the scan). A row without any (a NaN minimum) is scanned.
   */
  decide(near: { rows: Int32Array; cols: Int32Array }, range: { r0: number; r1: number }): void {
    const geo = this.geo, rows = this.#rows, dim = this.#dim;
    const nr = near.rows, nc = near.cols;
    let t = 0;
    for (let r = range.r0; r < range.r1; r++) {
      const o = rows[r]! * dim, xn = geo.rowNorm(o), local = r - range.r0;
      let best = -1, bestD = Infinity;
      for (; t < nr.length && nr[t] === local; t++) {
        const d = geo.dist(o, xn, nc[t]!);
        if (d < bestD || best < 0) {
          bestD = d;
          best = nc[t]!;
        }
      }
      if (best < 0 || !(bestD < Infinity)) this.scan(r);
      else {
        this.label[r] = best;
        this.dist[r] = bestD;
      }
    }
    if (t !== nr.length) throw new LtcError("mini_batch_kmeans: onnxruntime returned positions out of row order");
  }
}

async function kmeansPlusPlus(
  x: Float32Array,
  rows: Int32Array,
  options: { dim: number; k: number; rng: Mt19937; engine: KmeansDistances; progress?: Progress },
): Promise<Float32Array> {
  const { dim, k, rng } = options;
  const m = rows.length;
  const centers = new Float32Array(k * dim);
  const sq = (a: number, b: number) => {
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const d = x[rows[a]! * dim + t]! - x[rows[b]! * dim + t]!;
      s += d * d;
    }
    return s;
  };
  const trials = 2 + Math.floor(Math.log(k));
  const gemm = ortFor(options.engine, trials * m * dim)?.gemm ?? null;
  const screen = gemm ? new KppScreen(x, rows, { dim, trials }) : null;
  const first = rng.randint(0, m);
  centers.set(x.subarray(rows[first]! * dim, rows[first]! * dim + dim), 0);
  let closest = new Float64Array(m);
  let pot = 0;
  for (let r = 0; r < m; r++) pot += closest[r] = sq(first, r);
  const cum = new Float64Array(m);
  const cands = new Int32Array(trials);
  const pots = new Float64Array(trials);
  // per-trial minimum distances; the winner's array becomes `closest` and `closest`'s takes its place
  const trialDist = Array.from({ length: trials }, () => new Float64Array(m));
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let r = 0; r < m; r++) cum[r] = acc += closest[r]!;
    for (let t = 0; t < trials; t++) {
      const target = rng.randomSample() * pot;
      // np.searchsorted (left): first index with cum ≥ target, clipped to m − 1.
      let lo = 0, hi = m;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cum[mid]! < target) lo = mid + 1;
        else hi = mid;
      }
      cands[t] = Math.min(lo, m - 1);
    }
    if (gemm && screen) await screen.potentials(gemm, { cands, closest, trialDist, pots, sq });
    else {
      for (let t = 0; t < trials; t++) {
        const cand = cands[t]!, d = trialDist[t]!;
        let p = 0;
        for (let r = 0; r < m; r++) p += d[r] = Math.min(closest[r]!, sq(cand, r));
        pots[t] = p;
      }
    }
    let bestPot = Infinity, bestTrial = -1;
    for (let t = 0; t < trials; t++) {
      if (pots[t]! < bestPot) {
        bestPot = pots[t]!;
        bestTrial = t;
      }
    }
    const bestCand = bestTrial < 0 ? 0 : cands[bestTrial]!;
    pot = bestPot;
    if (bestTrial >= 0) [closest, trialDist[bestTrial]] = [trialDist[bestTrial]!, closest];
    centers.set(x.subarray(rows[bestCand]! * dim, rows[bestCand]! * dim + dim), c * dim);
    options.progress?.tick();
  }
  return centers;
}

/**
 * k-means++ candidate potentials through onnxruntime: `S = ‖x‖² − 2q·x` for the candidates q against the sample
 * rows x (float32), `+ ‖q‖²` in float64. Where S minus its error bound is still ≥ the row's current closest
 * distance, the scalar `min(closest, sq)` is `closest`; elsewhere `sq` is computed. Potentials sum in row order as
 * on the scalar path.
 */
class KppScreen {
  readonly #sample: Float32Array;
  readonly #xn: Float64Array;
  readonly #bias: Float32Array;
  /** bound of row r against a candidate of norm ‖q‖ and squared norm cn: errConst[r] + ‖q‖·errSlope[r] + 1e-12·cn
   * (the 1e-12 terms cover the scalar sums' float64 rounding) */
  readonly #errConst: Float64Array;
  readonly #errSlope: Float64Array;
  readonly #queries: Float32Array;
  readonly #dim: number;
  readonly #chunkRows: number;

  constructor(x: Float32Array, rows: Int32Array, options: { dim: number; trials: number }) {
    const { dim, trials } = options;
    const m = rows.length;
    this.#dim = dim;
    this.#sample = new Float32Array(m * dim);
    for (let r = 0; r < m; r++) this.#sample.set(x.subarray(rows[r]! * dim, rows[r]! * dim + dim), r * dim);
    this.#xn = new Float64Array(m);
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += this.#sample[r * dim + t]! * this.#sample[r * dim + t]!;
      this.#xn[r] = s;
    }
    this.#bias = Float32Array.from(this.#xn);
    const unit = gemmErrorBound(dim, 1, 0);
    this.#errConst = this.#xn.map((v) => unit * v + 1e-12 * (1 + v));
    this.#errSlope = this.#xn.map((v) => 2 * unit * Math.sqrt(v));
    this.#queries = new Float32Array(trials * dim);
    this.#chunkRows = Math.max(1, Math.floor(ORT_BLOCK_ENTRIES / trials));
  }

  /** Fill `trialDist[t]` with min(closest, sq(cands[t], ·)) and `pots[t]` with its sum, for every trial t. */
  async potentials(gemm: ScaledGemmOrt, step: KppStep): Promise<void> {
    const dim = this.#dim, m = this.#xn.length;
    step.cands.forEach((cand, t) => this.#queries.set(this.#sample.subarray(cand * dim, cand * dim + dim), t * dim));
    step.pots.fill(0);
    for (let r0 = 0; r0 < m; r0 += this.#chunkRows) {
      const r1 = Math.min(m, r0 + this.#chunkRows);
      const s = await gemm.run(this.#queries, this.#sample.subarray(r0 * dim, r1 * dim), this.#bias.subarray(r0, r1));
      for (let t = 0; t < step.cands.length; t++) this.#trial(s, step, { t, r0, r1 });
    }
  }

  #trial(s: Float32Array, step: KppStep, at: { t: number; r0: number; r1: number }): void {
    const { t, r0, r1 } = at;
    const { closest, sq } = step;
    const errConst = this.#errConst, errSlope = this.#errSlope;
    const cand = step.cands[t]!, d = step.trialDist[t]!;
    const cn = this.#xn[cand]!, qn = Math.sqrt(cn), shift = cn - 1e-12 * cn;
    let p = step.pots[t]!;
    for (let r = r0, so = t * (r1 - r0) - r0; r < r1; r++) {
      const cl = closest[r]!;
      const lower = s[so + r]! + shift - (errConst[r]! + qn * errSlope[r]!);
      p += d[r] = lower >= cl ? cl : Math.min(cl, sq(cand, r));
    }
    step.pots[t] = p;
  }
}

/** One k-means++ step's candidates and the arrays its potentials are written to. */
interface KppStep {
  cands: Int32Array;
  closest: Float64Array;
  trialDist: Float64Array[];
  pots: Float64Array;
  sq: (a: number, b: number) => number;
}

/** One sklearn 0.22 `_mini_batch_step` on `rows`; returns the batch inertia. */
async function miniBatchStep(
  x: Float32Array,
  rows: Int32Array,
  state: {
    centers: Float32Array;
    counts: Float64Array;
    dim: number;
    k: number;
    engine: KmeansDistances;
    sums?: Float64Array;
  },
  reassign: { rng: Mt19937; ratio: number } | null,
): Promise<number> {
  const { centers, counts, dim, k } = state;
  const { label, dist } = await nearest(x, rows, centers, { dim, k, engine: state.engine });
  let inertia = 0;
  for (const d of dist) inertia += d;
  if (reassign && reassign.ratio > 0) {
    let max = 0;
    for (const c of counts) max = Math.max(max, c);
    const to = new Uint8Array(k);
    let nre = 0;
    for (let c = 0; c < k; c++) {
      if (counts[c]! < reassign.ratio * max) {
        to[c] = 1;
        nre++;
      }
    }
    if (nre > 0.5 * rows.length) {
      const order = Array.from({ length: k }, (_, c) => c).sort((a, b) => counts[a]! - counts[b]! || a - b);
      for (const c of order.slice(Math.floor(0.5 * rows.length))) {
        if (to[c]) {
          to[c] = 0;
          nre--;
        }
      }
    }
    if (nre > 0) {
      const picks = reassign.rng.choiceNoReplace(rows.length, nre);
      let t = 0;
      for (let c = 0; c < k; c++) {
        if (!to[c]) continue;
        const r = rows[picks[t++]!]!;
        centers.set(x.subarray(r * dim, r * dim + dim), c * dim);
      }
    }
    let minKeep = Infinity;
    for (let c = 0; c < k; c++) if (!to[c]) minKeep = Math.min(minKeep, counts[c]!);
    for (let c = 0; c < k; c++) if (to[c]) counts[c] = minKeep;
  }
  // per-centre sums of the batch rows, in a zeroed buffer kept across steps (only touched centres are cleared)
  const sums = state.sums ??= new Float64Array(k * dim);
  const w = new Float64Array(k);
  for (let r = 0; r < rows.length; r++) {
    const c = label[r]!, o = rows[r]! * dim;
    w[c]!++;
    for (let t = 0; t < dim; t++) sums[c * dim + t]! += x[o + t]!;
  }
  for (let c = 0; c < k; c++) {
    if (w[c] === 0) continue;
    const total = counts[c]! + w[c]!;
    for (let t = 0; t < dim; t++) {
      centers[c * dim + t] = (centers[c * dim + t]! * counts[c]! + sums[c * dim + t]!) / total;
    }
    sums.fill(0, c * dim, c * dim + dim);
    counts[c] = total;
  }
  return inertia;
}

/**
 * sklearn 0.22 `MiniBatchKMeans(n_clusters, batch_size, random_state=seed).fit(X).labels_` (see module doc).
 * `engine` picks how distances are computed ({@linkcode KmeansEngine}); every engine gives the same labels.
 */
export async function miniBatchKmeans(
  features: Features,
  options: {
    nClusters: number;
    batchSize: number;
    seed?: number;
    maxIter?: number;
    nInit?: number;
    engine?: KmeansEngine;
  },
): Promise<Int32Array> {
  const { n, dim, data: x } = features;
  const k = options.nClusters, bs = options.batchSize;
  if (!(Number.isInteger(k) && k >= 1 && k <= n)) {
    throw new LtcError(`mini_batch_kmeans: n_clusters must be an integer in 1..${n}, got ${k}`);
  }
  if (!(Number.isInteger(bs) && bs >= 1)) throw new LtcError(`mini_batch_kmeans: batch_size must be ≥ 1, got ${bs}`);
  const engine = await kmeansDistances(options.engine ?? "auto", { x, dim, work: n * k * dim });
  try {
    return await miniBatchKmeansRun(x, { ...options, n, dim, k, bs, engine });
  } finally {
    await engine.ort?.gemm.release();
    await engine.ort?.near.release();
  }
}

async function miniBatchKmeansRun(
  x: Float32Array,
  options: {
    n: number;
    dim: number;
    k: number;
    bs: number;
    engine: KmeansDistances;
    seed?: number;
    maxIter?: number;
    nInit?: number;
  },
): Promise<Int32Array> {
  const { n, dim, k, bs, engine } = options;
  const rng = Mt19937.numpy(options.seed ?? 0);
  const maxIter = options.maxIter ?? 100, nInit = options.nInit ?? 3;
  const nIter = Math.floor(maxIter * Math.ceil(n / bs));
  const initSize = Math.min(3 * bs, n);
  const draw = (size: number) => {
    const out = new Int32Array(size);
    for (let t = 0; t < size; t++) out[t] = rng.randint(0, n);
    return out;
  };
  const valid = draw(initSize);
  let best: { centers: Float32Array; counts: Float64Array } | null = null;
  let bestInertia = Infinity;
  for (let run = 0; run < nInit; run++) {
    let initRows: Int32Array;
    if (initSize < n) initRows = draw(initSize < k ? 3 * k : initSize);
    else initRows = Int32Array.from({ length: n }, (_, i) => i);
    const progress = new Progress(`mini_batch_kmeans k-means++ ${run + 1}/${nInit}`, k - 1);
    const centers = await kmeansPlusPlus(x, initRows, { dim, k, rng, engine, progress });
    progress.done();
    const counts = new Float64Array(k);
    await miniBatchStep(x, valid, { centers, counts, dim, k, engine }, null);
    let inertia = 0;
    for (const d of (await nearest(x, valid, centers, { dim, k, engine })).dist) inertia += d;
    if (best === null || inertia < bestInertia) {
      best = { centers, counts };
      bestInertia = inertia;
    }
  }
  const state = { ...best!, dim, k, engine };
  let ewa: number | null = null, ewaMin: number | null = null, noImprovement = 0;
  const alpha = Math.min(1, (bs * 2) / (n + 1));
  const progress = new Progress("mini_batch_kmeans steps", nIter);
  for (let it = 0; it < nIter; it++) {
    const rows = draw(bs);
    let minCount = Infinity;
    for (const c of state.counts) minCount = Math.min(minCount, c);
    const doReassign = (it + 1) % (10 + Math.trunc(minCount)) === 0;
    const inertia = (await miniBatchStep(x, rows, state, doReassign ? { rng, ratio: 0.01 } : null)) / bs;
    ewa = ewa === null ? inertia : ewa * (1 - alpha) + inertia * alpha;
    if (ewaMin === null || ewa < ewaMin) {
      noImprovement = 0;
      ewaMin = ewa;
    } else noImprovement++;
    progress.tick(1, `ewa inertia ${ewa.toPrecision(6)}`);
    if (noImprovement >= 10) break;
  }
  progress.done();
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const assign = new Progress("mini_batch_kmeans labels", n);
  const { label } = await nearest(x, all, state.centers, { dim, k, engine, progress: assign });
  assign.done();
  return label;
}

// ---------------------------------------------------------------------------------------------------------------
// Driver

/** Baseline method names accepted by the stage. */
export const BASELINE_METHODS = [
  "aro",
  "knn_aro",
  "mini_batch_kmeans",
  "knn_dbscan",
  "fast_hac",
  "cdp",
  "chinese_whispers",
] as const;
/** One of {@linkcode BASELINE_METHODS}. */
export type BaselineMethod = typeof BASELINE_METHODS[number];

/** The driver's parameters (the original's argument names, snake_case, with its defaults). */
export interface BaselineParams {
  method: BaselineMethod;
  knn: number;
  th_sim: number;
  knn_method: KnnMethod;
  eps: number;
  min_samples: number;
  distance: number;
  hmethod: string;
  n_clusters: number;
  batch_size: number;
  seed: number;
  iters: number;
  max_sz: number;
  step: number;
  max_iter: number;
}

/** Defaults of `tools/baseline_cluster.py` (+ CDP's max_sz / step / max_iter). */
export const BASELINE_DEFAULTS: Omit<BaselineParams, "method"> = {
  knn: 80,
  th_sim: 0.7,
  knn_method: "faiss",
  eps: 0.7,
  min_samples: 10,
  distance: 0.7,
  hmethod: "single",
  n_clusters: 2,
  batch_size: 100,
  seed: 42,
  iters: 20,
  max_sz: 600,
  step: 0.05,
  max_iter: 100,
};

/** The original's output folder suffix for a method's parameters. */
export function baselineParamString(p: BaselineParams): string {
  const f = pyFloatStr;
  switch (p.method) {
    case "aro":
      return `k_${p.knn}_th_${f(p.th_sim)}`;
    case "knn_aro":
      return `${p.knn_method}_k_${p.knn}_th_${f(p.th_sim)}`;
    case "knn_dbscan":
      return `eps_${f(p.eps)}_min_${p.min_samples}_${p.knn_method}_k_${p.knn}_th_${f(p.th_sim)}`;
    case "fast_hac":
      return `dist_${f(p.distance)}_hmethod_${p.hmethod}`;
    case "mini_batch_kmeans":
      return `n_${p.n_clusters}_bs_${p.batch_size}`;
    case "chinese_whispers":
      return `${p.knn_method}_k_${p.knn}_th_${f(p.th_sim)}_iters_${p.iters}`;
    case "cdp":
      return `${p.knn_method}_k_${p.knn}_th_${f(p.th_sim)}_maxsz_${p.max_sz}_step_${f(p.step)}`;
  }
}

/** Where a baseline's inputs live. */
export interface BaselineData {
  features: FeatureCache;
  /** folder of kNN files (`prefix/knns/name`) */
  knnPrefix: string;
  backend?: BackendChoice;
}

/**
 * Run one baseline and return the labels `write_meta` would write (−1 labels dropped → singletons), plus the kNN
 * file used (if any).
 */
export async function runBaseline(
  p: BaselineParams,
  data: BaselineData,
): Promise<{ labels: Int32Array; knnPath?: string }> {
  const knnPath = join(data.knnPrefix, knnFileName(p.knn_method, p.knn));
  const knn = () =>
    loadOrBuildKnn(knnPath, { features: data.features, k: p.knn, knnMethod: p.knn_method, backend: data.backend });
  switch (p.method) {
    case "knn_dbscan":
      return {
        labels: relabelDense(knnDbscan(await knn(), { eps: p.eps, minSamples: p.min_samples, thSim: p.th_sim }), -1),
        knnPath,
      };
    case "cdp": {
      const c = cdp(await knn(), { th: p.th_sim, maxSz: p.max_sz, step: p.step, maxIter: p.max_iter });
      return { labels: clusteringToLabels(c), knnPath };
    }
    case "knn_aro":
      return { labels: clusteringToLabels(knnAro(await knn(), { knn: p.knn, thSim: p.th_sim })), knnPath };
    case "chinese_whispers": {
      const c = chineseWhispers(await knn(), { thSim: p.th_sim, iters: p.iters, seed: p.seed });
      return { labels: clusteringToLabels(c), knnPath };
    }
    case "aro": {
      const c = await aro(data.features.get(), { knn: p.knn, thSim: p.th_sim, backend: data.backend });
      return { labels: clusteringToLabels(c) };
    }
    case "fast_hac": {
      const c = await fastHac(data.features.get(), { distance: p.distance, hmethod: p.hmethod, backend: data.backend });
      return { labels: clusteringToLabels(c) };
    }
    case "mini_batch_kmeans": {
      const labels = await miniBatchKmeans(data.features.get(), {
        nClusters: p.n_clusters,
        batchSize: p.batch_size,
        seed: p.seed,
      });
      return { labels: relabelDense(labels) };
    }
  }
}

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
    "max-sz": { type: "int", default: BASELINE_DEFAULTS.max_sz, help: "CDP max cluster size" },
    step: { type: "number", default: BASELINE_DEFAULTS.step, help: "CDP threshold step" },
    "max-iter": { type: "int", default: BASELINE_DEFAULTS.max_iter, help: "CDP propagation rounds" },
    force: { type: "boolean", help: "recompute even if the output is up to date" },
    backend: { type: "string", choices: ["auto", "webgpu", "cpu"], default: "auto", help: "kNN / pair backend" },
  },
};

async function main(args: CliArgs): Promise<void> {
  const method = args.reqStr("method") as BaselineMethod;
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
    seed: args.optNum("seed") ?? (method === "mini_batch_kmeans" ? 0 : 42),
    iters: args.num("iters"),
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
  let gtPath = args.str("gt-labels");
  if (gtPath === undefined) {
    const guess = join(prefix, "labels", `${name}.meta`);
    try {
      if (Deno.statSync(guess).isFile) gtPath = guess;
    } catch { /* no ground truth */ }
  }
  const knnPath = join(prefix, "knns", name, knnFileName(p.knn_method, p.knn));
  const usesKnn = !["aro", "fast_hac", "mini_batch_kmeans"].includes(method);
  const params = { ...p, dim: args.num("dim"), normalize: !args.bool("no-normalize"), center: args.bool("center") };
  const timings = new Timings();
  let labels: Int32Array;
  const inputs = usesKnn ? [knnPath] : [featPath];
  if (!args.bool("force") && existsFile(inputs[0]!) && isUpToDate(out, params, inputs)) {
    log(`baseline: ${out} is up to date`);
    labels = readLabels(out);
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
    writeLabels(out, labels);
  }
  let metrics: AllMetrics | undefined;
  if (gtPath) {
    const gt = readLabels(gtPath);
    if (gt.length !== labels.length) {
      throw new LtcError(`${gtPath}: has ${gt.length} labels but the ${method} result has ${labels.length}`);
    }
    metrics = evaluateAll(gt, labels);
  }
  writeSidecar(out, {
    stage: "baseline",
    params,
    inputs,
    timings,
    extra: { clusters: countClusters(labels), ...(metrics ? { metrics, gt_labels: gtPath } : {}) },
  });
  console.log(`${method}: ${countClusters(labels)} clusters, written to ${out}`);
  if (metrics) console.log(formatMetrics(metrics));
}

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  await runMain(() => main(parseCli(spec, Deno.args)));
}
