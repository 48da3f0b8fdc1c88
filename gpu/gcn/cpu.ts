/**
 * The CPU twin of the GCN-D kernels. Large dense products run in onnxruntime (the graphs of
 * {@linkcode ./cpu_graphs.ts}, on the build {@linkcode ../ort.ts} loads: native, else wasm); everything else
 * (gathering, adjacency expansion, pooling, the classifier, the loss, SGD) is TypeScript. Proposals of similar size
 * are grouped and padded exactly like the original's collate (zero feature rows, identity adjacency block), which
 * changes no result: padded rows stay 0 through every layer and max-pooling over non-negative ReLU outputs ignores
 * them. Without onnxruntime, a plain TypeScript path on the sparse adjacency computes the same thing.
 * @module
 */
import type { GcnEngine, Pending, SyncStats, TrainStep, TrainStepResult } from "./engine.ts";
import type { PackedBatch } from "./graph.ts";
import { packedRows } from "./graph.ts";
import { cloneWeights, type GcnWeights, layerDims, paramList, type SgdHyper, sgdUpdate } from "./model.ts";
import type { OnnxModel } from "../onnx.ts";
import { createSession, loadOrt, type OrtRuntime, type OrtSession, type OrtTensor, tryLoadOrt } from "../ort.ts";
import { inferenceGraph, trainGraph } from "./cpu_graphs.ts";

/** Which CPU kernels to use: onnxruntime where available (`auto`), or force one. */
export type CpuKernels = "auto" | "ort" | "ts";

/** When the onnxruntime path shares the first-layer product within a batch: when it pays (`auto`) or always. */
export type CpuSharing = "auto" | "always";

/** Padded-group budget: adjacency elements and activation elements per group. */
const GROUP_ADJ_ELEMS = 1 << 22;
const GROUP_ACT_ELEMS = 1 << 23;
/**
 * The onnxruntime path shares x·W₀ within a batch only when its distinct nodes are at most this share of its node
 * rows (below it, computing each distinct node once beats recomputing despite the gather).
 */
const SHARE_BELOW = 0.75;
/** First-layer table rows per step of the TypeScript path. */
const TABLE_BLOCK_ROWS = 16384;

/** Proposals of a batch split into groups of similar size, each padded to its largest member. */
export interface PadGroup {
  members: number[];
  npad: number;
}

/**
 * Group proposals (sorted by size) so that padding wastes little: a group grows while its largest size stays within
 * `ratio` (+2) of its smallest and the padded tensors fit the budget.
 */
