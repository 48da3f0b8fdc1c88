/**
 * GCN-D's parameters (reference §4.3): GraphConv layers `layers.<i>.gc.weight` (in × out, no bias) for the hidden
 * dims (always [512, 64] in the original's configs), max-pooling over nodes, and `classifier` = Linear(last, 1).
 * Conversion from/to PyTorch state dicts, the original's initialisation, and SGD exactly as `torch.optim.SGD`.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { NdArray } from "../../shared/ndarray.ts";
import { Rng } from "./rng.ts";

/** Architecture of a GCN-D network. */
export interface GcnConfig {
  /** input feature dimension (256 in the original) */
  featureDim: number;
  /** GraphConv output widths, in order (the original: [512, 64]) */
  hiddenDims: number[];
}

/** The original configuration: 256 → 512 → 64 → max-pool → 1. */
export const DEFAULT_GCN_CONFIG: GcnConfig = { featureDim: 256, hiddenDims: [512, 64] };

/** All trainable parameters, float32, row-major. */
export interface GcnWeights {
  config: GcnConfig;
  /** layer i: dims[i] × dims[i+1] (x·W convention, like the original's GraphConv) */
  layers: Float32Array[];
  /** 1 × last hidden dim */
  classifierW: Float32Array;
  /** 1 */
  classifierB: Float32Array;
}

/** Layer widths including the input: `[featureDim, ...hiddenDims]`. */
export function layerDims(cfg: GcnConfig): number[] {
  return [cfg.featureDim, ...cfg.hiddenDims];
}

/** Parameter names (PyTorch state-dict keys) and shapes, in the canonical order used everywhere here. */
export function paramSpecs(cfg: GcnConfig): { name: string; shape: number[] }[] {
  const dims = layerDims(cfg);
  const specs = cfg.hiddenDims.map((_, i) => ({ name: `layers.${i}.gc.weight`, shape: [dims[i]!, dims[i + 1]!] }));
  const last = dims[dims.length - 1]!;
  specs.push({ name: "classifier.weight", shape: [1, last] }, { name: "classifier.bias", shape: [1] });
  return specs;
}

/** The parameter arrays in {@linkcode paramSpecs} order. */
export function paramList(w: GcnWeights): Float32Array[] {
  return [...w.layers, w.classifierW, w.classifierB];
}

/** Build weights from arrays in {@linkcode paramSpecs} order (sizes checked). */
export function weightsFromList(cfg: GcnConfig, arrays: Float32Array[]): GcnWeights {
  const specs = paramSpecs(cfg);
  if (arrays.length !== specs.length) throw new Error(`expected ${specs.length} parameter arrays`);
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (arrays[i]!.length !== n) throw new Error(`${s.name}: expected ${n} values, got ${arrays[i]!.length}`);
  });
  const L = cfg.hiddenDims.length;
  return { config: cfg, layers: arrays.slice(0, L), classifierW: arrays[L]!, classifierB: arrays[L + 1]! };
}

/** Deep copy. */
export function cloneWeights(w: GcnWeights): GcnWeights {
  return weightsFromList(
    { featureDim: w.config.featureDim, hiddenDims: [...w.config.hiddenDims] },
    paramList(w).map((a) => a.slice()),
  );
}

function asFloat32(arr: NdArray, key: string, path: string): Float32Array {
  const d = arr.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Float64Array) return Float32Array.from(d);
  throw new LtcError(`${path}: parameter '${key}' has dtype ${arr.dtype}, expected a float tensor`);
}

/**
 * Weights from a PyTorch-style state dict (keys already stripped of `module.`). The layer count and widths are read
 * from the tensors; the dict must hold exactly GCN-D's parameters (the original loads strictly). `featureDim`, when
 * given, must match the first layer.
 */
