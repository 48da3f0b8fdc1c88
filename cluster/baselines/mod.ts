/**
 * The clustering baselines of the original's results table (reference §9) behind one driver with the original's
 * parameter names and output folder names (`tools/baseline_cluster.py`). Each baseline is one file exporting a
 * {@linkcode Baseline}; {@linkcode BASELINES} lists them.
 * @module
 */
import { join } from "node:path";
import { LtcError } from "../../shared/errors.ts";
import { knnFileName } from "../../shared/knn_file.ts";
import { ARO, KNN_ARO } from "./aro.ts";
import type { Baseline, BaselineParams, BaselineResult } from "./baseline.ts";
import { CDP } from "./cdp.ts";
import { CHINESE_WHISPERS } from "./chinese_whispers.ts";
import { FAST_HAC } from "./fast_hac.ts";
import { INFOMAP } from "./infomap.ts";
import { KNN_DBSCAN } from "./knn_dbscan.ts";
import { MINI_BATCH_KMEANS } from "./mini_batch_kmeans.ts";
import { type FeatureCache, loadOrBuildKnn } from "../knn_source.ts";
import type { BackendChoice } from "../../gpu/device.ts";

export * from "./baseline.ts";
export { aro, aroCluster, knnAro } from "./aro.ts";
export { cdp } from "./cdp.ts";
export { chineseWhispers } from "./chinese_whispers.ts";
export { fastHac } from "./fast_hac.ts";
export { knnDbscan } from "./knn_dbscan.ts";
export { type KmeansEngine, miniBatchKmeans } from "./mini_batch_kmeans.ts";

/** Every baseline the stage offers, in the order `--help` lists them. */
export const BASELINES: readonly Baseline[] = [
  ARO,
  KNN_ARO,
  MINI_BATCH_KMEANS,
  KNN_DBSCAN,
  FAST_HAC,
  CDP,
  CHINESE_WHISPERS,
  INFOMAP,
];

/** Baseline method names accepted by the stage. */
export const BASELINE_METHODS: readonly string[] = BASELINES.map((b) => b.name);

/** The baseline called `name`; an unknown name is an error listing the known ones. */
export function baselineByName(name: string): Baseline {
  const b = BASELINES.find((x) => x.name === name);
  if (!b) throw new LtcError(`baseline: unknown method '${name}' (one of ${BASELINE_METHODS.join(", ")})`);
  return b;
}

/** The original's output folder suffix for a method's parameters. */
export function baselineParamString(p: BaselineParams): string {
  return baselineByName(p.method).paramString(p);
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
): Promise<BaselineResult & { knnPath?: string }> {
  const baseline = baselineByName(p.method);
  const knnPath = join(data.knnPrefix, knnFileName(p.knn_method, p.knn));
  const result = await baseline.run(p, {
    knn: () =>
      loadOrBuildKnn(knnPath, { features: data.features, k: p.knn, knnMethod: p.knn_method, backend: data.backend }),
    features: () => data.features.get(),
    backend: data.backend,
  });
  return baseline.input === "knn" ? { ...result, knnPath } : result;
}
