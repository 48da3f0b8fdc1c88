/**
 * What every kNN backend offers, so the searches in {@linkcode ./mod.ts} drive them the same way and a new backend
 * is one new file listed in {@linkcode ./registry.ts}:
 * - exact backends ({@linkcode ExactKnnBackend}: WebGPU, onnxruntime, TypeScript) return the faiss `IndexFlatIP`
 *   rows and the all-pairs similarity search; `--backend auto|webgpu|cpu` picks among them by the device they
 *   run on, the first of that device that opens on this machine winning;
 * - approximate indexes (HNSW, …) are picked by name and configured by numeric parameters.
 *
 * Every backend returns rows best first (similarity desc, ties by ascending id), k per query row, distance
 * `1 − similarity` in float32, id −1 / distance 1 where fewer than k neighbours were found.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import type { GpuContext } from "../device.ts";
import type { PairList } from "./pairs.ts";

/** One search: the k best base rows of every query row. */
export interface KnnSearch {
  base: Features;
  /** query rows (may be `base` itself) */
  queries: Features;
  k: number;
  /** called with the completed fraction */
  onProgress?: (fraction: number) => void;
}

/** The rows of a search: `k` per query row, row-major. */
export interface KnnRows {
  nbrs: Int32Array;
  dists: Float32Array;
  /** what a GPU backend's sweep cost in host synchronisation (absent on the CPU) */
  gpu?: GpuSweepStats;
}

/** Host synchronisation of a GPU search, as sidecars record it. */
export interface GpuSweepStats {
  /** times the host waited for the GPU (read-backs awaited together count once) */
  hostRoundTrips: number;
  /** command buffers submitted */
  submits: number;
  /** the kernel that ran, where a backend has several */
  kernel?: string;
}

/** A backend opened on this machine (device picked, runtime loaded). */
export interface KnnBackend {
  /** recorded in sidecars: `webgpu (<adapter>)`, `cpu (onnxruntime-node)`, `cpu (typescript)`, … */
  readonly label: string;
  knn(search: KnnSearch): Promise<KnnRows>;
}

/** An exact backend: IndexFlatIP rows, and every pair at or above a similarity. */
export interface ExactKnnBackend extends KnnBackend {
  /** Every pair i < j with float32 inner product ≥ minSim, by ascending i then j. */
  pairs(features: Features, options: { minSim: number; onProgress?: (fraction: number) => void }): Promise<PairList>;
}

/** Numeric parameters of an approximate index (each index checks its own names and values). */
export type IndexParams = Readonly<Record<string, number | undefined>>;

/** What an approximate index reports of one search. */
export interface IndexRun {
  label: string;
  params: Record<string, number>;
  buildSeconds: number;
  querySeconds: number;
}

/** An approximate index opened with its parameters. */
export interface IndexKnnBackend extends KnnBackend {
  /**
   * The search, with what sidecars record of it: the label of this run (e.g. the worker shards that ran), the
   * index's resolved parameters, and its build and query times.
   */
  knn(search: KnnSearch): Promise<KnnRows & IndexRun>;
}

/** A registry entry for an exact backend. */
export interface ExactBackendEntry {
  name: string;
  /** the resolved `--backend` it serves */
  device: "webgpu" | "cpu";
  /** The backend, or null when it cannot run here (e.g. no onnxruntime build loads). `gpu` is set for `webgpu`. */
  open(context: { gpu: GpuContext | null }): Promise<ExactKnnBackend | null>;
}

/** A registry entry for an approximate index, picked by name. */
export interface IndexBackendEntry {
  name: string;
  /** The index with these parameters (unknown names or bad values: an LtcError). */
  open(params: IndexParams): Promise<IndexKnnBackend>;
}
