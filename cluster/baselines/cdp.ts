/**
 * CDP single-model baseline (reference §9.2): kNN pairs with sim > th, then graph propagation. Exact.
 * @module
 */
import type { KnnGraph } from "../../shared/knn_file.ts";
import { type Clustering, filterKnns, graphPropagation } from "../graph.ts";

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
