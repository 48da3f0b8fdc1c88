/**
 * GCN-V / GCN-E forward and backward passes (reference §10.1–10.3), written once for both networks over
 * {@linkcode DenseKernels} (matrix products) and an {@linkcode Aggregator} (A·X: GCN-V's sparse whole graph, or
 * GCN-E's block-diagonal stack of dense candidate subgraphs). Element-wise work (bias, ReLU, PReLU, losses) is
 * TypeScript on float32 arrays; sums run in float64.
 *
 * Forward, per GraphConv layer l: `c_l = [x_l ‖ A·x_l]`, `x_{l+1} = ReLU(c_l·W_l + b_l)`; then the classifier
 * `u = x_L·W_hᵀ + b_h`, `z = PReLU(u)`, `out = z·W_oᵀ + b_o`. The heads: GCN-V's MSE on `out` (one column), GCN-E's
 * log-softmax + NLL per subgraph.
 * @module
 */
import { type Aggregator, type DenseKernels, tsKernels } from "./kernels.ts";
import { classifierWidth, convWidths, paramList, type VeGcnWeights, weightsFromList } from "./model.ts";

/** What the forward pass keeps for the backward pass. */
export interface ForwardCache {
  rows: number;
  /** per GraphConv layer: its input concatenated with its aggregation, rows × 2·in */
  concat: Float32Array[];
  /** per GraphConv layer: its ReLU output, rows × out (the last one is the "GCN feature") */
  conv: Float32Array[];
  /** classifier hidden pre-activation u, rows × c */
  hiddenPre: Float32Array;
  /** PReLU(u), rows × c */
  hiddenAct: Float32Array;
  /** network output, rows × classes */
  out: Float32Array;
}

/** Gradients in {@linkcode paramSpecs} order, as a weights object (same shapes). */
export type Gradients = VeGcnWeights;

/** `out[r, :] += bias` for every row. */
function addBias(out: Float32Array, bias: Float32Array, rows: number): void {
  const n = bias.length;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + bias[j]!;
  }
}

/** Column sums of a rows × n matrix (float64 accumulation). */
function columnSums(a: Float32Array, rows: number, n: number): Float32Array {
  const acc = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) acc[j] = acc[j]! + a[o + j]!;
  }
  return Float32Array.from(acc);
}

/** [x ‖ ax] row by row. */
function concatRows(x: Float32Array, ax: Float32Array, rows: number, width: number): Float32Array {
  const out = new Float32Array(rows * 2 * width);
  for (let r = 0; r < rows; r++) {
    out.set(x.subarray(r * width, (r + 1) * width), r * 2 * width);
    out.set(ax.subarray(r * width, (r + 1) * width), r * 2 * width + width);
  }
  return out;
}

/** Options of {@linkcode forward}. */
export interface ForwardOptions {
  /** dense products (default: plain TypeScript) */
  kernels?: DenseKernels;
  /** keep only what the outputs need (no backward pass will follow) */
  inference?: boolean;
  /**
   * start at this GraphConv layer: `x` is then the output of layer `fromLayer − 1` (computed elsewhere, e.g. by
   * {@linkcode directionFirstLayer}); only with `inference`
   */
  fromLayer?: number;
  /**
   * keep the last GraphConv's output in `conv` (default true); with `inference` and kernels that fuse the last
   * layers ({@linkcode DenseKernels.lastLayers}), false spares handing it back
   */
  keepFeatures?: boolean;
}