export function weightsFromStateDict(
  tensors: Map<string, NdArray>,
  options: { path: string; featureDim?: number },
): GcnWeights {
  const { path } = options;
  const dims: number[] = [];
  for (let i = 0;; i++) {
    const t = tensors.get(`layers.${i}.gc.weight`);
    if (!t) break;
    if (t.shape.length !== 2) throw new LtcError(`${path}: layers.${i}.gc.weight must be 2-D`);
    if (i === 0) dims.push(t.shape[0]!);
    else if (t.shape[0] !== dims[i]) {
      throw new LtcError(`${path}: layers.${i}.gc.weight has ${t.shape[0]} inputs, layer ${i - 1} gives ${dims[i]}`);
    }
    dims.push(t.shape[1]!);
  }
  if (dims.length === 0) {
    const keys = [...tensors.keys()].join(", ") || "none";
    throw new LtcError(`${path}: no 'layers.0.gc.weight': not a GCN-D checkpoint (keys: ${keys})`);
  }
  const cfg: GcnConfig = { featureDim: dims[0]!, hiddenDims: dims.slice(1) };
  if (options.featureDim !== undefined && options.featureDim !== cfg.featureDim) {
    throw new LtcError(
      `${path}: model expects ${cfg.featureDim}-d features, but the features are ${options.featureDim}-d`,
    );
  }
  const specs = paramSpecs(cfg);
  const expected = new Set(specs.map((s) => s.name));
  const unexpected = [...tensors.keys()].filter((k) => !expected.has(k));
  const missing = specs.map((s) => s.name).filter((k) => !tensors.has(k));
  if (missing.length || unexpected.length) {
    const parts = [];
    if (missing.length) parts.push(`missing ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.join(", ")}`);
    throw new LtcError(`${path}: state dict does not match GCN-D ${layerDims(cfg).join("→")}→1: ${parts.join("; ")}`);
  }
  const arrays = specs.map((s) => {
    const t = tensors.get(s.name)!;
    if (t.shape.length !== s.shape.length || t.shape.some((v, i) => v !== s.shape[i])) {
      throw new LtcError(`${path}: ${s.name} has shape (${t.shape.join(", ")}), expected (${s.shape.join(", ")})`);
    }
    const a = asFloat32(t, s.name, path);
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i]!)) throw new LtcError(`${path}: ${s.name} holds NaN or Inf`);
    }
    return a;
  });
  return weightsFromList(cfg, arrays);
}

/**
 * The original's initialisation: GraphConv weights U(−1/√out, 1/√out); the classifier as PyTorch's Linear default
 * (weight and bias U(−1/√in, 1/√in)). Drawn from our seeded generator, so values differ from PyTorch's.
 */
export function initWeights(cfg: GcnConfig, rng: Rng): GcnWeights {
  const dims = layerDims(cfg);
  const uniform = (n: number, bound: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * bound;
    return a;
  };
  const layers = cfg.hiddenDims.map((out, i) => uniform(dims[i]! * out, 1 / Math.sqrt(out)));
  const last = dims[dims.length - 1]!;
  const b = 1 / Math.sqrt(last);
  return { config: cfg, layers, classifierW: uniform(last, b), classifierB: uniform(1, b) };
}

/** SGD hyper-parameters (torch.optim.SGD without dampening or Nesterov). */
export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
}

/**
 * One `torch.optim.SGD` step on one parameter, in float32 like PyTorch: `d = g + wd·w`; `buf = d` on the first step,
 * else `buf = momentum·buf + d`; `w −= lr·buf`. `buf` is updated in place; pass `first` for the first step.
 */
export function sgdUpdate(
  w: Float32Array,
  grad: Float32Array,
  buf: Float32Array,
  hyper: SgdHyper & { first: boolean },
): void {
  const f = Math.fround;
  const wd = f(hyper.weightDecay), m = f(hyper.momentum), lr = f(hyper.lr);
  for (let i = 0; i < w.length; i++) {
    const d = hyper.weightDecay !== 0 ? f(grad[i]! + f(wd * w[i]!)) : grad[i]!;
    let step = d;
    if (hyper.momentum !== 0) {
      step = hyper.first ? d : f(f(m * buf[i]!) + d);
      buf[i] = step;
    }
    w[i] = f(w[i]! - f(lr * step));
  }
}

/** mmcv's step learning-rate policy: `base · gamma^(number of milestones ≤ epoch)`, epoch counted from 0. */
export function stepLr(base: number, epoch: number, milestones: number[], gamma = 0.1): number {
  let exp = milestones.length;
  for (let i = 0; i < milestones.length; i++) {
    if (epoch < milestones[i]!) {
      exp = i;
      break;
    }
  }
  return base * gamma ** exp;
}
