/**
 * The CPU twin of the GCN-D kernels. Large dense products run in onnxruntime-node (small ONNX graphs built in
 * {@linkcode ./onnx_graph.ts}); everything else (gathering, adjacency expansion, pooling, the classifier, the loss,
 * SGD) is TypeScript. Proposals of similar size are grouped and padded exactly like the original's collate
 * (zero feature rows, identity adjacency block), which changes no result: padded rows stay 0 through every layer and
 * max-pooling over non-negative ReLU outputs ignores them. Without onnxruntime, a plain TypeScript path on the
 * sparse adjacency computes the same thing.
 * @module
 */
import type { GcnEngine, TrainStepResult } from "./engine.ts";
import type { PackedBatch } from "./graph.ts";
import { packedRows } from "./graph.ts";
import { cloneWeights, type GcnWeights, layerDims, paramList, type SgdHyper, sgdUpdate } from "./model.ts";
import {
  createSession,
  ELEM_FLOAT,
  ELEM_INT64,
  loadOrt,
  type OnnxModel,
  type OnnxNode,
  type OrtModule,
  type OrtSession,
  type OrtTensor,
} from "./onnx_graph.ts";

/** Which CPU kernels to use: onnxruntime where available (`auto`), or force one. */
export type CpuKernels = "auto" | "ort" | "ts";

/** Padded-group budget: adjacency elements and activation elements per onnxruntime call. */
const GROUP_ADJ_ELEMS = 1 << 22;
const GROUP_ACT_ELEMS = 1 << 23;
/** First-layer table rows per onnxruntime call. */
const TABLE_BLOCK_ROWS = 8192;

/** Proposals of a batch split into groups of similar size, each padded to its largest member. */
export interface PadGroup {
  members: number[];
  npad: number;
}

/**
 * Group proposals (sorted by size) so that padding wastes little: a group grows while its largest size stays within
 * ~12% (+2) of its smallest and the padded tensors fit the budget.
 */
export function planGroups(sizes: ArrayLike<number>, width: number): PadGroup[] {
  const order = Array.from({ length: sizes.length }, (_, i) => i).sort((a, b) => sizes[a]! - sizes[b]! || a - b);
  const groups: PadGroup[] = [];
  let cur: PadGroup | null = null;
  let lo = 0;
  for (const p of order) {
    const n = sizes[p]!;
    const fits = cur !== null && n <= Math.ceil(lo * 1.125) + 2 &&
      (cur.members.length + 1) * n * n <= GROUP_ADJ_ELEMS &&
      (cur.members.length + 1) * n * width <= GROUP_ACT_ELEMS;
    if (!fits) {
      cur = { members: [], npad: n };
      lo = n;
      groups.push(cur);
    }
    cur!.members.push(p);
    cur!.npad = n;
  }
  return groups;
}

/** Dense padded adjacency [b, npad, npad] and row sums [b, npad, 1] of a group (identity/1 on padding). */
function denseAdjacency(batch: PackedBatch, g: PadGroup): { a: Float32Array; d: Float32Array } {
  const { npad } = g;
  const a = new Float32Array(g.members.length * npad * npad);
  const d = new Float32Array(g.members.length * npad).fill(1);
  g.members.forEach((p, b) => {
    const r0 = batch.rowStart[p]!, n = batch.rowStart[p + 1]! - r0;
    const base = b * npad * npad;
    for (let i = 0; i < n; i++) {
      const r = r0 + i;
      d[b * npad + i] = batch.deg[r]!;
      for (let k = batch.rowPtr[r]!; k < batch.rowPtr[r + 1]!; k++) {
        a[base + i * npad + (batch.cols[k]! - r0)] = batch.vals[k]!;
      }
    }
    for (let i = n; i < npad; i++) a[base + i * npad + i] = 1;
  });
  return { a, d };
}

/** Gather rows `source[rowIndex[r]]` of width `w` for a group's packed rows into [b, npad, w] (zeros on padding). */
function gatherPadded(
  source: Float32Array,
  w: number,
  rowIndex: Int32Array | null,
  batch: PackedBatch,
  g: PadGroup,
): Float32Array {
  const out = new Float32Array(g.members.length * g.npad * w);
  g.members.forEach((p, b) => {
    const r0 = batch.rowStart[p]!, n = batch.rowStart[p + 1]! - r0;
    for (let i = 0; i < n; i++) {
      const src = rowIndex ? rowIndex[r0 + i]! : r0 + i;
      out.set(source.subarray(src * w, (src + 1) * w), (b * g.npad + i) * w);
    }
  });
  return out;
}