/** Forward pass of the whole network on `x` (rows × featureDim) over the graph `agg`. */
export async function forward(
  weights: VeGcnWeights,
  input: { x: Float32Array; agg: Aggregator },
  options: ForwardOptions = {},
): Promise<ForwardCache> {
  const k = options.kernels ?? tsKernels;
  const cfg = weights.config;
  const rows = input.agg.rows;
  const dims = convWidths(cfg);
  const from = options.fromLayer ?? 0;
  if (from > 0 && !options.inference) throw new Error("forward: fromLayer needs inference mode");
  if (input.x.length !== rows * dims[from]!) {
    throw new Error(`forward: ${input.x.length} input values for ${rows} rows of ${dims[from]}`);
  }
  const concat: Float32Array[] = [], conv: Float32Array[] = [];
  for (let l = 0; l < from; l++) concat.push(new Float32Array(0)), conv.push(new Float32Array(0));
  if (from > 0) conv[from - 1] = input.x;
  let x = input.x;
  const L = cfg.convDims.length;
  for (let l = from; l < L; l++) {
    const din = dims[l]!, dout = dims[l + 1]!;
    if (l === L - 1 && options.inference && k.lastLayers) {
      // by row ranges where the aggregation offers them (the backend overlaps them with its products)
      const agg = input.agg, layerInput = x;
      let whole: Float32Array | null = null;
      const ax = agg.applyRows
        ? (from: number, to: number) => agg.applyRows!(layerInput, din, { from, to })
        : async (from: number, to: number) =>
          (whole ??= await agg.apply(layerInput, din)).subarray(from * din, to * din);
      const r = await k.lastLayers(weights, { x, ax, rows, agg }, { keepFeatures: options.keepFeatures ?? true });
      concat.push(new Float32Array(0));
      conv.push(r.features ?? new Float32Array(0));
      return { rows, concat, conv, hiddenPre: new Float32Array(0), hiddenAct: new Float32Array(0), out: r.out };
    }
    const c = concatRows(x, await input.agg.apply(x, din), rows, din);
    const h = await k.matmul(c, weights.convs[l]!.w, { m: rows, k: 2 * din, n: dout });
    addBias(h, weights.convs[l]!.b, rows);
    for (let i = 0; i < h.length; i++) if (!(h[i]! > 0)) h[i] = 0;
    concat.push(options.inference ? new Float32Array(0) : c);
    conv.push(h);
    x = h;
  }
  const cw = classifierWidth(cfg);
  const u = await k.matmul(x, weights.hidden.w, { m: rows, k: cw, n: cw, transB: true });
  addBias(u, weights.hidden.b, rows);
  const z = new Float32Array(u.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cw; j++) {
      const v = u[r * cw + j]!;
      z[r * cw + j] = v > 0 ? v : Math.fround(weights.prelu[j]! * v);
    }
  }
  const out = await k.matmul(z, weights.out.w, { m: rows, k: cw, n: cfg.classes, transB: true });
  addBias(out, weights.out.b, rows);
  return { rows, concat, conv, hiddenPre: u, hiddenAct: z, out };
}

/** The first GraphConv's weight applied to every row of a node table: the halves `F·W_self` and `F·W_agg`. */
export interface FirstLayerTable {
  /** node id → table row (−1: not in the table) */
  rowOf: Int32Array;
  /** rows × out: features · W[0:in] (the self half) */
  self: Float32Array;
  /** rows × out: features · W[in:2·in] (the aggregation half) */
  agg: Float32Array;
  out: number;
}

/** {@linkcode FirstLayerTable} for the nodes `ids` (distinct) of `features` (n × featureDim). */
export async function firstLayerTable(
  weights: VeGcnWeights,
  input: { features: Float32Array; n: number; ids: Int32Array },
  options: { kernels?: DenseKernels } = {},
): Promise<FirstLayerTable> {
  const k = options.kernels ?? tsKernels;
  const din = weights.config.featureDim, out = weights.config.convDims[0]!;
  const rowOf = new Int32Array(input.n).fill(-1);
  const x = new Float32Array(input.ids.length * din);
  input.ids.forEach((id, r) => {
    rowOf[id] = r;
    x.set(input.features.subarray(id * din, (id + 1) * din), r * din);
  });
  const w = weights.convs[0]!.w, m = input.ids.length;
  return {
    rowOf,
    self: await k.matmul(x, w.subarray(0, din * out), { m, k: din, n: out }),
    agg: await k.matmul(x, w.subarray(din * out), { m, k: din, n: out }),
    out,
  };
}

/**
 * GCN-E's first GraphConv on a stack of candidate subgraphs without forming the direction features: for subgraph
 * centre i and candidates c_r, x_r = f[c_r] − f[i], so `[x ‖ A·x]·W = (P[c_r] − P[i]) + Σ_s A_rs·Q[c_s] −
 * (Σ_s A_rs)·Q[i]` with P = F·W_self and Q = F·W_agg from {@linkcode firstLayerTable}. Same values as the direct
 * product up to float32 rounding, at a fraction of its cost (each node's products are computed once). Returns the
 * ReLU output, rows × out.
 */
