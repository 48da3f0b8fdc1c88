/**
 * KNN-DBSCAN baseline (reference §9.2): sklearn DBSCAN semantics on the kNN distance graph. Exact.
 * @module
 */
import type { KnnGraph } from "../../shared/knn_file.ts";
import { relabelDense } from "../../shared/meta.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import type { Baseline } from "./baseline.ts";
import { knnToCsr } from "../graph.ts";

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

/** `knn_dbscan`: DBSCAN on the kNN distance graph; noise becomes singletons. */
export const KNN_DBSCAN: Baseline = {
  name: "knn_dbscan",
  input: "knn",
  paramString: (p) =>
    `eps_${pyFloatStr(p.eps)}_min_${p.min_samples}_${p.knn_method}_k_${p.knn}_th_${pyFloatStr(p.th_sim)}`,
  run: async (p, data) => ({
    labels: relabelDense(knnDbscan(await data.knn(), { eps: p.eps, minSamples: p.min_samples, thSim: p.th_sim }), -1),
  }),
};