export function planGroups(sizes: ArrayLike<number>, width: number, ratio = 1.125): PadGroup[] {
  const order = Array.from({ length: sizes.length }, (_, i) => i).sort((a, b) => sizes[a]! - sizes[b]! || a - b);
  const groups: PadGroup[] = [];
  let cur: PadGroup | null = null;
  let lo = 0;
  for (const p of order) {
    const n = sizes[p]!;
    const fits = cur !== null && n <= Math.ceil(lo * ratio) + 2 &&
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

/** Row ids 0..n−1 as int64 [1, n, 1] (the training graph's one-hot for the max-pool's backward). */
function rowIds(n: number): BigInt64Array {
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = BigInt(i);
  return out;
}

/** The CPU twin engine. */
export class CpuGcn implements GcnEngine {
  readonly backend: string;
  /** the CPU never waits for a device */
  readonly sync: SyncStats = { hostRoundTrips: 0, submits: 0 };
  #w: GcnWeights;
  #dims: number[];
  #rt: OrtRuntime | null;
  #momentum: Float32Array[] | null = null;
  #grads: Float32Array[] | null = null;
  /** TypeScript path: the materialised first-layer table */
  #table: Float32Array | null = null;
  /** onnxruntime path: where table rows come from (computed per batch inside the graph) */
  #tableSource: { features: Float32Array; rows: Int32Array } | null = null;
  #localOf: Int32Array | null = null;
  #sessions = new Map<string, Promise<OrtSession>>();
  #sharing: CpuSharing;

  private constructor(weights: GcnWeights, rt: OrtRuntime | null, sharing: CpuSharing) {
    this.#w = cloneWeights(weights);
    this.#dims = layerDims(weights.config);
    this.#rt = rt;
    this.#sharing = sharing;
    this.backend = !rt ? "cpu (typescript)" : rt.native ? "cpu (onnxruntime)" : `cpu (${rt.label})`;
  }

  /** Make an engine; `kernels: "ort"` fails when no onnxruntime build loads, `"ts"` never uses one. */
  static async create(
    weights: GcnWeights,
    options: { kernels?: CpuKernels; sharing?: CpuSharing } = {},
  ): Promise<CpuGcn> {
    const kernels = options.kernels ?? "auto";
    const rt = kernels === "ts" ? null : kernels === "ort" ? await loadOrt() : await tryLoadOrt();
    return new CpuGcn(weights, rt, options.sharing ?? "auto");
  }

  /** Restore momentum buffers (resuming training). */
  setMomentum(bufs: Float32Array[] | null): void {
    this.#momentum = bufs ? bufs.map((b) => b.slice()) : null;
  }

  #session(key: string, build: () => OnnxModel): Promise<OrtSession> {
    let s = this.#sessions.get(key);
    if (!s) this.#sessions.set(key, s = createSession(this.#rt!, build()));
    return s;
  }

  #tensor(data: Float32Array, dims: number[]): OrtTensor {
    return new this.#rt!.ort.Tensor("float32", data, dims);
  }

  #weightFeeds(feeds: Record<string, OrtTensor>): void {
    for (let l = 0; l < this.#dims.length - 1; l++) {
      feeds[`W${l}`] = this.#tensor(this.#w.layers[l]!, [this.#dims[l]!, this.#dims[l + 1]!]);
    }
  }

  setFirstLayerRows(features: Float32Array, rows: Int32Array): Promise<void> {
    if (this.#rt) {
      // The table is rebuilt inside each batch's graph for the batch's distinct nodes: returning it from
      // onnxruntime would cost more than recomputing it.
      this.#tableSource = { features, rows };
      return Promise.resolve();
    }
    const f = this.#dims[0]!, c = this.#dims[1]!;
    const table = new Float32Array(rows.length * c);
    for (let s = 0; s < rows.length; s += TABLE_BLOCK_ROWS) {
      const e = Math.min(rows.length, s + TABLE_BLOCK_ROWS);
      const x = new Float32Array((e - s) * f);
      for (let i = s; i < e; i++) x.set(features.subarray(rows[i]! * f, (rows[i]! + 1) * f), (i - s) * f);
      table.set(tsMatmul(x, e - s, f, this.#w.layers[0]!, c), s * c);
    }
    this.#table = table;
    return Promise.resolve();
  }

  async predict(batch: PackedBatch): Promise<Float32Array> {
    if (this.#rt) {
      if (!this.#tableSource) throw new Error("predict() needs setFirstLayerRows() first");
      return await this.#predictOrt(batch, true, this.#tableSource.features);
    }
    if (!this.#table) throw new Error("predict() needs setFirstLayerRows() first");
    return this.#predictTs(batch, this.#table, true);
  }

  /**
   * Scores computed the way the original does, without sharing: x·W₀ is recomputed for every proposal (the
   * comparison point of the benchmark). `rowSource` indexes `features`.
   */
  async predictPerProposal(batch: PackedBatch, features: Float32Array): Promise<Float32Array> {
    if (this.#rt) return await this.#predictOrt(batch, false, features);
    return this.#predictTs(batch, features, false);
  }

  #predictTs(batch: PackedBatch, source: Float32Array, fromTable: boolean): Float32Array {
    const dims = this.#dims, L = dims.length - 1;
    const width = fromTable ? dims[1]! : dims[0]!;
    const rows = packedRows(batch);
    const h0 = new Float32Array(rows * width);
    for (let r = 0; r < rows; r++) {
      const s = batch.rowSource[r]!;
      h0.set(source.subarray(s * width, (s + 1) * width), r * width);
    }
    let h = fromTable ? tsAggregate(batch, h0, dims[1]!, null) : h0;
    for (let l = fromTable ? 1 : 0; l < L; l++) {
      h = tsAggregate(batch, tsMatmul(h, rows, dims[l]!, this.#w.layers[l]!, dims[l + 1]!), dims[l + 1]!, null);
    }
    return classify(poolMax(batch, h, dims[L]!).v, batch.count, this.#w.classifierW, this.#w.classifierB[0]!);
  }

  async #predictOrt(batch: PackedBatch, sharedFirst: boolean, features: Float32Array): Promise<Float32Array> {
    let shared = sharedFirst;
    const dims = this.#dims, L = dims.length - 1, f = dims[0]!, cl = dims[L]!;
    const rows = packedRows(batch);
    const sizes = Array.from({ length: batch.count }, (_, p) => batch.rowStart[p + 1]! - batch.rowStart[p]!);
    const groups = planGroups(sizes, Math.max(...dims));
    const feeds: Record<string, OrtTensor> = {};
    this.#weightFeeds(feeds);
    // Global feature row of each packed row.
    const globalRow = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      globalRow[r] = sharedFirst ? this.#tableSource!.rows[batch.rowSource[r]!]! : batch.rowSource[r]!;
    }
    let localRow: Int32Array | null = null, distinct = 0;
    if (shared && this.#sharing === "auto") {
      // Share only when it pays: the gathered table costs a copy that recomputing x·W₀ does not.
      const n = features.length / f;
      if (!this.#localOf || this.#localOf.length !== n) this.#localOf = new Int32Array(n).fill(-1);
      const seen = this.#localOf;
      let count = 0;
      for (let r = 0; r < rows; r++) if (seen[globalRow[r]!] === -1) seen[globalRow[r]!] = 0, count++;
      for (let r = 0; r < rows; r++) seen[globalRow[r]!] = -1;
      shared = count <= SHARE_BELOW * rows;
    }
    if (shared) {
      // Distinct nodes of the batch → rows of XU (plus a final zero row that padding points at).
      const n = features.length / f;
      if (!this.#localOf || this.#localOf.length !== n) this.#localOf = new Int32Array(n).fill(-1);
      const localOf = this.#localOf;
      localRow = new Int32Array(rows);
      const order: number[] = [];
      for (let r = 0; r < rows; r++) {
        const v = globalRow[r]!;
        if (localOf[v] === -1) localOf[v] = order.length, order.push(v);
        localRow[r] = localOf[v]!;
      }
      distinct = order.length;
      const xu = new Float32Array((distinct + 1) * f);
      order.forEach((v, i) => xu.set(features.subarray(v * f, (v + 1) * f), i * f));
      for (const v of order) localOf[v] = -1;
      feeds.XU = this.#tensor(xu, [distinct + 1, f]);
    }
    groups.forEach((g, gi) => {
      const b = g.members.length, n = g.npad;
      const { a, d } = denseAdjacency(batch, g);
      feeds[`A_${gi}`] = this.#tensor(a, [b, n, n]);
      feeds[`D_${gi}`] = this.#tensor(d, [b, n, 1]);
      if (shared) {
        const idx = new BigInt64Array(b * n).fill(BigInt(distinct));
        g.members.forEach((p, bi) => {
          for (let r = batch.rowStart[p]!; r < batch.rowStart[p + 1]!; r++) {
            idx[bi * n + r - batch.rowStart[p]!] = BigInt(localRow![r]!);
          }
        });
        feeds[`I_${gi}`] = new this.#rt!.ort.Tensor("int64", idx, [b, n]);
      } else feeds[`X_${gi}`] = this.#tensor(gatherPadded(features, f, globalRow, batch, g), [b, n, f]);
    });
    const kind = shared ? "shared" : "naive";
    const sess = await this.#session(`${kind}${groups.length}`, () => inferenceGraph(dims, groups.length, shared));
    const out = await sess.run(feeds);
    const pooled = new Float32Array(batch.count * cl);
    groups.forEach((g, gi) => {
      const v = out[`V_${gi}`]!.data as Float32Array;
      g.members.forEach((p, i) => pooled.set(v.subarray(i * cl, (i + 1) * cl), p * cl));
    });
    return classify(pooled, batch.count, this.#w.classifierW, this.#w.classifierB[0]!);
  }

  async forwardBackward(
    batch: PackedBatch,
    features: Float32Array,
    masks: Float32Array[] | null,
  ): Promise<TrainStepResult> {
    if (!batch.labels) throw new Error("forwardBackward() needs batch labels");
    const rows = packedRows(batch);
    const ones = masks ? null : new Float32Array(rows).fill(1);
    const maskOf = (l: number) => masks ? masks[l]! : ones!;
    const r = this.#rt ? await this.#trainOrt(batch, features, maskOf) : this.#trainTs(batch, features, maskOf);
    this.#grads = r.grads;
    return { preds: r.preds, loss: mseLoss(r.preds, batch.labels).loss };
  }

  async #trainOrt(
    batch: PackedBatch,
    features: Float32Array,
    maskOf: (l: number) => Float32Array,
  ): Promise<{ preds: Float32Array; grads: Float32Array[] }> {
    const dims = this.#dims, L = dims.length - 1, f = dims[0]!, cl = dims[L]!;
    const sizes = Array.from({ length: batch.count }, (_, p) => batch.rowStart[p + 1]! - batch.rowStart[p]!);
    // Coarser size groups than inference: fewer distinct graphs (one session per group count).
    const groups = planGroups(sizes, Math.max(...dims), 1.25);
    const feeds: Record<string, OrtTensor> = {
      WC: this.#tensor(this.#w.classifierW, [1, cl]),
      BC: this.#tensor(this.#w.classifierB, [1]),
      SCALE: this.#tensor(Float32Array.of(2 / batch.count), []),
    };
    this.#weightFeeds(feeds);
    groups.forEach((g, gi) => {
      const b = g.members.length, n = g.npad;
      const { a, d } = denseAdjacency(batch, g);
      feeds[`A_${gi}`] = this.#tensor(a, [b, n, n]);
      feeds[`D_${gi}`] = this.#tensor(d, [b, n, 1]);
      feeds[`X_${gi}`] = this.#tensor(gatherPadded(features, f, batch.rowSource, batch, g), [b, n, f]);
      for (let l = 0; l < L; l++) feeds[`M${l}_${gi}`] = this.#tensor(padRowVector(maskOf(l), batch, g, 0), [b, n, 1]);
      feeds[`Y_${gi}`] = this.#tensor(Float32Array.from(g.members, (p) => batch.labels![p]!), [b]);
      feeds[`R_${gi}`] = new this.#rt!.ort.Tensor("int64", rowIds(n), [1, n, 1]);
    });
    const sess = await this.#session(`train${groups.length}`, () => trainGraph(dims, groups.length));
    const out = await sess.run(feeds);
    const preds = new Float32Array(batch.count);
    groups.forEach((g, gi) => {
      const p = out[`P_${gi}`]!.data as Float32Array;
      g.members.forEach((m, i) => preds[m] = p[i]!);
    });
    const grads = dims.slice(0, L).map((_, l) => (out[`dW${l}`]!.data as Float32Array).slice());
    grads.push((out.dWC!.data as Float32Array).slice(), (out.dBC!.data as Float32Array).slice());
    return { preds, grads };
  }

  #trainTs(
    batch: PackedBatch,
    features: Float32Array,
    maskOf: (l: number) => Float32Array,
  ): { preds: Float32Array; grads: Float32Array[] } {
    const dims = this.#dims, L = dims.length - 1, cl = dims[L]!;
    const rows = packedRows(batch);
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
    const preds = classify(pooled.v, batch.count, this.#w.classifierW, this.#w.classifierB[0]!);
    const head = headBackward(pooled, mseLoss(preds, batch.labels!).dPred, this.#w.classifierW);
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
    return { preds, grads: [...layerGrads, head.dW, head.dB] };
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
    this.#table = null;
    this.#tableSource = null;
    return Promise.resolve();
  }

  /** The steps, run now one after another (nothing to overlap on the CPU). */
  async queueTrainSteps(steps: TrainStep[], features: Float32Array): Promise<Pending<Float64Array>> {
    const losses = new Float64Array(steps.length);
    for (let i = 0; i < steps.length; i++) {
      const { batch, masks, hyper } = steps[i]!;
      losses[i] = (await this.forwardBackward(batch, features, masks)).loss;
      await this.sgdStep(hyper);
    }
    return { read: () => Promise.resolve(losses) };
  }

  /** The batches, scored now. */
  async queuePredict(batches: PackedBatch[]): Promise<Pending<Float32Array[]>> {
    const scores: Float32Array[] = [];
    for (const b of batches) scores.push(await this.predict(b));
    return { read: () => Promise.resolve(scores) };
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
    this.#tableSource = null;
  }
}
