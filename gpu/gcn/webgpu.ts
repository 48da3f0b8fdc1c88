/**
 * GCN-D on WebGPU: hand-written WGSL for the forward pass, the backward pass and the SGD update, each dispatch
 * covering a whole packed batch (many proposals; CSR adjacency with batch-absolute columns, no padding).
 *
 * Inference keeps the shared first-layer table `x·W₀` for every distinct node resident on the device when it fits
 * one storage binding; otherwise each batch computes the table rows it needs (same mathematics, less sharing).
 * Kernels: matmul (three transpose cases, {@linkcode ./matmul_wgsl.ts}), aggregate.wgsl, aggregate_backward.wgsl,
 * pool_classify.wgsl, head_backward.wgsl, sgd.wgsl, compiled, dispatched and read back through
 * {@linkcode ../webgpu.ts}.
 * @module
 */
import { backendLabel, type GpuContext } from "../device.ts";
import {
  bindingLimit,
  computePipeline,
  encodeDispatch,
  readBuffer,
  STORAGE_USAGE,
  storageBuffer,
  uploadBuffer,
  wgslFile,
} from "../webgpu.ts";
import type { GcnEngine, TrainStepResult } from "./engine.ts";
import { type PackedBatch, packedRows, transposeCsr } from "./graph.ts";
import { matmulWgsl } from "./matmul_wgsl.ts";
import { type GcnWeights, layerDims, paramList, type SgdHyper, weightsFromList } from "./model.ts";

/** Uniform slots are 256 bytes apart (the WebGPU minimum uniform offset alignment). */
const SLOT = 256;
const MAX_GROUPS = 65535;

interface Pipelines {
  matmulNN: GPUComputePipeline;
  matmulTN: GPUComputePipeline;
  matmulNT: GPUComputePipeline;
  aggregate: GPUComputePipeline;
  aggregateBackward: GPUComputePipeline;
  poolClassify: GPUComputePipeline;
  headBackward: GPUComputePipeline;
  sgd: GPUComputePipeline;
}

/** The GCN-D kernels on a device (each compiled once per device by {@linkcode computePipeline}). */
async function pipelinesFor(device: GPUDevice): Promise<Pipelines> {
  const file = (name: string) =>
    computePipeline(device, { label: name, code: () => wgslFile(`${name}.wgsl`, import.meta.url) });
  const matmul = (transA: boolean, transB: boolean, label: string) =>
    computePipeline(device, { label, code: () => matmulWgsl(transA, transB) });
  const [matmulNN, matmulTN, matmulNT, aggregate, aggregateBackward, poolClassify, headBackward, sgd] = await Promise
    .all([
      matmul(false, false, "matmul_nn"),
      matmul(true, false, "matmul_tn"),
      matmul(false, true, "matmul_nt"),
      file("aggregate"),
      file("aggregate_backward"),
      file("pool_classify"),
      file("head_backward"),
      file("sgd"),
    ]);
  return { matmulNN, matmulTN, matmulNT, aggregate, aggregateBackward, poolClassify, headBackward, sgd };
}

