/**
 * GCN-V/E's products on WebGPU, behind the same interfaces as the CPU twin so the forward/backward code in
 * {@linkcode ./cpu.ts} runs unchanged:
 * - {@linkcode GpuCsrAggregator}: the sparse aggregation ({@linkcode ./spmm.wgsl}), an {@linkcode Aggregator} whose
 *   A·X and Aᵀ·Y run on the GPU with the CSR matrix (and its transpose, built on first use) resident there;
 * - {@linkcode WebGpuKernels}: the dense products, on GCN-D's tiled matmul kernel (`gpu/gcn/matmul_wgsl.ts`), with
 *   inference's last layers ({@linkcode ./webgpu_last_layers.ts}) and GCN-V's whole-graph training step
 *   ({@linkcode ./webgpu_train.ts}) kept on the device.
 * A single product call (GCN-E training, the fallbacks) uploads its operands, dispatches once and reads the result
 * back. Sums are float32 on the GPU (the CPU twin sums in float64): results agree to float32 rounding.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { GpuContext } from "../device.ts";
import { MATMUL_TILE, matmulWgsl } from "../gcn/matmul_wgsl.ts";
import type { VeGcnWeights } from "./model.ts";
import {
  bindingLimit,
  computePipeline,
  encodeDispatch,
  MAX_WORKGROUPS,
  readBuffer,
  storageBuffer,
  uniformBuffer,
  uploadBuffer,
} from "../webgpu.ts";
import { vegcnKernel } from "./wgsl.ts";
import { type LastLayersEngine, webGpuLastLayers } from "./webgpu_last_layers.ts";
import { WebGpuGcnVTrainer } from "./webgpu_train.ts";
import {
  type Aggregator,
  type CsrMatrix,
  type DenseKernels,
  type LastLayersInput,
  type LastLayersResult,
  type MatmulShape,
  transpose,
  transposeCsr,
} from "./kernels.ts";

/** A CSR matrix resident on the GPU. */
interface GpuCsr {
  rows: number;
  /** rows of the dense operand (columns of the matrix) */
  cols: number;
  rowPtr: GPUBuffer;
  colIdx: GPUBuffer;
  vals: GPUBuffer;
}

function uploadCsr(device: GPUDevice, a: CsrMatrix): GpuCsr {
  return {
    rows: a.rows,
    cols: a.cols,
    rowPtr: uploadBuffer(device, a.rowPtr, "csr_row_ptr"),
    colIdx: uploadBuffer(device, a.colIdx, "csr_cols"),
    vals: uploadBuffer(device, a.vals, "csr_vals"),
  };
}

/** The whole-graph aggregation of GCN-V (or any square CSR A) on WebGPU. */
export class GpuCsrAggregator implements Aggregator {
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;
  readonly #a: CsrMatrix;
  readonly #forward: GpuCsr;
  #transposed: GpuCsr | null = null;
  /** the kernel's parameters (rows, width) per width: the same for A and Aᵀ (A is square) */
  readonly #params = new Map<number, GPUBuffer>();

  private constructor(gpu: GpuContext, pipeline: GPUComputePipeline, a: CsrMatrix) {
    this.#device = gpu.device;
    this.#pipeline = pipeline;
    this.#a = a;
    this.#forward = uploadCsr(gpu.device, a);
  }

  /** Upload `a` (square) to `gpu`. */
  static async create(gpu: GpuContext, a: CsrMatrix): Promise<GpuCsrAggregator> {
    if (a.rows !== a.cols) throw new Error(`GpuCsrAggregator: matrix is ${a.rows} × ${a.cols}, not square`);
    return new GpuCsrAggregator(gpu, await vegcnKernel(gpu.device, "spmm"), a);
  }

  get rows(): number {
    return this.#a.rows;
  }

  apply(x: Float32Array, width: number): Promise<Float32Array> {
    return this.#run(this.#forward, x, width);
  }

  applyTransposed(y: Float32Array, width: number): Promise<Float32Array> {
    this.#transposed ??= uploadCsr(this.#device, transposeCsr(this.#a));
    return this.#run(this.#transposed, y, width);
  }

  /** Free the GPU buffers. */
  dispose(): void {
    for (const m of [this.#forward, this.#transposed]) {
      if (!m) continue;
      m.rowPtr.destroy();
      m.colIdx.destroy();
      m.vals.destroy();
    }
    for (const b of this.#params.values()) b.destroy();
    this.#params.clear();
  }

  /** The device the matrix lives on. */
  get device(): GPUDevice {
    return this.#device;
  }

  /**
   * Record A·x into `enc` for `x` already on the device (rows × width): returns the output buffer (rows × width), filled
   * once `enc` is submitted; the caller destroys it. Nothing leaves the device.
   */
  encodeApply(enc: GPUCommandEncoder, x: GPUBuffer, width: number): GPUBuffer {
    const m = this.#forward;
    const out = storageBuffer(this.#device, m.rows * width * 4, "spmm_out");
    this.#encode(enc, m, x, out, width);
    return out;
  }

  #encode(enc: GPUCommandEncoder, m: GpuCsr, input: GPUBuffer, out: GPUBuffer, width: number): void {
    let params = this.#params.get(width);
    if (!params) this.#params.set(width, params = uniformBuffer(this.#device, [m.rows, width]));
    const pass = enc.beginComputePass();
    encodeDispatch(this.#device, pass, {
      pipeline: this.#pipeline,
      bindings: [params, m.rowPtr, m.colIdx, m.vals, input, out],
      grid: [Math.ceil(width / 64), Math.max(1, Math.min(m.rows, MAX_WORKGROUPS))],
    });
    pass.end();
  }

  async #run(m: GpuCsr, x: Float32Array, width: number): Promise<Float32Array> {
    if (x.length !== m.cols * width) {
      throw new Error(`GpuCsrAggregator: ${x.length} values for ${m.cols} rows of ${width}`);
    }
    const device = this.#device;
    const bytes = m.rows * width * 4;
    const input = uploadBuffer(device, x, "spmm_x");
    const out = storageBuffer(device, bytes, "spmm_out");
    const encoder = device.createCommandEncoder();
    this.#encode(encoder, m, input, out, width);
    const result = new Float32Array(await readBuffer(device, out, { bytes, encoder }));
    for (const b of [input, out]) b.destroy();
    return result;
  }
}

