/**
 * Chinese Whispers baseline (reference §9.2): the original's graph (kNN entries with sim ≥ th, undirected, a later
 * weight overwrites), node visiting order from Python's `random.shuffle` stream reproduced with MT19937. The original
 * returns labels cluster by cluster rather than by node (element i is not node i's label); we return them by node —
 * the original's reported CW numbers carry that bug.
 * @module
 */
import type { KnnGraph } from "../../shared/knn_file.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import { Mt19937 } from "../../shared/random.ts";
import type { Baseline } from "./baseline.ts";
import { type Clustering, clusteringToLabels, knnToCsr, labelsToClustering } from "../graph.ts";

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

/** `chinese_whispers`: the original's Chinese Whispers over the thresholded kNN graph. */
export const CHINESE_WHISPERS: Baseline = {
  name: "chinese_whispers",
  input: "knn",
  defaultSeed: 42,
  paramString: (p) => `${p.knn_method}_k_${p.knn}_th_${pyFloatStr(p.th_sim)}_iters_${p.iters}`,
  run: async (p, data) => ({
    labels: clusteringToLabels(chineseWhispers(await data.knn(), { thSim: p.th_sim, iters: p.iters, seed: p.seed })),
  }),
};