export function directionFirstLayer(
  weights: VeGcnWeights,
  table: FirstLayerTable,
  graphs: { centre: number; nbr: Int32Array; adj: Float32Array }[],
): Float32Array {
  const out = table.out, bias = weights.convs[0]!.b;
  const rows = graphs.reduce((s, g) => s + g.nbr.length, 0);
  const h = new Float32Array(rows * out);
  const acc = new Float64Array(out);
  const widest = graphs.reduce((s, g) => Math.max(s, g.nbr.length), 0);
  const nzVal = new Float64Array(widest), nzOff = new Int32Array(widest);
  let r0 = 0;
  for (const g of graphs) {
    const m = g.nbr.length;
    const ci = table.rowOf[g.centre]!;
    if (ci < 0) throw new Error(`directionFirstLayer: node ${g.centre} is not in the table`);
    for (let r = 0; r < m; r++) {
      const cr = table.rowOf[g.nbr[r]!]!;
      if (cr < 0) throw new Error(`directionFirstLayer: node ${g.nbr[r]} is not in the table`);
      acc.fill(0);
      let rowSum = 0, nz = 0;
      for (let s = 0; s < m; s++) {
        const a = g.adj[r * m + s]!;
        if (a === 0) continue;
        rowSum += a;
        nzVal[nz] = a;
        nzOff[nz++] = table.rowOf[g.nbr[s]!]! * out;
      }
      // four entries per pass over the accumulator (as csrMatmul; the row's table rows are read once each)
      const q = table.agg;
      let t = 0;
      for (; t + 4 <= nz; t += 4) {
        const a0 = nzVal[t]!, a1 = nzVal[t + 1]!, a2 = nzVal[t + 2]!, a3 = nzVal[t + 3]!;
        const o0 = nzOff[t]!, o1 = nzOff[t + 1]!, o2 = nzOff[t + 2]!, o3 = nzOff[t + 3]!;
        for (let j = 0; j < out; j++) {
          acc[j] = acc[j]! + (a0 * q[o0 + j]! + a1 * q[o1 + j]! + a2 * q[o2 + j]! + a3 * q[o3 + j]!);
        }
      }
      for (; t < nz; t++) {
        const a = nzVal[t]!, o = nzOff[t]!;
        for (let j = 0; j < out; j++) acc[j] = acc[j]! + a * q[o + j]!;
      }
      const oc = cr * out, oi = ci * out, oh = (r0 + r) * out;
      for (let j = 0; j < out; j++) {
        const v = table.self[oc + j]! - table.self[oi + j]! + acc[j]! - rowSum * table.agg[oi + j]! + bias[j]!;
        h[oh + j] = v > 0 ? v : 0;
      }
    }
    r0 += m;
  }
  return h;
}

/**
 * Backward pass from `dOut` (∂loss/∂out, rows × classes) through the cache of {@linkcode forward}: the gradient of
 * every parameter, shaped like the weights.
 */
export async function backward(
  weights: VeGcnWeights,
  pass: { cache: ForwardCache; agg: Aggregator; dOut: Float32Array },
  options: { kernels?: DenseKernels } = {},
): Promise<Gradients> {
  const k = options.kernels ?? tsKernels;
  const { cache, agg, dOut } = pass;
  const cfg = weights.config;
  const rows = cache.rows, cw = classifierWidth(cfg), dims = convWidths(cfg), L = cfg.convDims.length;
  if (cache.concat.some((c) => c.length === 0)) throw new Error("backward: the forward pass ran in inference mode");
  const z = cache.hiddenAct, u = cache.hiddenPre;
  // classifier.2
  const gOutW = await k.matmul(dOut, z, { m: cfg.classes, k: rows, n: cw, transA: true });
  const gOutB = columnSums(dOut, rows, cfg.classes);
  const dz = await k.matmul(dOut, weights.out.w, { m: rows, k: cfg.classes, n: cw });
  // classifier.1 (PReLU): slope gradient only where the input is not positive, as PyTorch
  const du = new Float32Array(dz.length);
  const slopeAcc = new Float64Array(cw);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cw; j++) {
      const i = r * cw + j, v = u[i]!, g = dz[i]!;
      if (v > 0) du[i] = g;
      else {
        du[i] = Math.fround(weights.prelu[j]! * g);
        slopeAcc[j] = slopeAcc[j]! + v * g;
      }
    }
  }
  const gPrelu = Float32Array.from(slopeAcc);
  // classifier.0
  const xL = cache.conv[L - 1]!;
  const gHiddenW = await k.matmul(du, xL, { m: cw, k: rows, n: cw, transA: true });
  const gHiddenB = columnSums(du, rows, cw);
  let dx = await k.matmul(du, weights.hidden.w, { m: rows, k: cw, n: cw });
  // GraphConv layers, last to first
  const convGrads: { w: Float32Array; b: Float32Array }[] = new Array(L);
  for (let l = L - 1; l >= 0; l--) {
    const din = dims[l]!, dout = dims[l + 1]!;
    const h = cache.conv[l]!;
    const dpre = new Float32Array(dx.length);
    for (let i = 0; i < dx.length; i++) dpre[i] = h[i]! > 0 ? dx[i]! : 0;
    const gw = await k.matmul(cache.concat[l]!, dpre, { m: 2 * din, k: rows, n: dout, transA: true });
    convGrads[l] = { w: gw, b: columnSums(dpre, rows, dout) };
    if (l === 0) break; // the input features need no gradient
    const dc = await k.matmul(dpre, weights.convs[l]!.w, { m: rows, k: dout, n: 2 * din, transB: true });
    const dSelf = new Float32Array(rows * din), dAgg = new Float32Array(rows * din);
    for (let r = 0; r < rows; r++) {
      dSelf.set(dc.subarray(r * 2 * din, r * 2 * din + din), r * din);
      dAgg.set(dc.subarray(r * 2 * din + din, (r + 1) * 2 * din), r * din);
    }
    const back = await agg.applyTransposed(dAgg, din);
    for (let i = 0; i < dSelf.length; i++) dSelf[i] = dSelf[i]! + back[i]!;
    dx = dSelf;
  }
  return weightsFromList(cfg, [
    ...convGrads.flatMap((g) => [g.w, g.b]),
    gHiddenW,
    gHiddenB,
    gPrelu,
    gOutW,
    gOutB,
  ]);
}