/** The three transpose cases of the matmul kernel (GCN-D's, compiled once per device): `[nn, tn, nt]`. */
function matmulPipelines(device: GPUDevice): Promise<GPUComputePipeline[]> {
  const make = (transA: boolean, transB: boolean, label: string) =>
    computePipeline(device, { label, code: () => matmulWgsl(transA, transB) });
  return Promise.all([make(false, false, "matmul_nn"), make(true, false, "matmul_tn"), make(false, true, "matmul_nt")]);
}

/** Dense products on WebGPU (GCN-D's tiled kernel). */
export class WebGpuKernels implements DenseKernels {
  readonly name: string;
  readonly #device: GPUDevice;
  readonly #pipes: GPUComputePipeline[];
  readonly #maxBinding: number;
  /** what the on-device paths (last layers, training) run on */
  readonly #engine: LastLayersEngine;
  #trainer: WebGpuGcnVTrainer | null = null;

  private constructor(
    gpu: GpuContext,
    pipes: GPUComputePipeline[],
    sizes: { blockBytes?: number; sliceRows?: number },
  ) {
    this.name = `webgpu (${gpu.adapterName})`;
    this.#device = gpu.device;
    this.#pipes = pipes;
    this.#maxBinding = bindingLimit(gpu.device);
    this.#engine = { device: gpu.device, matmul: pipes, maxBinding: this.#maxBinding, ...sizes };
  }

  /**
   * Build the pipelines on `gpu`. `options.blockBytes` bounds the row blocks of {@linkcode lastLayers},
   * `options.sliceRows` the split-K slices of {@linkcode mseGradients} (tests make both small to cover several).
   */
  static async create(
    gpu: GpuContext,
    options: { blockBytes?: number; sliceRows?: number } = {},
  ): Promise<WebGpuKernels> {
    return new WebGpuKernels(gpu, await matmulPipelines(gpu.device), options);
  }

  /** See {@linkcode DenseKernels.lastLayers}: on the device from x to the outputs ({@linkcode webGpuLastLayers}). */
  lastLayers(
    weights: VeGcnWeights,
    input: LastLayersInput,
    options: { keepFeatures: boolean },
  ): Promise<LastLayersResult> {
    return webGpuLastLayers(this.#engine, { weights, input }, options);
  }

  /** See {@linkcode DenseKernels.mseGradients}: GCN-V's iteration with the graph resident ({@linkcode WebGpuGcnVTrainer}). */
  mseGradients(
    weights: VeGcnWeights,
    input: { x: Float32Array; agg: Aggregator; target: Float32Array },
  ): Promise<{ loss: number; grads: VeGcnWeights } | null> {
    this.#trainer ??= new WebGpuGcnVTrainer(this.#engine);
    return this.#trainer.mseGradients(weights, input);
  }

  async matmul(a: Float32Array, b: Float32Array, shape: MatmulShape): Promise<Float32Array> {
    const { m, k, n } = shape;
    if (a.length !== m * k || b.length !== k * n) {
      throw new Error(`matmul: operands of ${a.length} and ${b.length} values do not fit ${m}×${k}·${k}×${n}`);
    }
    for (const bytes of [a.byteLength, b.byteLength, m * n * 4]) {
      if (bytes > this.#maxBinding) {
        throw new LtcError(`webgpu: a ${bytes}-byte operand exceeds this adapter's ${this.#maxBinding}-byte buffers`);
      }
    }
    if (Math.ceil(m / MATMUL_TILE) > MAX_WORKGROUPS || Math.ceil(n / MATMUL_TILE) > MAX_WORKGROUPS) {
      throw new LtcError(`webgpu: a ${m} × ${n} product needs more than ${MAX_WORKGROUPS} workgroups per dimension`);
    }
    const device = this.#device;
    // both transposed never occurs in the networks; transpose B on the CPU then
    const right = shape.transA && shape.transB ? transpose(b, n, k) : b;
    const pipe = this.#pipes[shape.transA ? 1 : shape.transB ? 2 : 0]!;
    const params = uniformBuffer(device, [m, n, k, 0]);
    const ga = uploadBuffer(device, a, "mm_a"), gb = uploadBuffer(device, right, "mm_b");
    const gc = storageBuffer(device, m * n * 4, "mm_c");
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeDispatch(device, pass, {
      pipeline: pipe,
      bindings: [params, ga, gb, gc],
      grid: [Math.max(1, Math.ceil(n / MATMUL_TILE)), Math.max(1, Math.ceil(m / MATMUL_TILE))],
    });
    pass.end();
    const out = new Float32Array(await readBuffer(device, gc, { bytes: m * n * 4, encoder }));
    for (const buf of [params, ga, gb, gc]) buf.destroy();
    return out;
  }
}
