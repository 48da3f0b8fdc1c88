/**
 * CDP single-model baseline (reference §9.2): kNN pairs with sim > th, then graph propagation. Exact.
 * @module
 */
import type { KnnGraph } from "../../shared/knn_file.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import type { Baseline } from "./baseline.ts";
import { type Clustering, clusteringToLabels, filterKnns, graphPropagation } from "../graph.ts";

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

/** `cdp`: the single-model CDP baseline. */
export const CDP: Baseline = {
  name: "cdp",
  input: "knn",
  paramString: (p) =>
    `${p.knn_method}_k_${p.knn}_th_${pyFloatStr(p.th_sim)}_maxsz_${p.max_sz}_step_${pyFloatStr(p.step)}`,
  run: async (p, data) => ({
    labels: clusteringToLabels(
      cdp(await data.knn(), { th: p.th_sim, maxSz: p.max_sz, step: p.step, maxIter: p.max_iter }),
    ),
  }),
};
