/**
 * GCN-V/E's sparse aggregation on WebGPU ({@linkcode ./spmm.wgsl}): an {@linkcode Aggregator} whose A·X and Aᵀ·Y run
 * on the GPU, the CSR matrix (and its transpose, built on first use) resident there. Each call uploads X, dispatches
 * once and reads the result back, so it plugs into the same forward/backward code as the CPU aggregators. Sums are
 * float32 on the GPU (the CPU twin sums in float64): results agree to float32 rounding.
 * @module
 */
import type { GpuContext } from "../device.ts";
import { type Aggregator, type CsrMatrix, transposeCsr } from "./kernels.ts";

const MAX_GROUPS = 65535;
const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

const pipelineCache = new WeakMap<GPUDevice, Promise<GPUComputePipeline>>();

function spmmPipeline(device: GPUDevice): Promise<GPUComputePipeline> {
  let p = pipelineCache.get(device);
  if (!p) {
    const code = Deno.readTextFileSync(new URL("./spmm.wgsl", import.meta.url));
    const module = device.createShaderModule({ code, label: "vegcn_spmm" });
    p = device.createComputePipelineAsync({ layout: "auto", compute: { module, entryPoint: "main" }, label: "spmm" });
    pipelineCache.set(device, p);
  }
  return p;
}

/** A storage buffer holding `data` (at least 4 bytes: WebGPU refuses empty bindings). */
function upload(device: GPUDevice, data: Int32Array | Float32Array, label: string): GPUBuffer {
  const buffer = device.createBuffer({ size: Math.max(4, data.byteLength), usage: STORAGE, label });
  if (data.byteLength > 0) {
    device.queue.writeBuffer(buffer, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  }
  return buffer;
}

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
    rowPtr: upload(device, a.rowPtr, "csr_row_ptr"),
    colIdx: upload(device, a.colIdx, "csr_cols"),
    vals: upload(device, a.vals, "csr_vals"),
  };
}

/** The whole-graph aggregation of GCN-V (or any square CSR A) on WebGPU. */
export class GpuCsrAggregator implements Aggregator {
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;
  readonly #a: CsrMatrix;
  readonly #forward: GpuCsr;
  #transposed: GpuCsr | null = null;

  private constructor(gpu: GpuContext, pipeline: GPUComputePipeline, a: CsrMatrix) {
    this.#device = gpu.device;
    this.#pipeline = pipeline;
    this.#a = a;
    this.#forward = uploadCsr(gpu.device, a);
  }

  /** Upload `a` (square) to `gpu`. */
  static async create(gpu: GpuContext, a: CsrMatrix): Promise<GpuCsrAggregator> {
    if (a.rows !== a.cols) throw new Error(`GpuCsrAggregator: matrix is ${a.rows} × ${a.cols}, not square`);
    return new GpuCsrAggregator(gpu, await spmmPipeline(gpu.device), a);
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
  }

  async #run(m: GpuCsr, x: Float32Array, width: number): Promise<Float32Array> {
    if (x.length !== m.cols * width) {
      throw new Error(`GpuCsrAggregator: ${x.length} values for ${m.cols} rows of ${width}`);
    }
    const device = this.#device;
    const bytes = m.rows * width * 4;
    const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(params, 0, new Uint32Array([m.rows, width, 0, 0]));
    const input = upload(device, x, "spmm_x");
    const out = device.createBuffer({ size: Math.max(4, bytes), usage: STORAGE, label: "spmm_out" });
    const staging = device.createBuffer({
      size: Math.max(4, bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const bind = device.createBindGroup({
      layout: this.#pipeline.getBindGroupLayout(0),
      entries: [params, m.rowPtr, m.colIdx, m.vals, input, out].map((buffer, binding) => ({
        binding,
        resource: { buffer },
      })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(this.#pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(Math.ceil(width / 64), Math.max(1, Math.min(m.rows, MAX_GROUPS)));
    pass.end();
    if (bytes > 0) enc.copyBufferToBuffer(out, 0, staging, 0, bytes);
    device.queue.submit([enc.finish()]);
    const result = new Float32Array(m.rows * width);
    if (bytes > 0) {
      await staging.mapAsync(GPUMapMode.READ);
      result.set(new Float32Array(staging.getMappedRange(0, bytes)));
      staging.unmap();
    }
    for (const b of [params, input, out, staging]) b.destroy();
    return result;
  }
}
