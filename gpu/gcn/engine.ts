/**
 * What every GCN-D backend offers (the WebGPU kernels and the CPU twin), so detect/train/tests drive them the same
 * way. Inference uses a shared first-layer table: x·W₀ does not depend on the proposal, so it is computed once per
 * distinct node and every proposal gathers its rows (`rowSource` of a batch indexes that table). Training computes
 * x·W₀ per batch (the weights change every step) and `rowSource` indexes the feature rows.
 *
 * Runs of many batches are queued ({@linkcode GcnEngine.queueTrainSteps}, {@linkcode GcnEngine.queuePredict}): the
 * WebGPU engine uploads their packed graphs once, encodes several batches per submit and keeps losses and scores on
 * the device, so the host waits once per run (when it reads the results) instead of once per batch.
 * @module
 */
import type { PackedBatch } from "./graph.ts";
import type { GcnWeights, SgdHyper } from "./model.ts";

/** Result of a training forward/backward pass. */
export interface TrainStepResult {
  /** prediction per proposal */
  preds: Float32Array;
  /** MSE over the batch, as the original's loss */
  loss: number;
}

/** Results of a queued run, read later: the read is the run's one wait for the device. */
export interface Pending<T> {
  read(): Promise<T>;
}

/** One queued training step: forward, backward and SGD update on a batch. */
export interface TrainStep {
  /** `rowSource` indexes the feature rows; `labels` set */
  batch: PackedBatch;
  /** Dropout2d row scales per layer, or null (see {@linkcode GcnEngine.forwardBackward}) */
  masks: Float32Array[] | null;
  hyper: SgdHyper;
}

/** How often an engine made the host wait for the device, and submitted work to it (zero on the CPU). */
export interface SyncStats {
  /** waits for device results (read-backs awaited together count once) */
  hostRoundTrips: number;
  /** command buffers submitted */
  submits: number;
}

/** A GCN-D backend holding one set of weights (and, for training, the SGD momentum buffers). */
export interface GcnEngine {
  /** e.g. `cpu (onnxruntime)` or `webgpu (NVIDIA H100)` */
  readonly backend: string;
  /** running totals since the engine was created */
  readonly sync: SyncStats;
  /** Compute the shared first-layer table `features[rows[i]] · W₀` for inference. */
  setFirstLayerRows(features: Float32Array, rows: Int32Array): Promise<void>;
  /** Scores of a batch whose `rowSource` indexes the first-layer table (eval mode: no dropout). */
  predict(batch: PackedBatch): Promise<Float32Array>;
  /**
   * Forward and backward pass on a batch whose `rowSource` indexes `features` and whose `labels` are set. `masks[l]`
   * scales packed row r after layer l's ReLU (Dropout2d: 0 or 1/(1−p)); null means no dropout. Gradients stay in
   * the engine for {@linkcode GcnEngine.sgdStep} / {@linkcode GcnEngine.gradients}.
   */
  forwardBackward(batch: PackedBatch, features: Float32Array, masks: Float32Array[] | null): Promise<TrainStepResult>;
  /** The gradients of the last pass, in parameter order (tests, diagnostics). */
  gradients(): Promise<Float32Array[]>;
  /** One torch.optim.SGD step with the last gradients. */
  sgdStep(hyper: SgdHyper): Promise<void>;
  /**
   * Queue training steps in order (each: forward, backward, SGD step) without waiting for them; `read()` gives
   * each step's MSE loss. Gives the weights {@linkcode GcnEngine.forwardBackward} + {@linkcode GcnEngine.sgdStep}
   * per step would. `features` should be the same array from call to call (the WebGPU engine keeps it resident).
   */
  queueTrainSteps(steps: TrainStep[], features: Float32Array): Promise<Pending<Float64Array>>;
  /** Queue eval-mode scoring of batches as {@linkcode GcnEngine.predict} scores one; `read()` gives them in order. */
  queuePredict(batches: PackedBatch[]): Promise<Pending<Float32Array[]>>;
  /** Current weights. */
  weights(): Promise<GcnWeights>;
  /** Momentum buffers (null before the first step). */
  momentum(): Promise<Float32Array[] | null>;
  /** Release native resources. */
  dispose(): void;
}