/**
 * One GCN-V training iteration's loss and gradients on the whole graph (`agg` over all rows of `x`), MSE to
 * `target`: the backend's resident path where it has one ({@linkcode DenseKernels.mseGradients}), else forward, loss
 * and backward product by product.
 */
export async function mseGradients(
  weights: VeGcnWeights,
  input: { x: Float32Array; agg: Aggregator; target: Float32Array },
  options: { kernels?: DenseKernels } = {},
): Promise<{ loss: number; grads: Gradients }> {
  const kernels = options.kernels ?? tsKernels;
  const fused = await kernels.mseGradients?.(weights, input);
  if (fused) return fused;
  const cache = await forward(weights, { x: input.x, agg: input.agg }, { kernels });
  const { loss, dOut } = mseLoss(cache.out, input.target);
  return { loss, grads: await backward(weights, { cache, agg: input.agg, dOut }, { kernels }) };
}

/** GCN-V's loss: `nn.MSELoss()` between the one-column output and the targets, and ∂loss/∂out. */
export function mseLoss(out: Float32Array, target: ArrayLike<number>): { loss: number; dOut: Float32Array } {
  const n = out.length;
  if (target.length !== n) throw new Error(`mseLoss: ${n} predictions but ${target.length} targets`);
  let s = 0;
  const dOut = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = out[i]! - Math.fround(target[i]!);
    s += e * e;
    dOut[i] = (2 * e) / n;
  }
  return { loss: s / n, dOut };
}

/** Row-wise log-softmax of a rows × classes matrix (float64 inside, float32 out). */
export function logSoftmax(out: Float32Array, classes: number): Float32Array {
  const rows = out.length / classes;
  const res = new Float32Array(out.length);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) mx = Math.max(mx, out[r * classes + c]!);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(out[r * classes + c]! - mx);
    const lse = mx + Math.log(s);
    for (let c = 0; c < classes; c++) res[r * classes + c] = out[r * classes + c]! - lse;
  }
  return res;
}

/**
 * GCN-E's loss on a stack of subgraphs: `nn.NLLLoss()` of the log-softmax, averaged over each subgraph's nodes (one
 * loss per subgraph, as the original computes it one subgraph at a time), and ∂(Σ losses · scale)/∂out, i.e. the
 * gradients of the subgraphs summed (scale 1) as PyTorch accumulates them over `iter_size` backward calls.
 */
export function nllLoss(
  out: Float32Array,
  pass: { labels: ArrayLike<number>; blocks: { offset: number; size: number }[]; classes: number; scale?: number },
): { losses: number[]; dOut: Float32Array } {
  const { labels, blocks, classes } = pass;
  const scale = pass.scale ?? 1;
  const logp = logSoftmax(out, classes);
  const dOut = new Float32Array(out.length);
  const losses = blocks.map(({ offset, size }) => {
    let s = 0;
    for (let r = offset; r < offset + size; r++) {
      const y = labels[r]!;
      if (!(Number.isInteger(y) && y >= 0 && y < classes)) throw new Error(`nllLoss: label ${y} at row ${r}`);
      s -= logp[r * classes + y]!;
      for (let c = 0; c < classes; c++) {
        const p = Math.exp(logp[r * classes + c]!);
        dOut[r * classes + c] = (scale * (p - (c === y ? 1 : 0))) / size;
      }
    }
    return s / size;
  });
  return { losses, dOut };
}

/** Gradients summed element-wise (accumulating backward passes). */
export function addGradients(into: Gradients, add: Gradients): void {
  const a = paramList(into), b = paramList(add);
  a.forEach((arr, p) => {
    const src = b[p]!;
    for (let i = 0; i < arr.length; i++) arr[i] = arr[i]! + src[i]!;
  });
}