/** Per-submission uniform parameters: each dispatch gets its own 256-byte slot, uploaded once before submit. */
class ParamArena {
  #data = new ArrayBuffer(SLOT * 64);
  #used = 0;
  #buffer: GPUBuffer | null = null;
  constructor(readonly device: GPUDevice) {}
  /** Reserve a slot holding `u32`/`f32` words (`{f: x}` marks a float); returns its byte offset. */
  push(words: (number | { f: number })[]): number {
    if ((this.#used + 1) * SLOT > this.#data.byteLength) {
      const bigger = new ArrayBuffer(this.#data.byteLength * 2);
      new Uint8Array(bigger).set(new Uint8Array(this.#data));
      this.#data = bigger;
    }
    const view = new DataView(this.#data, this.#used * SLOT, SLOT);
    words.forEach((w, i) => {
      if (typeof w === "number") view.setUint32(4 * i, w, true);
      else view.setFloat32(4 * i, w.f, true);
    });
    return this.#used++ * SLOT;
  }
  /** The uniform buffer for this submission (written now; queue order makes it visible to the commands). */
  flush(): GPUBuffer {
    const bytes = Math.max(1, this.#used) * SLOT;
    if (!this.#buffer || this.#buffer.size < bytes) {
      this.#buffer?.destroy();
      this.#buffer = this.device.createBuffer({
        size: Math.max(bytes, this.#data.byteLength),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
    }
    this.device.queue.writeBuffer(this.#buffer, 0, this.#data, 0, bytes);
    this.#used = 0;
    return this.#buffer;
  }
  /** The current buffer (valid after {@linkcode ParamArena.flush}). */
  get buffer(): GPUBuffer {
    return this.#buffer!;
  }
  destroy(): void {
    this.#buffer?.destroy();
  }
}

/** A dispatch recorded before its uniforms are uploaded. */
interface PendingDispatch {
  pipeline: GPUComputePipeline;
  slot: number;
  buffers: GPUBuffer[];
  grid: [number, number];
}

/** The WebGPU engine. */
export class GpuGcn implements GcnEngine {
  readonly backend: string;
  readonly #device: GPUDevice;
  readonly #pipes: Pipelines;
  readonly #dims: number[];
  readonly #cfg: GcnWeights["config"];
  readonly #params: GPUBuffer[];
  readonly #grads: GPUBuffer[];
  readonly #bufs: GPUBuffer[];
  #hasMomentum = false;
  #scratch = new Map<string, GPUBuffer>();
  #arena: ParamArena;
  #pending: PendingDispatch[] = [];
  #clears: { buffer: GPUBuffer; bytes: number }[] = [];
  #table:
    | { mode: "resident"; buffer: GPUBuffer }
    | { mode: "perBatch"; features: Float32Array; rows: Int32Array }
    | null = null;
  #maxBinding: number;
  #hasGrads = false;

  private constructor(gpu: GpuContext, pipes: Pipelines, weights: GcnWeights) {
    this.#device = gpu.device;
    this.#pipes = pipes;
    this.#cfg = { featureDim: weights.config.featureDim, hiddenDims: [...weights.config.hiddenDims] };
    this.#dims = layerDims(weights.config);
    this.backend = backendLabel({ kind: "webgpu", gpu });
    this.#arena = new ParamArena(gpu.device);
    this.#maxBinding = bindingLimit(gpu.device);
    const list = paramList(weights);
    this.#params = list.map((a, i) => uploadBuffer(this.#device, a, `param${i}`));
    this.#grads = list.map((a, i) => storageBuffer(this.#device, a.byteLength, `grad${i}`));
    this.#bufs = list.map((a, i) => storageBuffer(this.#device, a.byteLength, `momentum${i}`));
  }

  /** Compile the kernels (cached per device) and upload the weights. */
  static async create(weights: GcnWeights, gpu: GpuContext): Promise<GpuGcn> {
    return new GpuGcn(gpu, await pipelinesFor(gpu.device), weights);
  }

  /** A named scratch buffer of at least `bytes`, reused across batches (grown by 1.5× when too small). */
  #buf(name: string, bytes: number): GPUBuffer {
    const need = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (need > this.#maxBinding) {
      throw new Error(`webgpu: ${name} needs ${need} bytes, over the ${this.#maxBinding}-byte binding limit`);
    }
    let b = this.#scratch.get(name);
    if (!b || b.size < need) {
      const size = Math.min(this.#maxBinding, Math.max(need, Math.ceil(((b?.size ?? 0) * 1.5) / 16) * 16));
      b?.destroy();
      b = this.#device.createBuffer({ size, usage: STORAGE_USAGE, label: name });
      this.#scratch.set(name, b);
    }
    return b;
  }

  #write(name: string, data: Float32Array | Int32Array): GPUBuffer {
    const b = this.#buf(name, data.byteLength);
    if (data.byteLength) {
      this.#device.queue.writeBuffer(b, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    }
    return b;
  }

  #dispatch(
    pipeline: GPUComputePipeline,
    words: (number | { f: number })[],
    buffers: GPUBuffer[],
    grid: [number, number],
  ) {
    this.#pending.push({ pipeline, slot: this.#arena.push(words), buffers, grid });
  }

  /** Encode everything recorded so far (buffer clears, then one compute pass), uniforms uploaded first. */
  #encode(): GPUCommandEncoder {
    const uniforms = this.#arena.flush();
    const enc = this.#device.createCommandEncoder();
    for (const c of this.#clears) enc.clearBuffer(c.buffer, 0, Math.ceil(c.bytes / 4) * 4);
    this.#clears = [];
    const pass = enc.beginComputePass();
    for (const d of this.#pending) {
      encodeDispatch(this.#device, pass, {
        pipeline: d.pipeline,
        bindings: [{ buffer: uniforms, offset: d.slot, size: SLOT }, ...d.buffers],
        grid: d.grid,
      });
    }
    pass.end();
    this.#pending = [];
    return enc;
  }

  /** Submit everything recorded so far. */
  #submit(): void {
    this.#device.queue.submit([this.#encode().finish()]);
  }

  /** Run everything recorded so far and read `bytes` of `src` back in the same submission. */
  async #read(src: GPUBuffer, bytes: number): Promise<Float32Array> {
    return new Float32Array(await readBuffer(this.#device, src, { bytes, encoder: this.#encode() }));
  }

  // --- kernel wrappers ---------------------------------------------------------------------------------------

  #matmul(
    kind: "NN" | "TN" | "NT",
    a: GPUBuffer,
    b: GPUBuffer,
    c: GPUBuffer,
    shape: { m: number; n: number; k: number; rowOffset?: number },
  ): void {
    const pipe = kind === "NN" ? this.#pipes.matmulNN : kind === "TN" ? this.#pipes.matmulTN : this.#pipes.matmulNT;
    const gy = Math.ceil(shape.m / 64);
    if (gy > MAX_GROUPS) throw new Error(`webgpu matmul: ${shape.m} rows exceed one dispatch`);
    this.#dispatch(pipe, [shape.m, shape.n, shape.k, shape.rowOffset ?? 0], [a, b, c], [Math.ceil(shape.n / 64), gy]);
  }

  #aggregate(
    csr: { rowPtr: GPUBuffer; cols: GPUBuffer; vals: GPUBuffer; deg: GPUBuffer; rowSource: GPUBuffer },
    rows: number,
    channels: number,
    io: { inp: GPUBuffer; out: GPUBuffer; gather: boolean; mask: GPUBuffer | null },
  ): void {
    this.#dispatch(
      this.#pipes.aggregate,
      [rows, channels, io.gather ? 1 : 0, io.mask ? 1 : 0],
      [csr.rowPtr, csr.cols, csr.vals, csr.deg, csr.rowSource, io.mask ?? csr.deg, io.inp, io.out],
      [Math.ceil(channels / 64), Math.max(1, Math.min(rows, MAX_GROUPS))],
    );
  }

  /** Upload a batch's structure (CSR, degrees, row sources, row offsets). */
  #uploadBatch(batch: PackedBatch, rowSource: Int32Array) {
    return {
      rowPtr: this.#write("rowPtr", batch.rowPtr),
      cols: this.#write("cols", batch.cols),
      vals: this.#write("vals", batch.vals),
      deg: this.#write("deg", batch.deg),
      rowSource: this.#write("rowSource", rowSource),
      rowStart: this.#write("rowStart", batch.rowStart),
    };
  }

  #poolClassify(batch: PackedBatch, rowStart: GPUBuffer, h: GPUBuffer) {
    const L = this.#dims.length - 1, cl = this.#dims[L]!;
    const pooled = this.#buf("pooled", batch.count * cl * 4);
    const arg = this.#buf("arg", batch.count * cl * 4);
    const pred = this.#buf("pred", batch.count * 4);
    this.#dispatch(
      this.#pipes.poolClassify,
      [batch.count, cl, 0, 0],
      [rowStart, h, this.#params[L]!, this.#params[L + 1]!, pooled, arg, pred],
      [Math.max(1, Math.min(batch.count, MAX_GROUPS)), 1],
    );
    return { pooled, arg, pred };
  }

  // --- inference ---------------------------------------------------------------------------------------------

  async setFirstLayerRows(features: Float32Array, rows: Int32Array): Promise<void> {
    if (this.#table?.mode === "resident") this.#table.buffer.destroy();
    const f = this.#dims[0]!, c = this.#dims[1]!;
    const bytes = rows.length * c * 4;
    if (bytes > this.#maxBinding) {
      this.#table = { mode: "perBatch", features, rows };
      return;
    }
    const table = storageBuffer(this.#device, bytes, "firstLayerTable");
    const block = Math.max(64, Math.floor(Math.min(this.#maxBinding / (4 * f), 65536) / 64) * 64);
    for (let s = 0; s < rows.length; s += block) {
      const e = Math.min(rows.length, s + block);
      const x = new Float32Array((e - s) * f);
      for (let i = s; i < e; i++) x.set(features.subarray(rows[i]! * f, (rows[i]! + 1) * f), (i - s) * f);
      const xb = this.#write("tableInput", x);
      this.#matmul("NN", xb, this.#params[0]!, table, { m: e - s, n: c, k: f, rowOffset: s });
      this.#submit();
    }
    await this.#device.queue.onSubmittedWorkDone();
    this.#table = { mode: "resident", buffer: table };
  }

  async predict(batch: PackedBatch): Promise<Float32Array> {
    if (!this.#table) throw new Error("predict() needs setFirstLayerRows() first");
    const dims = this.#dims, L = dims.length - 1;
    const rows = packedRows(batch);
    let table: GPUBuffer, rowSource = batch.rowSource;
    if (this.#table.mode === "resident") table = this.#table.buffer;
    else {
      // Table rows this batch needs, computed now (distinct sources only).
      const { features, rows: tableRows } = this.#table;
      const local = new Map<number, number>();
      rowSource = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const s = batch.rowSource[r]!;
        let l = local.get(s);
        if (l === undefined) local.set(s, l = local.size);
        rowSource[r] = l;
      }
      const f = dims[0]!;
      const x = new Float32Array(local.size * f);
      for (const [s, l] of local) x.set(features.subarray(tableRows[s]! * f, (tableRows[s]! + 1) * f), l * f);
      table = this.#buf("batchTable", local.size * dims[1]! * 4);
      this.#matmul("NN", this.#write("tableInput", x), this.#params[0]!, table, { m: local.size, n: dims[1]!, k: f });
    }
    const csr = this.#uploadBatch(batch, rowSource);
    let h = this.#buf("h1", rows * dims[1]! * 4);
    this.#aggregate(csr, rows, dims[1]!, { inp: table, out: h, gather: true, mask: null });
    for (let l = 1; l < L; l++) {
      const pBuf = this.#buf(`p${l}`, rows * dims[l + 1]! * 4);
      this.#matmul("NN", h, this.#params[l]!, pBuf, { m: rows, n: dims[l + 1]!, k: dims[l]! });
      const next = this.#buf(`h${l + 1}`, rows * dims[l + 1]! * 4);
      this.#aggregate(csr, rows, dims[l + 1]!, { inp: pBuf, out: next, gather: false, mask: null });
      h = next;
    }
    const { pred } = this.#poolClassify(batch, csr.rowStart, h);
    return await this.#read(pred, batch.count * 4);
  }

  // --- training ----------------------------------------------------------------------------------------------

  async forwardBackward(
    batch: PackedBatch,
    features: Float32Array,
    masks: Float32Array[] | null,
  ): Promise<TrainStepResult> {
    if (!batch.labels) throw new Error("forwardBackward() needs batch labels");
    const dims = this.#dims, L = dims.length - 1, cl = dims[L]!;
    const rows = packedRows(batch), f = dims[0]!;
    const x = new Float32Array(rows * f);
    for (let r = 0; r < rows; r++) {
      const s = batch.rowSource[r]!;
      x.set(features.subarray(s * f, (s + 1) * f), r * f);
    }
    const csr = this.#uploadBatch(batch, batch.rowSource);
    const t = transposeCsr(batch);
    const csrT = {
      rowPtr: this.#write("rowPtrT", t.rowPtr),
      cols: this.#write("colsT", t.cols),
      vals: this.#write("valsT", t.vals),
    };
    const maskBufs = masks ? masks.map((m, l) => this.#write(`mask${l}`, m)) : null;
    const labels = this.#write("labels", batch.labels);
    const hs: GPUBuffer[] = [this.#write("h0", x)];
    for (let l = 0; l < L; l++) {
      const pBuf = this.#buf(`p${l}`, rows * dims[l + 1]! * 4);
      this.#matmul("NN", hs[l]!, this.#params[l]!, pBuf, { m: rows, n: dims[l + 1]!, k: dims[l]! });
      const out = this.#buf(`h${l + 1}`, rows * dims[l + 1]! * 4);
      this.#aggregate(csr, rows, dims[l + 1]!, { inp: pBuf, out, gather: false, mask: maskBufs?.[l] ?? null });
      hs.push(out);
    }
    const head = this.#poolClassify(batch, csr.rowStart, hs[L]!);
    let dH = this.#buf(`dh${L}`, rows * cl * 4);
    this.#clears.push({ buffer: dH, bytes: rows * cl * 4 });
    this.#dispatch(
      this.#pipes.headBackward,
      [batch.count, cl, 0, 0],
      [head.pred, labels, head.pooled, head.arg, this.#params[L]!, this.#grads[L]!, this.#grads[L + 1]!, dH],
      [1, 1],
    );
    for (let l = L - 1; l >= 0; l--) {
      const c = dims[l + 1]!, cin = dims[l]!;
      const dP = this.#buf(`dp${l}`, rows * c * 4);
      this.#dispatch(
        this.#pipes.aggregateBackward,
        [rows, c, maskBufs ? 1 : 0, 0],
        [csrT.rowPtr, csrT.cols, csrT.vals, csr.deg, maskBufs?.[l] ?? csr.deg, hs[l + 1]!, dH, dP],
        [Math.ceil(c / 64), Math.max(1, Math.min(rows, MAX_GROUPS))],
      );
      this.#matmul("TN", hs[l]!, dP, this.#grads[l]!, { m: cin, n: c, k: rows });
      if (l > 0) {
        const next = this.#buf(`dh${l}`, rows * cin * 4);
        this.#matmul("NT", dP, this.#params[l]!, next, { m: rows, n: cin, k: c });
        dH = next;
      }
    }
    const preds = await this.#read(head.pred, batch.count * 4);
    let s = 0;
    for (let i = 0; i < batch.count; i++) s += (preds[i]! - batch.labels[i]!) ** 2;
    this.#hasGrads = true;
    return { preds, loss: s / batch.count };
  }

  async gradients(): Promise<Float32Array[]> {
    if (!this.#hasGrads) throw new Error("no gradients yet: call forwardBackward() first");
    const list = [];
    for (const g of this.#grads) list.push(await this.#read(g, this.#paramBytes(list.length)));
    return list;
  }

  #paramBytes(i: number): number {
    const sizes = [
      ...this.#cfg.hiddenDims.map((out, l) => layerDims(this.#cfg)[l]! * out),
      this.#dims[this.#dims.length - 1]!,
      1,
    ];
    return sizes[i]! * 4;
  }

  sgdStep(hyper: SgdHyper): Promise<void> {
    if (!this.#hasGrads) throw new Error("no gradients yet: call forwardBackward() first");
    const first = !this.#hasMomentum;
    this.#params.forEach((p, i) => {
      const count = this.#paramBytes(i) / 4;
      this.#dispatch(
        this.#pipes.sgd,
        [count, first ? 1 : 0, { f: hyper.lr }, { f: hyper.momentum }, { f: hyper.weightDecay }, 0, 0, 0],
        [p, this.#grads[i]!, this.#bufs[i]!],
        [Math.max(1, Math.min(Math.ceil(count / 256), MAX_GROUPS)), 1],
      );
    });
    this.#submit();
    this.#hasMomentum = true;
    if (this.#table?.mode === "resident") this.#table.buffer.destroy();
    this.#table = null;
    return Promise.resolve();
  }

  async weights(): Promise<GcnWeights> {
    const list: Float32Array[] = [];
    for (let i = 0; i < this.#params.length; i++) list.push(await this.#read(this.#params[i]!, this.#paramBytes(i)));
    return weightsFromList({ featureDim: this.#cfg.featureDim, hiddenDims: [...this.#cfg.hiddenDims] }, list);
  }

  async momentum(): Promise<Float32Array[] | null> {
    if (!this.#hasMomentum) return null;
    const list: Float32Array[] = [];
    for (let i = 0; i < this.#bufs.length; i++) list.push(await this.#read(this.#bufs[i]!, this.#paramBytes(i)));
    return list;
  }

  /** Restore momentum buffers (resuming training); null clears them. */
  setMomentum(bufs: Float32Array[] | null): void {
    if (!bufs) {
      this.#hasMomentum = false;
      return;
    }
    bufs.forEach((b, i) =>
      this.#device.queue.writeBuffer(this.#bufs[i]!, 0, b.buffer as ArrayBuffer, b.byteOffset, b.byteLength)
    );
    this.#hasMomentum = true;
  }

  dispose(): void {
    for (const b of [...this.#params, ...this.#grads, ...this.#bufs, ...this.#scratch.values()]) b.destroy();
    if (this.#table?.mode === "resident") this.#table.buffer.destroy();
    this.#scratch.clear();
    this.#arena.destroy();
  }
}
