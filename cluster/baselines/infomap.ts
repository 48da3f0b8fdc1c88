/**
 * `infomap` baseline: the kNN graph's entries with similarity above `th_sim`, weighted by similarity, clustered by
 * minimising the two-level map equation (our own implementation, `cluster/infomap.ts`; not in the original's table —
 * later work reports it above every learned method of the seed on MS1M part1). The sidecar records the codelength.
 * @module
 */
import { pyFloatStr } from "../../shared/py_format.ts";
import { infomap, knnSimilarityGraph } from "../infomap.ts";
import type { Baseline } from "./baseline.ts";

/** `infomap`: kNN graph + the map equation. */
export const INFOMAP: Baseline = {
  name: "infomap",
  input: "knn",
  paramString: (p) => `${p.knn_method}_k_${p.knn}_th_${pyFloatStr(p.th_sim)}_trials_${p.trials}`,
  run: async (p, data) => {
    const graph = knnSimilarityGraph(await data.knn(), { thSim: p.th_sim });
    const r = infomap(graph, { trials: p.trials, seed: p.seed });
    return {
      labels: r.labels,
      extra: {
        infomap: {
          codelength_bits: r.codelength,
          one_module_codelength_bits: r.oneModuleCodelength,
          trial_codelengths_bits: r.trialCodelengths,
          modules: r.modules,
          links: graph.indices.length / 2,
        },
      },
    };
  },
};
