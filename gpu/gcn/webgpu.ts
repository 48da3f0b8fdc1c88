/**
 * GCN-D on WebGPU: hand-written WGSL for the forward pass, the backward pass and the SGD update, each dispatch
 * covering a whole packed batch (many proposals; CSR adjacency with batch-absolute columns, no padding).
 *
 * Queued runs ({@linkcode GpuGcn.queueTrainSteps}, {@linkcode GpuGcn.queuePredict}) pack the structure of many
 * batches (CSR and its transpose, degrees, row sources, labels, dropout scales) into one upload at binding-aligned
 * offsets, record every batch's dispatches — training: gather, forward, backward, loss, SGD — into one submit per
 * upload, and keep each batch's loss or scores in a device buffer copied out at the end: the host waits once per run.
 * Training reads its input rows from the feature matrix, resident on the device (uploaded once per engine) when it
 * fits a storage binding, else gathered on the host into the upload.
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
  readBuffers,
  STORAGE_USAGE,
  storageBuffer,
  uploadBuffer,
  wgslFile,
} from "../webgpu.ts";
import type { GcnEngine, Pending, SyncStats, TrainStep, TrainStepResult } from "./engine.ts";
import { type PackedBatch, packedRows, transposeCsr } from "./graph.ts";
import { matmulWgsl } from "./matmul_wgsl.ts";
import { type GcnWeights, layerDims, paramList, type SgdHyper, weightsFromList } from "./model.ts";

/** Uniform slots are 256 bytes apart (the WebGPU minimum uniform offset alignment). */
const SLOT = 256;
const MAX_GROUPS = 65535;
/** Packed batch data per upload (and submit) of a queued run. */
const PART_BYTES = 64 << 20;

interface Pipelines {
  matmulNN: GPUComputePipeline;
  matmulTN: GPUComputePipeline;
  matmulNT: GPUComputePipeline;
  aggregate: GPUComputePipeline;
  aggregateBackward: GPUComputePipeline;
  poolClassify: GPUComputePipeline;
  headBackward: GPUComputePipeline;
  sgd: GPUComputePipeline;
  gatherRows: GPUComputePipeline;
  mseLoss: GPUComputePipeline;
}

