/**
 * The clustering baselines of the original's results table (reference §9) behind one driver with the original's
 * parameter names and output folder names (`tools/baseline_cluster.py`).
 * @module
 */
import { join } from "node:path";
import { knnFileName } from "../../shared/knn_file.ts";
import { relabelDense } from "../../shared/meta.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import { aro, knnAro } from "./aro.ts";
import { cdp } from "./cdp.ts";
import { chineseWhispers } from "./chinese_whispers.ts";
import { fastHac } from "./fast_hac.ts";
import { knnDbscan } from "./knn_dbscan.ts";
import { miniBatchKmeans } from "./mini_batch_kmeans.ts";
import { clusteringToLabels } from "../graph.ts";
import { FeatureCache, type KnnMethod, loadOrBuildKnn } from "../knn_source.ts";
import type { BackendChoice } from "../../gpu/device.ts";

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
