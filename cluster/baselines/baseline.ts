/**
 * What every baseline is: a named method of the original's driver (`tools/baseline_cluster.py`) with its output
 * folder suffix and a run over the dataset's kNN graph or features. A new baseline is one file exporting a
 * {@linkcode Baseline}, listed once in `cluster/baselines/mod.ts`.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import type { KnnGraph } from "../../shared/knn_file.ts";
import type { KnnMethod } from "../knn_source.ts";
import type { BackendChoice } from "../../gpu/device.ts";

/** The driver's parameters (the original's argument names, snake_case, with its defaults). */
export interface BaselineParams {
  /** the baseline's name ({@linkcode Baseline.name}) */
  method: string;
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
  /** Infomap trials (the lowest codelength wins) */
  trials: number;
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
  trials: 1,
  max_sz: 600,
  step: 0.05,
  max_iter: 100,
};

/** A baseline's inputs, each loaded on first use. */
export interface BaselineInputs {
  /** the kNN graph named by `knn_method` and `knn` (built when the file is missing) */
  knn(): Promise<KnnGraph>;
  /** the features, normalised as asked */
  features(): Features;
  /** compute backend for searches the method runs itself */
  backend?: BackendChoice;
}

/** One clustering baseline. */
export interface Baseline {
  /** the original's `--method` name; also part of the output folder name */
  name: string;
  /** what the result depends on: the kNN file, or the features */
  input: "knn" | "features";
  /** seed when none is given (the original's: 42 for Python's `random`, 0 for sklearn's `random_state`) */
  defaultSeed?: number;
  /** the original's output folder suffix for these parameters */
  paramString(p: BaselineParams): string;
  /** the clustering, and anything worth keeping in the sidecar */
  run(p: BaselineParams, inputs: BaselineInputs): Promise<BaselineResult>;
}

/** What a baseline run gives. */
export interface BaselineResult {
  /** labels as the original's `write_meta` writes them (−1 dropped, so noise becomes singletons), by node */
  labels: Int32Array;
  /** method-specific facts for the sidecar (e.g. a codelength) */
  extra?: Record<string, unknown>;
}