/** The GCN-D kernels on a device (each compiled once per device by {@linkcode computePipeline}). */
async function pipelinesFor(device: GPUDevice): Promise<Pipelines> {
  const file = (name: string) =>
    computePipeline(device, { label: name, code: () => wgslFile(`${name}.wgsl`, import.meta.url) });
  const matmul = (transA: boolean, transB: boolean, label: string) =>
    computePipeline(device, { label, code: () => matmulWgsl(transA, transB) });
  const [
    matmulNN,
    matmulTN,
    matmulNT,
    aggregate,
    aggregateBackward,
    poolClassify,
    headBackward,
    sgd,
    gatherRows,
    mseLoss,
  ] = await Promise.all([
    matmul(false, false, "matmul_nn"),
    matmul(true, false, "matmul_tn"),
    matmul(false, true, "matmul_nt"),
    file("aggregate"),
    file("aggregate_backward"),
    file("pool_classify"),
    file("head_backward"),
    file("sgd"),
    file("gather_rows"),
    file("mse_loss"),
  ]);
  return {
    matmulNN,
    matmulTN,
    matmulNT,
    aggregate,
    aggregateBackward,
    poolClassify,
    headBackward,
    sgd,
    gatherRows,
    mseLoss,
  };
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

/** A storage buffer, or a range of one. */
type Bind = GPUBuffer | GPUBufferBinding;

/** A dispatch, or a buffer clear between dispatches, recorded before its uniforms are uploaded. */
type PendingCommand =
  | { pipeline: GPUComputePipeline; slot: number; bindings: Bind[]; grid: [number, number] }
  | { clear: GPUBuffer; bytes: number };

/** A byte range of an upload. */
interface Range {
  offset: number;
  size: number;
}

/** Host arrays packed into one upload, each at a storage-binding-aligned offset. */
class UploadPack {
  #chunks: { at: number; data: Int32Array | Float32Array }[] = [];
  #bytes = 0;
  constructor(readonly align: number) {}
  /** bytes so far */
  get bytes(): number {
    return this.#bytes;
  }
  /** Place `data` (never an empty range: bindings need a size). */
  add(data: Int32Array | Float32Array): Range {
    const at = this.#bytes, size = Math.max(4, data.byteLength);
    this.#chunks.push({ at, data });
    this.#bytes = Math.ceil((at + size) / this.align) * this.align;
    return { offset: at, size };
  }
  /** The upload's bytes. */
  build(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.#bytes);
    for (const c of this.#chunks) out.set(new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength), c.at);
    return out;
  }
}

/** Where a batch's arrays lie in an upload. */
interface BatchRanges {
  rows: number;
  count: number;
  rowPtr: Range;
  cols: Range;
  vals: Range;
  deg: Range;
  rowSource: Range;
  rowStart: Range;
  /** training: targets, transposed CSR, dropout scales per layer (null: none) */
  labels?: Range;
  rowPtrT?: Range;
  colsT?: Range;
  valsT?: Range;
  masks?: Range[] | null;
  /** input rows gathered on the host (training without resident features; inference's per-batch table rows) */
  x?: Range;
  /** inference without a resident table: distinct table rows of this batch (`x` holds their features) */
  localRows?: number;
}

/** A batch's bindings in the upload buffer (the same fields as {@linkcode BatchRanges}). */
interface BatchBinds {
  rows: number;
  count: number;
  rowPtr: Bind;
  cols: Bind;
  vals: Bind;
  deg: Bind;
  rowSource: Bind;
  rowStart: Bind;
  labels?: Bind;
  rowPtrT?: Bind;
  colsT?: Bind;
  valsT?: Bind;
  masks?: Bind[] | null;
  x?: Bind;
  localRows?: number;
}

/** The WebGPU engine. */
export class GpuGcn implements GcnEngine {
  readonly backend: string;
  readonly sync: SyncStats = { hostRoundTrips: 0, submits: 0 };
  readonly #device: GPUDevice;
  readonly #pipes: Pipelines;
  readonly #dims: number[];
  readonly #cfg: GcnWeights["config"];
  readonly #params: GPUBuffer[];
  readonly #grads: GPUBuffer[];
  readonly #bufs: GPUBuffer[];
  #hasMomentum = false;
  #scratch = new Map<string, GPUBuffer>();
  /** grown-out buffers, destroyed after the next submit (commands recorded before it may still use them) */
  #retired: GPUBuffer[] = [];
  #arena: ParamArena;
  #pending: PendingCommand[] = [];
  #table:
    | { mode: "resident"; buffer: GPUBuffer }
    | { mode: "perBatch"; features: Float32Array; rows: Int32Array }
    | null = null;
  #features: { data: Float32Array; buffer: GPUBuffer } | null = null;
  #maxBinding: number;
  #align: number;
  #partBytes: number;
  #hasGrads = false;

  private constructor(gpu: GpuContext, pipes: Pipelines, weights: GcnWeights, partBytes: number) {
    this.#device = gpu.device;
    this.#pipes = pipes;
    this.#cfg = { featureDim: weights.config.featureDim, hiddenDims: [...weights.config.hiddenDims] };
    this.#dims = layerDims(weights.config);
    this.backend = backendLabel({ kind: "webgpu", gpu });
    this.#arena = new ParamArena(gpu.device);
    this.#maxBinding = bindingLimit(gpu.device);
    this.#align = Math.max(4, gpu.device.limits.minStorageBufferOffsetAlignment || 256);
    this.#partBytes = partBytes;
    const list = paramList(weights);
    this.#params = list.map((a, i) => uploadBuffer(this.#device, a, `param${i}`));
    this.#grads = list.map((a, i) => storageBuffer(this.#device, a.byteLength, `grad${i}`));
    this.#bufs = list.map((a, i) => storageBuffer(this.#device, a.byteLength, `momentum${i}`));
  }

  /**
   * Compile the kernels (cached per device) and upload the weights. `partBytes` (a test override) is the packed
   * batch data per upload and submit of a queued run.
   */
  static async create(weights: GcnWeights, gpu: GpuContext, options: { partBytes?: number } = {}): Promise<GpuGcn> {
    return new GpuGcn(gpu, await pipelinesFor(gpu.device), weights, options.partBytes ?? PART_BYTES);
  }

  /**
   * A named scratch buffer of at least `bytes`, reused across batches (grown by 1.5× when too small; the old one is
   * retired, not destroyed, as commands recorded but not yet submitted may use it).
   */
  #buf(name: string, bytes: number, options: { wholeBuffer?: boolean } = {}): GPUBuffer {
    const need = Math.max(16, Math.ceil(bytes / 16) * 16);
    // a buffer bound whole must fit one binding; one bound in ranges (the upload) only the device's largest buffer
    const limit = options.wholeBuffer === false ? this.#device.limits.maxBufferSize : this.#maxBinding;
    if (need > limit) throw new Error(`webgpu: ${name} needs ${need} bytes, over the ${limit}-byte limit`);
    let b = this.#scratch.get(name);
    if (!b || b.size < need) {
      const size = Math.min(limit, Math.max(need, Math.ceil(((b?.size ?? 0) * 1.5) / 16) * 16));
      if (b) this.#retired.push(b);
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

  #dispatch(pipeline: GPUComputePipeline, words: (number | { f: number })[], bindings: Bind[], grid: [number, number]) {
    this.#pending.push({ pipeline, slot: this.#arena.push(words), bindings, grid });
  }

  /** Encode everything recorded so far, uniforms uploaded first: runs of dispatches share a compute pass. */
  #encode(): GPUCommandEncoder {
    const uniforms = this.#arena.flush();
    const enc = this.#device.createCommandEncoder();
    let pass: GPUComputePassEncoder | null = null;
    for (const c of this.#pending) {
      if ("clear" in c) {
        pass?.end();
        pass = null;
        enc.clearBuffer(c.clear, 0, Math.ceil(c.bytes / 4) * 4);
        continue;
      }
      pass ??= enc.beginComputePass();
      encodeDispatch(this.#device, pass, {
        pipeline: c.pipeline,
        bindings: [{ buffer: uniforms, offset: c.slot, size: SLOT }, ...c.bindings],
        grid: c.grid,
      });
    }
    pass?.end();
    this.#pending = [];
    return enc;
  }

  /** Submit an encoder; buffers retired before it can go once it is submitted. */
  #submitEncoder(enc: GPUCommandEncoder): void {
    this.#device.queue.submit([enc.finish()]);
    this.sync.submits++;
    for (const b of this.#retired) b.destroy();
    this.#retired = [];
  }

  /** Run everything recorded so far and read buffers back in the same submission: one wait. */
  async #readAll(reads: { src: GPUBuffer; bytes: number }[]): Promise<Float32Array[]> {
    const enc = this.#encode();
    this.sync.submits++;
    const out = await readBuffers(this.#device, reads, { encoder: enc });
    this.sync.hostRoundTrips++;
    for (const b of this.#retired) b.destroy();
    this.#retired = [];
    return out.map((b) => new Float32Array(b));
  }

  /** Upload `pack` into the shared upload buffer; returns a function binding ranges of it. */
  #upload(pack: UploadPack): (r: Range) => GPUBufferBinding {
    const buffer = this.#buf("upload", pack.bytes, { wholeBuffer: false });
    const bytes = pack.build();
    this.#device.queue.writeBuffer(buffer, 0, bytes, 0, bytes.byteLength);
    return (r) => ({ buffer, offset: r.offset, size: r.size });
  }

  /** Bindings of a batch's ranges. */
  static #bindBatch(r: BatchRanges, at: (r: Range) => GPUBufferBinding): BatchBinds {
    const opt = (x: Range | undefined) => x && at(x);
    return {
      rows: r.rows,
      count: r.count,
      rowPtr: at(r.rowPtr),
      cols: at(r.cols),
      vals: at(r.vals),
      deg: at(r.deg),
      rowSource: at(r.rowSource),
      rowStart: at(r.rowStart),
      labels: opt(r.labels),
      rowPtrT: opt(r.rowPtrT),
      colsT: opt(r.colsT),
      valsT: opt(r.valsT),
      masks: r.masks ? r.masks.map(at) : r.masks,
      x: opt(r.x),
      localRows: r.localRows,
    };
  }

  // --- kernel wrappers ---------------------------------------------------------------------------------------

  #matmul(
    kind: "NN" | "TN" | "NT",
    a: Bind,
    b: Bind,
    c: Bind,
    shape: { m: number; n: number; k: number; rowOffset?: number },
  ): void {
    const pipe = kind === "NN" ? this.#pipes.matmulNN : kind === "TN" ? this.#pipes.matmulTN : this.#pipes.matmulNT;
    const gy = Math.ceil(shape.m / 64);
    if (gy > MAX_GROUPS) throw new Error(`webgpu matmul: ${shape.m} rows exceed one dispatch`);
    this.#dispatch(pipe, [shape.m, shape.n, shape.k, shape.rowOffset ?? 0], [a, b, c], [Math.ceil(shape.n / 64), gy]);
  }

  #aggregate(
    csr: BatchBinds,
    channels: number,
    io: { inp: Bind; out: Bind; gather: boolean; mask: Bind | null },
  ): void {
    const rows = csr.rows;
    this.#dispatch(
      this.#pipes.aggregate,
      [rows, channels, io.gather ? 1 : 0, io.mask ? 1 : 0],
      [csr.rowPtr, csr.cols, csr.vals, csr.deg, csr.rowSource, io.mask ?? csr.deg, io.inp, io.out],
      [Math.ceil(channels / 64), Math.max(1, Math.min(rows, MAX_GROUPS))],
    );
  }

  /** Max-pool and classify into `pred` (a binding of `count` floats). */
  #poolClassify(b: BatchBinds, h: Bind, pred: Bind) {
    const L = this.#dims.length - 1, cl = this.#dims[L]!;
    const pooled = this.#buf("pooled", b.count * cl * 4);
    const arg = this.#buf("arg", b.count * cl * 4);
    this.#dispatch(
      this.#pipes.poolClassify,
      [b.count, cl, 0, 0],
      [b.rowStart, h, this.#params[L]!, this.#params[L + 1]!, pooled, arg, pred],
      [Math.max(1, Math.min(b.count, MAX_GROUPS)), 1],
    );
    return { pooled, arg };
  }

  /** Pack a batch's structure (and, for training, targets, transposed CSR and dropout scales). */
  static #packBatch(
    pack: UploadPack,
    batch: PackedBatch,
    extra: { rowSource?: Int32Array; train?: { masks: Float32Array[] | null }; x?: Float32Array; localRows?: number },
  ): BatchRanges {
    const r: BatchRanges = {
      rows: packedRows(batch),
      count: batch.count,
      rowPtr: pack.add(batch.rowPtr),
      cols: pack.add(batch.cols),
      vals: pack.add(batch.vals),
      deg: pack.add(batch.deg),
      rowSource: pack.add(extra.rowSource ?? batch.rowSource),
      rowStart: pack.add(batch.rowStart),
    };
    if (extra.train) {
      if (!batch.labels) throw new Error("training needs batch labels");
      const t = transposeCsr(batch);
      r.labels = pack.add(batch.labels);
      r.rowPtrT = pack.add(t.rowPtr);
      r.colsT = pack.add(t.cols);
      r.valsT = pack.add(t.vals);
      r.masks = extra.train.masks ? extra.train.masks.map((m) => pack.add(m)) : null;
    }
    if (extra.x) r.x = pack.add(extra.x);
    if (extra.localRows !== undefined) r.localRows = extra.localRows;
    return r;
  }

  /** Feature rows of a batch gathered on the host (training when the features are not resident). */
  #hostRows(batch: PackedBatch, features: Float32Array): Float32Array {
    const f = this.#dims[0]!, rows = packedRows(batch);
    const x = new Float32Array(rows * f);
    for (let r = 0; r < rows; r++) {
      const s = batch.rowSource[r]!;
      x.set(features.subarray(s * f, (s + 1) * f), r * f);
    }
    return x;
  }

  /** The feature matrix on the device (uploaded once per array), or null when it exceeds a storage binding. */
  #residentFeatures(features: Float32Array): GPUBuffer | null {
    if (this.#features?.data === features) return this.#features.buffer;
    if (features.byteLength > this.#maxBinding) return null;
    this.#features?.buffer.destroy();
    this.#features = { data: features, buffer: uploadBuffer(this.#device, features, "features") };
    return this.#features.buffer;
  }

  // --- inference ---------------------------------------------------------------------------------------------

  setFirstLayerRows(features: Float32Array, rows: Int32Array): Promise<void> {
    if (this.#table?.mode === "resident") this.#retired.push(this.#table.buffer);
    const f = this.#dims[0]!, c = this.#dims[1]!;
    const bytes = rows.length * c * 4;
    if (bytes > this.#maxBinding) {
      this.#table = { mode: "perBatch", features, rows };
      return Promise.resolve();
    }
    const table = storageBuffer(this.#device, bytes, "firstLayerTable");
    const block = Math.max(64, Math.floor(Math.min(this.#maxBinding / (4 * f), 65536) / 64) * 64);
    for (let s = 0; s < rows.length; s += block) {
      const e = Math.min(rows.length, s + block);
      const x = new Float32Array((e - s) * f);
      for (let i = s; i < e; i++) x.set(features.subarray(rows[i]! * f, (rows[i]! + 1) * f), (i - s) * f);
      // queue order makes each block's input visible to its own submit only: no wait
      const xb = this.#write("tableInput", x);
      this.#matmul("NN", xb, this.#params[0]!, table, { m: e - s, n: c, k: f, rowOffset: s });
      this.#submitEncoder(this.#encode());
    }
    this.#table = { mode: "resident", buffer: table };
    return Promise.resolve();
  }

  async predict(batch: PackedBatch): Promise<Float32Array> {
    return (await (await this.queuePredict([batch])).read())[0]!;
  }

  /** Pack a batch for inference (without a resident table: its distinct table rows' features, remapped sources). */
  #packPredict(pack: UploadPack, batch: PackedBatch): BatchRanges {
    const table = this.#table!;
    if (table.mode === "resident") return GpuGcn.#packBatch(pack, batch, {});
    const { features, rows: tableRows } = table;
    const rows = packedRows(batch), f = this.#dims[0]!;
    const local = new Map<number, number>();
    const rowSource = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const s = batch.rowSource[r]!;
      let l = local.get(s);
      if (l === undefined) local.set(s, l = local.size);
      rowSource[r] = l;
    }
    const x = new Float32Array(local.size * f);
    for (const [s, l] of local) x.set(features.subarray(tableRows[s]! * f, (tableRows[s]! + 1) * f), l * f);
    return GpuGcn.#packBatch(pack, batch, { rowSource, x, localRows: local.size });
  }

  /** Record one batch's eval-mode forward pass, scores into `pred`. */
  #recordPredict(b: BatchBinds, pred: Bind): void {
    const dims = this.#dims, L = dims.length - 1, rows = b.rows;
    let table: Bind;
    if (this.#table!.mode === "resident") table = this.#table!.buffer;
    else {
      table = this.#buf("batchTable", b.localRows! * dims[1]! * 4);
      this.#matmul("NN", b.x!, this.#params[0]!, table, { m: b.localRows!, n: dims[1]!, k: dims[0]! });
    }
    let h: Bind = this.#buf("h1", rows * dims[1]! * 4);
    this.#aggregate(b, dims[1]!, { inp: table, out: h, gather: true, mask: null });
    for (let l = 1; l < L; l++) {
      const pBuf = this.#buf(`p${l}`, rows * dims[l + 1]! * 4);
      this.#matmul("NN", h, this.#params[l]!, pBuf, { m: rows, n: dims[l + 1]!, k: dims[l]! });
      const next = this.#buf(`h${l + 1}`, rows * dims[l + 1]! * 4);
      this.#aggregate(b, dims[l + 1]!, { inp: pBuf, out: next, gather: false, mask: null });
      h = next;
    }
    this.#poolClassify(b, h, pred);
  }

  queuePredict(batches: PackedBatch[]): Promise<Pending<Float32Array[]>> {
    if (!this.#table) throw new Error("predict() needs setFirstLayerRows() first");
    // each batch's scores at a binding-aligned offset of one device buffer, copied out as each upload completes
    const alignF = this.#align / 4;
    const at: number[] = [];
    let total = 0;
    for (const b of batches) at.push(total), total = Math.ceil((total + b.count) / alignF) * alignF;
    const preds = this.#buf("preds", total * 4);
    const staging = this.#device.createBuffer({
      size: Math.max(16, total * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    for (let i = 0; i < batches.length;) {
      const first = i;
      const pack = new UploadPack(this.#align);
      const parts: BatchRanges[] = [];
      do parts.push(this.#packPredict(pack, batches[i++]!)); while (i < batches.length && pack.bytes < this.#partBytes);
      const bind = this.#upload(pack);
      parts.forEach((r, j) => {
        const p = first + j;
        this.#recordPredict(GpuGcn.#bindBatch(r, bind), { buffer: preds, offset: at[p]! * 4, size: r.count * 4 });
      });
      const enc = this.#encode();
      const from = at[first]! * 4, to = (at[i - 1]! + batches[i - 1]!.count) * 4;
      enc.copyBufferToBuffer(preds, from, staging, from, Math.ceil((to - from) / 4) * 4);
      this.#submitEncoder(enc);
    }
    return Promise.resolve({
      read: async () => {
        await staging.mapAsync(GPUMapMode.READ);
        this.sync.hostRoundTrips++;
        const all = new Float32Array(staging.getMappedRange().slice(0));
        staging.destroy();
        return batches.map((b, p) => all.slice(at[p]!, at[p]! + b.count));
      },
    });
  }

  // --- training ----------------------------------------------------------------------------------------------

  /**
   * Record a batch's training forward and backward pass (gradients into the engine's buffers); returns the buffer
   * holding its predictions. `h0` is its input rows (gathered on the device or uploaded).
   */
  #recordForwardBackward(b: BatchBinds, features: GPUBuffer | null): GPUBuffer {
    const dims = this.#dims, L = dims.length - 1, cl = dims[L]!, rows = b.rows, f = dims[0]!;
    let h0: Bind;
    if (features) {
      h0 = this.#buf("h0", rows * f * 4);
      this.#dispatch(
        this.#pipes.gatherRows,
        [rows, f, 0, 0],
        [b.rowSource, features, h0],
        [Math.ceil(f / 64), Math.max(1, Math.min(rows, MAX_GROUPS))],
      );
    } else h0 = b.x!;
    const hs: Bind[] = [h0];
    for (let l = 0; l < L; l++) {
      const pBuf = this.#buf(`p${l}`, rows * dims[l + 1]! * 4);
      this.#matmul("NN", hs[l]!, this.#params[l]!, pBuf, { m: rows, n: dims[l + 1]!, k: dims[l]! });
      const out = this.#buf(`h${l + 1}`, rows * dims[l + 1]! * 4);
      this.#aggregate(b, dims[l + 1]!, { inp: pBuf, out, gather: false, mask: b.masks?.[l] ?? null });
      hs.push(out);
    }
    const pred = this.#buf("pred", b.count * 4);
    const head = this.#poolClassify(b, hs[L]!, pred);
    let dH = this.#buf(`dh${L}`, rows * cl * 4);
    this.#pending.push({ clear: dH, bytes: rows * cl * 4 });
    this.#dispatch(
      this.#pipes.headBackward,
      [b.count, cl, 0, 0],
      [pred, b.labels!, head.pooled, head.arg, this.#params[L]!, this.#grads[L]!, this.#grads[L + 1]!, dH],
      [1, 1],
    );
    for (let l = L - 1; l >= 0; l--) {
      const c = dims[l + 1]!, cin = dims[l]!;
      const dP = this.#buf(`dp${l}`, rows * c * 4);
      this.#dispatch(
        this.#pipes.aggregateBackward,
        [rows, c, b.masks ? 1 : 0, 0],
        [b.rowPtrT!, b.colsT!, b.valsT!, b.deg, b.masks?.[l] ?? b.deg, hs[l + 1]!, dH, dP],
        [Math.ceil(c / 64), Math.max(1, Math.min(rows, MAX_GROUPS))],
      );
      this.#matmul("TN", hs[l]!, dP, this.#grads[l]!, { m: cin, n: c, k: rows });
      if (l > 0) {
        const next = this.#buf(`dh${l}`, rows * cin * 4);
        this.#matmul("NT", dP, this.#params[l]!, next, { m: rows, n: cin, k: c });
        dH = next;
      }
    }
    this.#hasGrads = true;
    return pred;
  }

  /** Pack a training batch (its input rows too when the features are not resident). */
  #packTrain(
    pack: UploadPack,
    step: { batch: PackedBatch; masks: Float32Array[] | null },
    features: Float32Array | null,
  ) {
    return GpuGcn.#packBatch(pack, step.batch, {
      train: { masks: step.masks },
      ...(features ? { x: this.#hostRows(step.batch, features) } : {}),
    });
  }

  async forwardBackward(
    batch: PackedBatch,
    features: Float32Array,
    masks: Float32Array[] | null,
  ): Promise<TrainStepResult> {
    if (!batch.labels) throw new Error("forwardBackward() needs batch labels");
    const resident = this.#residentFeatures(features);
    const pack = new UploadPack(this.#align);
    const ranges = this.#packTrain(pack, { batch, masks }, resident ? null : features);
    const pred = this.#recordForwardBackward(GpuGcn.#bindBatch(ranges, this.#upload(pack)), resident);
    const [preds] = await this.#readAll([{ src: pred, bytes: batch.count * 4 }]);
    let s = 0;
    for (let i = 0; i < batch.count; i++) s += (preds![i]! - batch.labels[i]!) ** 2;
    return { preds: preds!, loss: s / batch.count };
  }

  async gradients(): Promise<Float32Array[]> {
    if (!this.#hasGrads) throw new Error("no gradients yet: call forwardBackward() first");
    return await this.#readAll(this.#grads.map((src, i) => ({ src, bytes: this.#paramBytes(i) })));
  }

  #paramBytes(i: number): number {
    const sizes = [
      ...this.#cfg.hiddenDims.map((out, l) => layerDims(this.#cfg)[l]! * out),
      this.#dims[this.#dims.length - 1]!,
      1,
    ];
    return sizes[i]! * 4;
  }

  /** Record one SGD update of every parameter from the current gradients. */
  #recordSgd(hyper: SgdHyper): void {
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
    this.#hasMomentum = true;
    // the weights change: the first-layer table is stale
    if (this.#table?.mode === "resident") this.#retired.push(this.#table.buffer);
    this.#table = null;
  }

  sgdStep(hyper: SgdHyper): Promise<void> {
    if (!this.#hasGrads) throw new Error("no gradients yet: call forwardBackward() first");
    this.#recordSgd(hyper);
    this.#submitEncoder(this.#encode());
    return Promise.resolve();
  }

  queueTrainSteps(steps: TrainStep[], features: Float32Array): Promise<Pending<Float64Array>> {
    const resident = this.#residentFeatures(features);
    const losses = this.#buf("losses", steps.length * 4);
    const staging = this.#device.createBuffer({
      size: Math.max(16, Math.ceil(steps.length / 4) * 16),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    for (let i = 0; i < steps.length;) {
      const first = i;
      const pack = new UploadPack(this.#align);
      const parts: BatchRanges[] = [];
      do parts.push(this.#packTrain(pack, steps[i++]!, resident ? null : features)); while (
        i < steps.length && pack.bytes < this.#partBytes
      );
      const bind = this.#upload(pack);
      parts.forEach((r, j) => {
        const b = GpuGcn.#bindBatch(r, bind);
        const pred = this.#recordForwardBackward(b, resident);
        this.#dispatch(this.#pipes.mseLoss, [r.count, first + j, 0, 0], [pred, b.labels!, losses], [1, 1]);
        this.#recordSgd(steps[first + j]!.hyper);
      });
      const enc = this.#encode();
      enc.copyBufferToBuffer(losses, first * 4, staging, first * 4, (i - first) * 4);
      this.#submitEncoder(enc);
    }
    return Promise.resolve({
      read: async () => {
        await staging.mapAsync(GPUMapMode.READ);
        this.sync.hostRoundTrips++;
        const out = Float64Array.from(new Float32Array(staging.getMappedRange(), 0, steps.length));
        staging.destroy();
        return out;
      },
    });
  }

  async weights(): Promise<GcnWeights> {
    const list = await this.#readAll(this.#params.map((src, i) => ({ src, bytes: this.#paramBytes(i) })));
    return weightsFromList({ featureDim: this.#cfg.featureDim, hiddenDims: [...this.#cfg.hiddenDims] }, list);
  }

  async momentum(): Promise<Float32Array[] | null> {
    if (!this.#hasMomentum) return null;
    return await this.#readAll(this.#bufs.map((src, i) => ({ src, bytes: this.#paramBytes(i) })));
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
    for (const b of [...this.#params, ...this.#grads, ...this.#bufs, ...this.#scratch.values(), ...this.#retired]) {
      b.destroy();
    }
    if (this.#table?.mode === "resident") this.#table.buffer.destroy();
    this.#features?.buffer.destroy();
    this.#scratch.clear();
    this.#retired = [];
    this.#arena.destroy();
  }
}