/** A per-packed-row vector laid out [b, npad, 1] (padding gets `fill`). */
function padRowVector(v: Float32Array, batch: PackedBatch, g: PadGroup, fill: number): Float32Array {
  const out = new Float32Array(g.members.length * g.npad).fill(fill);
  g.members.forEach((p, b) => {
    const r0 = batch.rowStart[p]!, n = batch.rowStart[p + 1]! - r0;
    out.set(v.subarray(r0, r0 + n), b * g.npad);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// ONNX graphs. A = adjacency [b,n,n], D = row sums [b,n,1], H0 = layer-0 input, W<l> = layer weights,
// M<l> = dropout row scales [b,n,1]. Layer l: H<l+1> = Relu(MatMul(A, MatMul(H<l>, W<l>)) / D) · M<l>.

function layerNodes(l: number, input: string, skipProduct: boolean, masked: boolean): OnnxNode[] {
  const nodes: OnnxNode[] = [];
  const xw = skipProduct ? input : `XW${l}`;
  if (!skipProduct) nodes.push({ op: "MatMul", inputs: [input, `W${l}`], outputs: [xw] });
  nodes.push(
    { op: "MatMul", inputs: ["A", xw], outputs: [`AXW${l}`] },
    { op: "Div", inputs: [`AXW${l}`, "D"], outputs: [`Z${l}`] },
    { op: "Relu", inputs: [`Z${l}`], outputs: [masked ? `R${l}` : `H${l + 1}`] },
  );
  if (masked) nodes.push({ op: "Mul", inputs: [`R${l}`, `M${l}`], outputs: [`H${l + 1}`] });
  return nodes;
}

/** Inference over a padded group: input T = gathered first-layer table rows (x·W₀ already applied) or raw X. */
function inferenceModel(dims: number[], fromTable: boolean): OnnxModel {
  const L = dims.length - 1;
  const nodes: OnnxNode[] = [];
  for (let l = 0; l < L; l++) nodes.push(...layerNodes(l, l === 0 ? "H0" : `H${l}`, l === 0 && fromTable, false));
  nodes.push({ op: "ReduceMax", inputs: [`H${L}`], outputs: ["V"], attrs: { axes: [1], keepdims: 0 } });
  const weights = [];
  for (let l = fromTable ? 1 : 0; l < L; l++) weights.push({ name: `W${l}`, dims: [dims[l]!, dims[l + 1]!] });
  return {
    nodes,
    inputs: [
      { name: "A", dims: ["b", "n", "n"] },
      { name: "D", dims: ["b", "n", 1] },
      { name: "H0", dims: ["b", "n", fromTable ? dims[1]! : dims[0]!] },
      ...weights,
    ],
    outputs: [{ name: "V", dims: ["b", dims[L]!] }],
  };
}

/** Training forward: all layer outputs (after dropout) come back for pooling and the backward pass. */
function trainForwardModel(dims: number[]): OnnxModel {
  const L = dims.length - 1;
  const nodes: OnnxNode[] = [];
  for (let l = 0; l < L; l++) nodes.push(...layerNodes(l, `H${l}`, false, true));
  return {
    nodes,
    inputs: [
      { name: "A", dims: ["b", "n", "n"] },
      { name: "D", dims: ["b", "n", 1] },
      { name: "H0", dims: ["b", "n", dims[0]!] },
      ...dims.slice(0, L).map((_, l) => ({ name: `M${l}`, dims: ["b", "n", 1] })),
      ...dims.slice(0, L).map((d, l) => ({ name: `W${l}`, dims: [d, dims[l + 1]!] })),
    ],
    outputs: dims.slice(1).map((d, l) => ({ name: `H${l + 1}`, dims: ["b", "n", d] })),
  };
}

/**
 * Training backward from dH<L> (gradient at the last layer's output, after dropout) to every dW<l>:
 * dZ = dH·M·[H>0]; dP = Aᵀ·(dZ/D); dW = Σ_b H<l>ᵀ·dP; dH<l> = dP·W<l>ᵀ.
 */
function trainBackwardModel(dims: number[]): OnnxModel {
  const L = dims.length - 1;
  const nodes: OnnxNode[] = [{ op: "Transpose", inputs: ["A"], outputs: ["AT"], attrs: { perm: [0, 2, 1] } }];
  for (let l = L - 1; l >= 0; l--) {
    const dH = `dH${l + 1}`;
    nodes.push(
      { op: "Greater", inputs: [`H${l + 1}`, "zero"], outputs: [`pos${l}`] },
      { op: "Cast", inputs: [`pos${l}`], outputs: [`posf${l}`], attrs: { to: ELEM_FLOAT } },
      { op: "Mul", inputs: [dH, `M${l}`], outputs: [`dHM${l}`] },
      { op: "Mul", inputs: [`dHM${l}`, `posf${l}`], outputs: [`dZ${l}`] },
      { op: "Div", inputs: [`dZ${l}`, "D"], outputs: [`S${l}`] },
      { op: "MatMul", inputs: ["AT", `S${l}`], outputs: [`dP${l}`] },
      { op: "Reshape", inputs: [`H${l}`, `shape${l}`], outputs: [`H2d${l}`] },
      { op: "Reshape", inputs: [`dP${l}`, `shape${l + 1}`], outputs: [`dP2d${l}`] },
      { op: "Gemm", inputs: [`H2d${l}`, `dP2d${l}`], outputs: [`dW${l}`], attrs: { transA: 1 } },
    );
    if (l > 0) {
      nodes.push(
        { op: "Transpose", inputs: [`W${l}`], outputs: [`WT${l}`], attrs: { perm: [1, 0] } },
        { op: "MatMul", inputs: [`dP${l}`, `WT${l}`], outputs: [`dH${l}`] },
      );
    }
  }
  return {
    nodes,
    inputs: [
      { name: "A", dims: ["b", "n", "n"] },
      { name: "D", dims: ["b", "n", 1] },
      ...dims.map((d, l) => ({ name: `H${l}`, dims: ["b", "n", d] })),
      ...dims.slice(0, L).map((_, l) => ({ name: `M${l}`, dims: ["b", "n", 1] })),
      { name: `dH${L}`, dims: ["b", "n", dims[L]!] },
      ...dims.slice(1, L).map((d, i) => ({ name: `W${i + 1}`, dims: [d, dims[i + 2]!] })),
    ],
    outputs: dims.slice(0, L).map((d, l) => ({ name: `dW${l}`, dims: [d, dims[l + 1]!] })),
    initializers: [
      { name: "zero", elem: ELEM_FLOAT, dims: [], data: new Float32Array([0]) },
      ...dims.map((d, l) => ({
        name: `shape${l}`,
        elem: ELEM_INT64,
        dims: [2],
        data: BigInt64Array.of(-1n, BigInt(d)),
      })),
    ],
  };
}

function tableModel(dims: number[], w0: Float32Array): OnnxModel {
  return {
    nodes: [{ op: "MatMul", inputs: ["X", "W0"], outputs: ["T"] }],
    inputs: [{ name: "X", dims: ["r", dims[0]!] }],
    outputs: [{ name: "T", dims: ["r", dims[1]!] }],
    initializers: [{ name: "W0", elem: ELEM_FLOAT, dims: [dims[0]!, dims[1]!], data: w0 }],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Plain TypeScript kernels on the packed CSR (the fallback, and the reference the WGSL mirrors).

/** out[R×N] = a[R×K] · w[K×N], float64 accumulation per row. */
export function tsMatmul(a: Float32Array, rows: number, k: number, w: Float32Array, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  const acc = new Float64Array(n);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let t = 0; t < k; t++) {
      const x = a[i * k + t]!;
      if (x === 0) continue;
      const o = t * n;
      for (let j = 0; j < n; j++) acc[j]! += x * w[o + j]!;
    }
    for (let j = 0; j < n; j++) out[i * n + j] = acc[j]!;
  }
  return out;
}

/** H[r] = relu((Σ_k A[r,k]·P[k]) / D[r]) · mask[r] over a batch's CSR. */
export function tsAggregate(batch: PackedBatch, p: Float32Array, c: number, mask: Float32Array | null): Float32Array {
  const rows = packedRows(batch);
  const out = new Float32Array(rows * c);
  const acc = new Float64Array(c);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    for (let k = batch.rowPtr[r]!; k < batch.rowPtr[r + 1]!; k++) {
      const v = batch.vals[k]!, o = batch.cols[k]! * c;
      for (let j = 0; j < c; j++) acc[j]! += v * p[o + j]!;
    }
    const d = batch.deg[r]!, m = mask ? mask[r]! : 1;
    for (let j = 0; j < c; j++) {
      const z = Math.fround(Math.fround(acc[j]!) / d);
      out[r * c + j] = z > 0 ? Math.fround(z * m) : 0;
    }
  }
  return out;
}

/** Max-pool each proposal's rows: value and arg-row (packed index) per channel. */
export function poolMax(batch: PackedBatch, h: Float32Array, c: number): { v: Float32Array; arg: Int32Array } {
  const v = new Float32Array(batch.count * c).fill(-Infinity);
  const arg = new Int32Array(batch.count * c);
  for (let p = 0; p < batch.count; p++) {
    for (let r = batch.rowStart[p]!; r < batch.rowStart[p + 1]!; r++) {
      for (let j = 0; j < c; j++) {
        const x = h[r * c + j]!;
        if (x > v[p * c + j]!) v[p * c + j] = x, arg[p * c + j] = r;
      }
    }
  }
  return { v, arg };
}

/** The classifier: pred[p] = v[p]·w + b (float64 accumulation, float32 result). */
export function classify(v: Float32Array, count: number, w: Float32Array, b: number): Float32Array {
  const c = w.length;
  const out = new Float32Array(count);
  for (let p = 0; p < count; p++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += v[p * c + j]! * w[j]!;
    out[p] = Math.fround(s) + b;
  }
  return out;
}

/** MSE loss and its gradient w.r.t. each prediction (mean over the batch, like nn.MSELoss). */
export function mseLoss(preds: Float32Array, labels: Float32Array): { loss: number; dPred: Float32Array } {
  const n = preds.length;
  let s = 0;
  const dPred = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = preds[i]! - labels[i]!;
    s += e * e;
    dPred[i] = (2 * e) / n;
  }
  return { loss: s / n, dPred };
}

/** Gradients of the classifier and of the pooled layer output, given dPred. */
export function headBackward(
  pooled: { v: Float32Array; arg: Int32Array },
  dPred: Float32Array,
  w: Float32Array,
): { dW: Float32Array; dB: Float32Array; dV: Float32Array } {
  const c = w.length, count = dPred.length;
  const dW64 = new Float64Array(c);
  let dB = 0;
  const dV = new Float32Array(count * c);
  for (let p = 0; p < count; p++) {
    const g = dPred[p]!;
    dB += g;
    for (let j = 0; j < c; j++) {
      dW64[j]! += g * pooled.v[p * c + j]!;
      dV[p * c + j] = g * w[j]!;
    }
  }
  return { dW: Float32Array.from(dW64), dB: Float32Array.of(dB), dV };
}

// ---------------------------------------------------------------------------------------------------------------

/** The CPU twin engine. */
export class CpuGcn implements GcnEngine {
  readonly backend: string;
  #w: GcnWeights;
  #dims: number[];
  #ort: OrtModule | null;
  #momentum: Float32Array[] | null = null;
  #grads: Float32Array[] | null = null;
  #table: Float32Array | null = null;
  #sessions = new Map<string, Promise<OrtSession>>();
  #weightsVersion = 0;

  private constructor(weights: GcnWeights, ort: OrtModule | null) {
    this.#w = cloneWeights(weights);
    this.#dims = layerDims(weights.config);
    this.#ort = ort;
    this.backend = ort ? "cpu (onnxruntime)" : "cpu (typescript)";
  }

  /** Make an engine; `kernels: "ort"` fails when onnxruntime-node cannot load, `"ts"` never uses it. */
  static async create(weights: GcnWeights, options: { kernels?: CpuKernels } = {}): Promise<CpuGcn> {
    const kernels = options.kernels ?? "auto";
    const ort = kernels === "ts" ? null : await loadOrt();
    if (kernels === "ort" && !ort) throw new Error("onnxruntime-node could not be loaded on this machine");
    return new CpuGcn(weights, ort);
  }

  /** Restore momentum buffers (resuming training). */
  setMomentum(bufs: Float32Array[] | null): void {
    this.#momentum = bufs ? bufs.map((b) => b.slice()) : null;
  }

  #session(key: string, build: () => OnnxModel): Promise<OrtSession> {
    let s = this.#sessions.get(key);
    if (!s) this.#sessions.set(key, s = createSession(this.#ort!, build()));
    return s;
  }

  #tensor(data: Float32Array, dims: number[]): OrtTensor {
    return new this.#ort!.Tensor("float32", data, dims);
  }

  #weightFeeds(from: number): Record<string, OrtTensor> {
    const feeds: Record<string, OrtTensor> = {};
    for (let l = from; l < this.#dims.length - 1; l++) {
      feeds[`W${l}`] = this.#tensor(this.#w.layers[l]!, [this.#dims[l]!, this.#dims[l + 1]!]);
    }
    return feeds;
  }

  async setFirstLayerRows(features: Float32Array, rows: Int32Array): Promise<void> {
    const f = this.#dims[0]!, c = this.#dims[1]!;
    const table = new Float32Array(rows.length * c);
    for (let s = 0; s < rows.length; s += TABLE_BLOCK_ROWS) {
      const e = Math.min(rows.length, s + TABLE_BLOCK_ROWS);
      const x = new Float32Array((e - s) * f);
      for (let i = s; i < e; i++) x.set(features.subarray(rows[i]! * f, (rows[i]! + 1) * f), (i - s) * f);
      if (this.#ort) {
        const sess = await this.#session(
          `table${this.#weightsVersion}`,
          () => tableModel(this.#dims, this.#w.layers[0]!),
        );
        const out = await sess.run({ X: this.#tensor(x, [e - s, f]) });
        table.set(out.T!.data as Float32Array, s * c);
      } else table.set(tsMatmul(x, e - s, f, this.#w.layers[0]!, c), s * c);
    }
    this.#table = table;
  }

  async predict(batch: PackedBatch): Promise<Float32Array> {
    if (!this.#table) throw new Error("predict() needs setFirstLayerRows() first");
    return await this.#predictFrom(batch, this.#table, true);
  }

  /**
   * Scores computed the way the original does, without the shared table: x·W₀ is recomputed for every proposal
   * (the comparison point of the benchmark). `rowSource` indexes `features`.
   */
  async predictPerProposal(batch: PackedBatch, features: Float32Array): Promise<Float32Array> {
    return await this.#predictFrom(batch, features, false);
  }

  async #predictFrom(batch: PackedBatch, source: Float32Array, fromTable: boolean): Promise<Float32Array> {
    const dims = this.#dims, L = dims.length - 1;
    const width = fromTable ? dims[1]! : dims[0]!;
    const cl = dims[L]!;
    let pooled: Float32Array;
    if (!this.#ort) {
      const h0 = new Float32Array(packedRows(batch) * width);
      for (let r = 0; r < packedRows(batch); r++) {
        const s = batch.rowSource[r]!;
        h0.set(source.subarray(s * width, (s + 1) * width), r * width);
      }
      let h = fromTable ? tsAggregate(batch, h0, dims[1]!, null) : h0;
      for (let l = fromTable ? 1 : 0; l < L; l++) {
        h = tsAggregate(
          batch,
          tsMatmul(h, packedRows(batch), dims[l]!, this.#w.layers[l]!, dims[l + 1]!),
          dims[l + 1]!,
          null,
        );
      }
      pooled = poolMax(batch, h, cl).v;
    } else {
      pooled = new Float32Array(batch.count * cl);
      const sizes = Array.from({ length: batch.count }, (_, p) => batch.rowStart[p + 1]! - batch.rowStart[p]!);
      const sess = await this.#session(fromTable ? "infer" : "naive", () => inferenceModel(dims, fromTable));
      for (const g of planGroups(sizes, Math.max(...dims))) {
        const { a, d } = denseAdjacency(batch, g);
        const h0 = gatherPadded(source, width, batch.rowSource, batch, g);
        const b = g.members.length, n = g.npad;
        const out = await sess.run({
          A: this.#tensor(a, [b, n, n]),
          D: this.#tensor(d, [b, n, 1]),
          H0: this.#tensor(h0, [b, n, width]),
          ...this.#weightFeeds(fromTable ? 1 : 0),
        });
        const v = out.V!.data as Float32Array;
        g.members.forEach((p, i) => pooled.set(v.subarray(i * cl, (i + 1) * cl), p * cl));
      }
    }
    return classify(pooled, batch.count, this.#w.classifierW, this.#w.classifierB[0]!);
  }

  async forwardBackward(
    batch: PackedBatch,
    features: Float32Array,
    masks: Float32Array[] | null,
  ): Promise<TrainStepResult> {
    if (!batch.labels) throw new Error("forwardBackward() needs batch labels");
    const dims = this.#dims, L = dims.length - 1, cl = dims[L]!;
    const rows = packedRows(batch);
    const ones = masks ? null : new Float32Array(rows).fill(1);
    const maskOf = (l: number) => masks ? masks[l]! : ones!;
    const grads: Float32Array[] = [];
    let preds: Float32Array, loss: number;
    if (!this.#ort) {
      // Packed CSR, plain TypeScript.
      const hs: Float32Array[] = [new Float32Array(rows * dims[0]!)];
      for (let r = 0; r < rows; r++) {
        const s = batch.rowSource[r]!;
        hs[0]!.set(features.subarray(s * dims[0]!, (s + 1) * dims[0]!), r * dims[0]!);
      }
      for (let l = 0; l < L; l++) {
        const p = tsMatmul(hs[l]!, rows, dims[l]!, this.#w.layers[l]!, dims[l + 1]!);
        hs.push(tsAggregate(batch, p, dims[l + 1]!, maskOf(l)));
      }
      const pooled = poolMax(batch, hs[L]!, cl);
      preds = classify(pooled.v, batch.count, this.#w.classifierW, this.#w.classifierB[0]!);
      const m = mseLoss(preds, batch.labels);
      loss = m.loss;
      const head = headBackward(pooled, m.dPred, this.#w.classifierW);
      let dH = new Float32Array(rows * cl);
      for (let i = 0; i < pooled.arg.length; i++) dH[pooled.arg[i]! * cl + (i % cl)]! += head.dV[i]!;
      const layerGrads: Float32Array[] = new Array(L);
      for (let l = L - 1; l >= 0; l--) {
        const c = dims[l + 1]!, cin = dims[l]!;
        const s = new Float64Array(rows * c);
        const mask = maskOf(l);
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < c; j++) {
            const h = hs[l + 1]![r * c + j]!;
            s[r * c + j] = h > 0 ? Math.fround(dH[r * c + j]! * mask[r]!) / batch.deg[r]! : 0;
          }
        }
        const dP = new Float64Array(rows * c);
        for (let r = 0; r < rows; r++) {
          for (let k = batch.rowPtr[r]!; k < batch.rowPtr[r + 1]!; k++) {
            const v = batch.vals[k]!, o = batch.cols[k]! * c;
            for (let j = 0; j < c; j++) dP[o + j]! += v * s[r * c + j]!;
          }
        }
        const dW = new Float64Array(cin * c);
        const hin = hs[l]!;
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < cin; i++) {
            const x = hin[r * cin + i]!;
            if (x === 0) continue;
            for (let j = 0; j < c; j++) dW[i * c + j]! += x * dP[r * c + j]!;
          }
        }
        layerGrads[l] = Float32Array.from(dW);
        if (l > 0) {
          const w = this.#w.layers[l]!;
          const next = new Float32Array(rows * cin);
          for (let r = 0; r < rows; r++) {
            for (let i = 0; i < cin; i++) {
              let acc = 0;
              for (let j = 0; j < c; j++) acc += dP[r * c + j]! * w[i * c + j]!;
              next[r * cin + i] = acc;
            }
          }
          dH = next;
        }
      }
      grads.push(...layerGrads, head.dW, head.dB);
    } else {
      const sizes = Array.from({ length: batch.count }, (_, p) => batch.rowStart[p + 1]! - batch.rowStart[p]!);
      const fwd = await this.#session("trainFwd", () => trainForwardModel(dims));
      const bwd = await this.#session("trainBwd", () => trainBackwardModel(dims));
      const groups = planGroups(sizes, Math.max(...dims)).map((g) => {
        const { a, d } = denseAdjacency(batch, g);
        const h0 = gatherPadded(features, dims[0]!, batch.rowSource, batch, g);
        const ms = dims.slice(0, L).map((_, l) => padRowVector(maskOf(l), batch, g, 0));
        return { g, a, d, h0, ms, hs: [] as Float32Array[] };
      });
      for (const grp of groups) {
        const b = grp.g.members.length, n = grp.g.npad;
        const feeds: Record<string, OrtTensor> = {
          A: this.#tensor(grp.a, [b, n, n]),
          D: this.#tensor(grp.d, [b, n, 1]),
          H0: this.#tensor(grp.h0, [b, n, dims[0]!]),
          ...this.#weightFeeds(0),
        };
        grp.ms.forEach((m, l) => feeds[`M${l}`] = this.#tensor(m, [b, n, 1]));
        const out = await fwd.run(feeds);
        for (let l = 1; l <= L; l++) grp.hs.push(out[`H${l}`]!.data as Float32Array);
      }
      // Pool over each proposal's real rows; arg indexes the group's padded rows.
      const v = new Float32Array(batch.count * cl).fill(-Infinity);
      const arg = new Int32Array(batch.count * cl);
      groups.forEach((grp) => {
        const hl = grp.hs[L - 1]!;
        grp.g.members.forEach((p, bi) => {
          const n = sizes[p]!;
          for (let i = 0; i < n; i++) {
            const row = bi * grp.g.npad + i;
            for (let j = 0; j < cl; j++) {
              const x = hl[row * cl + j]!;
              if (x > v[p * cl + j]!) v[p * cl + j] = x, arg[p * cl + j] = row;
            }
          }
        });
      });
      preds = classify(v, batch.count, this.#w.classifierW, this.#w.classifierB[0]!);
      const m = mseLoss(preds, batch.labels);
      loss = m.loss;
      const head = headBackward({ v, arg }, m.dPred, this.#w.classifierW);
      const layerGrads = dims.slice(0, L).map((d, l) => new Float32Array(d * dims[l + 1]!));
      for (let gi = 0; gi < groups.length; gi++) {
        const grp = groups[gi]!;
        const b = grp.g.members.length, n = grp.g.npad;
        const dHL = new Float32Array(b * n * cl);
        for (const p of grp.g.members) {
          for (let j = 0; j < cl; j++) dHL[arg[p * cl + j]! * cl + j]! += head.dV[p * cl + j]!;
        }
        const feeds: Record<string, OrtTensor> = {
          A: this.#tensor(grp.a, [b, n, n]),
          D: this.#tensor(grp.d, [b, n, 1]),
          H0: this.#tensor(grp.h0, [b, n, dims[0]!]),
          [`dH${L}`]: this.#tensor(dHL, [b, n, cl]),
          ...this.#weightFeeds(1),
        };
        grp.hs.forEach((h, i) => feeds[`H${i + 1}`] = this.#tensor(h, [b, n, dims[i + 1]!]));
        grp.ms.forEach((mk, l) => feeds[`M${l}`] = this.#tensor(mk, [b, n, 1]));
        const out = await bwd.run(feeds);
        for (let l = 0; l < L; l++) {
          const g = out[`dW${l}`]!.data as Float32Array, acc = layerGrads[l]!;
          for (let i = 0; i < acc.length; i++) acc[i]! += g[i]!;
        }
      }
      grads.push(...layerGrads, head.dW, head.dB);
    }
    this.#grads = grads;
    return { preds, loss };
  }

  gradients(): Promise<Float32Array[]> {
    if (!this.#grads) throw new Error("no gradients yet: call forwardBackward() first");
    return Promise.resolve(this.#grads.map((g) => g.slice()));
  }

  sgdStep(hyper: SgdHyper): Promise<void> {
    if (!this.#grads) throw new Error("no gradients yet: call forwardBackward() first");
    const params = paramList(this.#w);
    const first = this.#momentum === null;
    if (first) this.#momentum = params.map((p) => new Float32Array(p.length));
    params.forEach((p, i) => sgdUpdate(p, this.#grads![i]!, this.#momentum![i]!, { ...hyper, first }));
    this.#weightsVersion++;
    for (const key of [...this.#sessions.keys()]) {
      if (key.startsWith("table")) this.#sessions.delete(key);
    }
    this.#table = null;
    return Promise.resolve();
  }

  weights(): Promise<GcnWeights> {
    return Promise.resolve(cloneWeights(this.#w));
  }

  momentum(): Promise<Float32Array[] | null> {
    return Promise.resolve(this.#momentum ? this.#momentum.map((b) => b.slice()) : null);
  }

  dispose(): void {
    for (const s of this.#sessions.values()) s.then((x) => x.release?.()).catch(() => {});
    this.#sessions.clear();
    this.#table = null;
  }
}
