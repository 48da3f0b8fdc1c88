/**
 * GCN-V and GCN-E parameters (reference §10.1–10.3). Both networks are the original's `vegcn` stack: GraphConv layers
 * `conv<i>` (ReLU([X ‖ A·X]·W + b), W of size 2·in × out, bias) followed by `classifier` = Linear(c, c), PReLU(c),
 * Linear(c, classes). GCN-V: 256 → 512, one output (confidence, MSE). GCN-E: 512 → 512 → 512 → 256 → 256, two
 * outputs (log-softmax, NLL). PyTorch state-dict names are kept (`conv1.weight`, `classifier.0.weight`, …), so the
 * original's `.pth` files load unchanged.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { NdArray } from "../../shared/ndarray.ts";
import type { Rng } from "../../shared/random.ts";

/** Which of the two networks. */
export type VeGcnKind = "gcn-v" | "gcn-e";

/** Architecture of a GCN-V / GCN-E network. */
export interface VeGcnConfig {
  kind: VeGcnKind;
  /** input feature dimension (GCN-V: 256, GCN-E: 512 — GCN-V's features) */
  featureDim: number;
  /** GraphConv output widths in order (GCN-V: [512]; GCN-E: [512, 512, 256, 256]) */
  convDims: number[];
  /** classifier outputs (GCN-V: 1, GCN-E: 2) */
  classes: number;
}

/** GCN-V as the original builds it: `gcn_v(feature_dim, nhid=512, nclass=1)`. */
export function gcnVConfig(featureDim = 256, nhid = 512): VeGcnConfig {
  return { kind: "gcn-v", featureDim, convDims: [nhid], classes: 1 };
}

/** GCN-E as the original builds it: `gcn_e(feature_dim, nhid=512, nclass=2)`. */
export function gcnEConfig(featureDim = 512, nhid = 512): VeGcnConfig {
  const half = Math.floor(nhid / 2);
  return { kind: "gcn-e", featureDim, convDims: [nhid, nhid, half, half], classes: 2 };
}

/** One dense layer's parameters, float32 row-major. */
export interface DenseParams {
  /** GraphConv: in × out (x·W); Linear: out × in (PyTorch's layout, x·Wᵀ) */
  w: Float32Array;
  b: Float32Array;
}

/** All trainable parameters. */
export interface VeGcnWeights {
  config: VeGcnConfig;
  /** GraphConv layer i: w is 2·in × out */
  convs: DenseParams[];
  /** classifier.0: Linear(c, c) */
  hidden: DenseParams;
  /** classifier.1: PReLU slopes, one per channel */
  prelu: Float32Array;
  /** classifier.2: Linear(c, classes) */
  out: DenseParams;
}

/** Widths of the GraphConv inputs and outputs: `[featureDim, ...convDims]`. */
export function convWidths(cfg: VeGcnConfig): number[] {
  return [cfg.featureDim, ...cfg.convDims];
}

/** Width of the classifier (the last GraphConv's output). */
export function classifierWidth(cfg: VeGcnConfig): number {
  return cfg.convDims[cfg.convDims.length - 1]!;
}

/** Parameter names (PyTorch state-dict keys) and shapes in state-dict order, the canonical order used here. */
export function paramSpecs(cfg: VeGcnConfig): { name: string; shape: number[] }[] {
  const dims = convWidths(cfg);
  const specs: { name: string; shape: number[] }[] = [];
  cfg.convDims.forEach((out, i) => {
    specs.push({ name: `conv${i + 1}.weight`, shape: [2 * dims[i]!, out] }, {
      name: `conv${i + 1}.bias`,
      shape: [out],
    });
  });
  const c = classifierWidth(cfg);
  specs.push(
    { name: "classifier.0.weight", shape: [c, c] },
    { name: "classifier.0.bias", shape: [c] },
    { name: "classifier.1.weight", shape: [c] },
    { name: "classifier.2.weight", shape: [cfg.classes, c] },
    { name: "classifier.2.bias", shape: [cfg.classes] },
  );
  return specs;
}

/** The parameter arrays in {@linkcode paramSpecs} order. */
export function paramList(w: VeGcnWeights): Float32Array[] {
  return [...w.convs.flatMap((p) => [p.w, p.b]), w.hidden.w, w.hidden.b, w.prelu, w.out.w, w.out.b];
}

/** Weights from arrays in {@linkcode paramSpecs} order (sizes checked). */
export function weightsFromList(cfg: VeGcnConfig, arrays: Float32Array[]): VeGcnWeights {
  const specs = paramSpecs(cfg);
  if (arrays.length !== specs.length) {
    throw new Error(`expected ${specs.length} parameter arrays, got ${arrays.length}`);
  }
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (arrays[i]!.length !== n) throw new Error(`${s.name}: expected ${n} values, got ${arrays[i]!.length}`);
  });
  const L = cfg.convDims.length;
  const convs = Array.from({ length: L }, (_, i) => ({ w: arrays[2 * i]!, b: arrays[2 * i + 1]! }));
  const at = (j: number) => arrays[2 * L + j]!;
  return { config: cfg, convs, hidden: { w: at(0), b: at(1) }, prelu: at(2), out: { w: at(3), b: at(4) } };
}

