/**
 * What every GCN-D backend offers (the WebGPU kernels and the CPU twin), so detect/train/tests drive them the same
 * way. Inference uses a shared first-layer table: x·W₀ does not depend on the proposal, so it is computed once per
 * distinct node and every proposal gathers its rows (`rowSource` of a batch indexes that table). Training computes
 * x·W₀ per batch (the weights change every step) and `rowSource` indexes the feature rows.
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

/** A GCN-D backend holding one set of weights (and, for training, the SGD momentum buffers). */
export interface GcnEngine {
  /** e.g. `cpu (onnxruntime)` or `webgpu (NVIDIA H100)` */
  readonly backend: string;
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
  /** Current weights. */
  weights(): Promise<GcnWeights>;
  /** Momentum buffers (null before the first step). */
  momentum(): Promise<Float32Array[] | null>;
  /** Release native resources. */
  dispose(): void;
}
