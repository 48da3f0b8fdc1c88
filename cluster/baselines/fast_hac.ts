/**
 * FastHAC baseline (reference §9.2), single linkage only: connected components of all pairs within the Euclidean
 * cut, found by the blocked all-pairs search and decided in float64. Exact.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import type { Baseline } from "./baseline.ts";
import { type Clustering, clusteringToLabels, connectedComponents } from "../graph.ts";
import type { BackendChoice } from "../../gpu/device.ts";
import { pairsWithinDistance } from "../../gpu/knn/mod.ts";

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

/** `fast_hac`: single-linkage HAC cut at a Euclidean distance. */
export const FAST_HAC: Baseline = {
  name: "fast_hac",
  input: "features",
  paramString: (p) => `dist_${pyFloatStr(p.distance)}_hmethod_${p.hmethod}`,
  run: async (p, data) => ({
    labels: clusteringToLabels(
      await fastHac(data.features(), { distance: p.distance, hmethod: p.hmethod, backend: data.backend }),
    ),
  }),
};
