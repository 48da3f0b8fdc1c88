/**
 * Approximate rank-order clustering (reference §9.2): `aro` on the exact kNN of the features (the original queries
 * a pyflann kd-tree, an approximate search we do not reproduce), `knn_aro` on the stored kNN file rows. BFS seeds go
 * in index order (the original's follow Python set order), so labels can differ slightly; metrics stay within ~0.005.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import type { KnnGraph } from "../../shared/knn_file.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import type { Baseline } from "./baseline.ts";
import { type Clustering, clusteringToLabels, labelsToClustering } from "../graph.ts";
import type { BackendChoice } from "../../gpu/device.ts";
import { exactKnn } from "../../gpu/knn/mod.ts";

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

/** `aro`: approximate rank-order on the exact kNN of the features. */
export const ARO: Baseline = {
  name: "aro",
  input: "features",
  paramString: (p) => `k_${p.knn}_th_${pyFloatStr(p.th_sim)}`,
  run: async (p, data) => ({
    labels: clusteringToLabels(await aro(data.features(), { knn: p.knn, thSim: p.th_sim, backend: data.backend })),
  }),
};

/** `knn_aro`: approximate rank-order on the stored kNN file rows. */
export const KNN_ARO: Baseline = {
  name: "knn_aro",
  input: "knn",
  paramString: (p) => `${p.knn_method}_k_${p.knn}_th_${pyFloatStr(p.th_sim)}`,
  run: async (p, data) => ({ labels: clusteringToLabels(knnAro(await data.knn(), { knn: p.knn, thSim: p.th_sim })) }),
};