/** Deep copy. */
export function cloneWeights(w: VeGcnWeights): VeGcnWeights {
  const cfg = { ...w.config, convDims: [...w.config.convDims] };
  return weightsFromList(cfg, paramList(w).map((a) => a.slice()));
}

/** Human-readable architecture, e.g. `GCN-V 256→512→1`. */
export function describeConfig(cfg: VeGcnConfig): string {
  return `${cfg.kind.toUpperCase()} ${convWidths(cfg).join("→")}→${cfg.classes}`;
}

function asFloat32(arr: NdArray, key: string, path: string): Float32Array {
  const d = arr.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Float64Array) return Float32Array.from(d);
  throw new LtcError(`${path}: parameter '${key}' has dtype ${arr.dtype}, expected a float tensor`);
}

/** The conventional configuration of `kind` for a checkpoint's first-layer input width. */
function configFor(kind: VeGcnKind, featureDim: number, nhid: number): VeGcnConfig {
  return kind === "gcn-v" ? gcnVConfig(featureDim, nhid) : gcnEConfig(featureDim, nhid);
}

/**
 * Weights of a `kind` network from a PyTorch-style state dict (keys already stripped of `module.`), loaded strictly
 * like the original (every parameter present, nothing extra, shapes exact). The widths are read from `conv1.weight`
 * (2·featureDim × nhid). A GCN-D checkpoint, the other vegcn network, or features of another width are each a clear
 * error naming `path`.
 */
export function weightsFromStateDict(
  tensors: Map<string, NdArray>,
  options: { path: string; kind: VeGcnKind; featureDim?: number },
): VeGcnWeights {
  const { path, kind } = options;
  const name = kind.toUpperCase();
  const keys = [...tensors.keys()];
  if (tensors.has("layers.0.gc.weight")) {
    throw new LtcError(`${path}: this is a GCN-D checkpoint (layers.0.gc.weight), not a ${name} one`);
  }
  const first = tensors.get("conv1.weight");
  if (!first || first.shape.length !== 2 || first.shape[0]! % 2 !== 0) {
    throw new LtcError(`${path}: not a ${name} checkpoint (no 2-D conv1.weight; keys: ${keys.join(", ") || "none"})`);
  }
  const convCount = keys.filter((k) => /^conv\d+\.weight$/.test(k)).length;
  const expectConvs = kind === "gcn-v" ? 1 : 4;
  if (convCount !== expectConvs) {
    const other = convCount === 1 ? "GCN-V" : convCount === 4 ? "GCN-E" : `${convCount}-layer`;
    throw new LtcError(`${path}: this is a ${other} checkpoint (${convCount} GraphConv layers), not a ${name} one`);
  }
  const featureDim = first.shape[0]! / 2, nhid = first.shape[1]!;
  if (options.featureDim !== undefined && options.featureDim !== featureDim) {
    throw new LtcError(
      `${path}: the ${name} model expects ${featureDim}-d features, but the features are ${options.featureDim}-d`,
    );
  }
  const cfg = configFor(kind, featureDim, nhid);
  const specs = paramSpecs(cfg);
  const expected = new Set(specs.map((s) => s.name));
  const unexpected = keys.filter((k) => !expected.has(k));
  const missing = specs.map((s) => s.name).filter((k) => !tensors.has(k));
  if (missing.length || unexpected.length) {
    const parts = [];
    if (missing.length) parts.push(`missing ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.join(", ")}`);
    throw new LtcError(`${path}: state dict does not match ${describeConfig(cfg)}: ${parts.join("; ")}`);
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
 * The original's initialisation, drawn from our seeded generator (so the values differ from PyTorch's): GraphConv
 * weights xavier-uniform U(±√(6/(2·in + out))) and zero biases; each Linear as PyTorch's default, weight and bias
 * U(±1/√in); PReLU slopes 0.25.
 */
export function initWeights(cfg: VeGcnConfig, rng: Rng): VeGcnWeights {
  const uniform = (n: number, bound: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * bound;
    return a;
  };
  const dims = convWidths(cfg);
  const convs = cfg.convDims.map((out, i) => {
    const fanIn = 2 * dims[i]!;
    return { w: uniform(fanIn * out, Math.sqrt(6 / (fanIn + out))), b: new Float32Array(out) };
  });
  const c = classifierWidth(cfg), bound = 1 / Math.sqrt(c);
  return {
    config: cfg,
    convs,
    hidden: { w: uniform(c * c, bound), b: uniform(c, bound) },
    prelu: new Float32Array(c).fill(0.25),
    out: { w: uniform(cfg.classes * c, bound), b: uniform(cfg.classes, bound) },
  };
}
