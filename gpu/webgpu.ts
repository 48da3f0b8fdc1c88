/**
 * The WebGPU plumbing every WGSL kernel (kNN tiles, GCN-D layers) runs on:
 * - {@linkcode computePipeline}: compile a kernel inside a validation error scope (a shader error throws here,
 *   naming the kernel, instead of surfacing later as silent garbage), once per device and specialisation
 *   (`override` constants);
 * - {@linkcode encodeDispatch} / {@linkcode dispatch}: bind buffers to `@group(0)` in binding order and run a grid;
 * - {@linkcode storageBuffer}, {@linkcode uploadBuffer}, {@linkcode uniformBuffer}, {@linkcode readBuffer},
 *   {@linkcode readBuffers}: buffers in and out (several read-backs awaited together: one wait);
 * - {@linkcode bindingLimit} and {@linkcode uploadRowParts}: row-major matrices cut into buffers that each fit one
 *   storage binding (`maxStorageBufferBindingSize`, 128 MiB on llvmpipe).
 * @module
 */

/** Most workgroups along one grid dimension (WebGPU's default limit): kernels that need more stride over rows. */
export const MAX_WORKGROUPS = 65535;

/** Usage of buffers kernels read and write and the host fills and reads back. */
export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** A kernel to compile: WGSL with a `main` entry point, and values of its `override` constants. */
export interface KernelSpec {
  /** names the kernel in errors and in the per-device cache (with the constants) */
  label: string;
  /** the WGSL, built only when the cache misses */
  code: () => string;
  /** `override` constants of this specialisation */
  constants?: Record<string, number>;
}

const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** WGSL source of a file beside the module at `base` (pass `import.meta.url`). */
export function wgslFile(name: string, base: string): string {
  return Deno.readTextFileSync(new URL(`./${name}`, base));
}

/** The compiled pipeline of `kernel` on `device`, compiled once per device and specialisation. */
export function computePipeline(device: GPUDevice, kernel: KernelSpec): Promise<GPUComputePipeline> {
  let perDevice = pipelines.get(device);
  if (!perDevice) pipelines.set(device, perDevice = new Map());
  const key = `${kernel.label} ${JSON.stringify(kernel.constants ?? {})}`;
  let p = perDevice.get(key);
  if (!p) {
    p = compile(device, kernel);
    perDevice.set(key, p);
    p.catch(() => perDevice.delete(key));
  }
  return p;
}

async function compile(device: GPUDevice, kernel: KernelSpec): Promise<GPUComputePipeline> {
  const code = kernel.code();
  // nothing awaits between push and pop, so concurrent compiles never share a scope
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label: kernel.label });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    label: kernel.label,
    compute: { module, entryPoint: "main", ...(kernel.constants ? { constants: kernel.constants } : {}) },
  });
  const err = await device.popErrorScope();
  if (err) throw new Error(`${kernel.label}: ${err.message}`);
  return pipeline;
}

/** One dispatch: `bindings[i]` is `@group(0) @binding(i)`; `grid` is the workgroup count (y, z default 1). */
export interface DispatchSpec {
  pipeline: GPUComputePipeline;
  bindings: (GPUBuffer | GPUBufferBinding)[];
  grid: [number, number?, number?];
}

/** Record a dispatch into an open compute pass. */
export function encodeDispatch(device: GPUDevice, pass: GPUComputePassEncoder, d: DispatchSpec): void {
  const entries = d.bindings.map((b, binding) => ({ binding, resource: b instanceof GPUBuffer ? { buffer: b } : b }));
  pass.setPipeline(d.pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: d.pipeline.getBindGroupLayout(0), entries }));
  pass.dispatchWorkgroups(d.grid[0], d.grid[1] ?? 1, d.grid[2] ?? 1);
}

/** Encode and submit one dispatch on its own. */
export function dispatch(device: GPUDevice, d: DispatchSpec): void {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encodeDispatch(device, pass, d);
  pass.end();
  device.queue.submit([enc.finish()]);
}

/** A storage buffer of at least `bytes` (rounded up to 16, never empty). */
export function storageBuffer(device: GPUDevice, bytes: number, label?: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: STORAGE_USAGE, label });
}

/** A storage buffer holding `data` (the write is queued, so later submissions see it). */
export function uploadBuffer(device: GPUDevice, data: Float32Array | Int32Array, label?: string): GPUBuffer {
  const buffer = storageBuffer(device, data.byteLength, label);
  device.queue.writeBuffer(buffer, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  return buffer;
}

/** A uniform buffer holding `values` as u32 (one dispatch's parameters; size rounded up to 16 bytes). */
export function uniformBuffer(device: GPUDevice, values: number[], label?: string): GPUBuffer {
  const size = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label });
  device.queue.writeBuffer(buffer, 0, new Uint32Array(values));
  return buffer;
}

/**
 * Copy the first `bytes` of `src` to the host. With `encoder`, the copy is appended to it and the encoder is
 * submitted here (work recorded before it and the copy go in one submission).
 */
export async function readBuffer(
  device: GPUDevice,
  src: GPUBuffer,
  options: { bytes: number; encoder?: GPUCommandEncoder },
): Promise<ArrayBuffer> {
  const { bytes } = options;
  const copyBytes = Math.ceil(bytes / 4) * 4;
  const staging = device.createBuffer({
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = options.encoder ?? device.createCommandEncoder();
  if (copyBytes > 0) enc.copyBufferToBuffer(src, 0, staging, 0, copyBytes);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}

/**
 * Copy several buffers' first bytes to the host with one wait: the copies are appended to `encoder` (or a new one),
 * submitted together, and all mapped at once.
 */
export async function readBuffers(
  device: GPUDevice,
  reads: { src: GPUBuffer; bytes: number }[],
  options: { encoder?: GPUCommandEncoder } = {},
): Promise<ArrayBuffer[]> {
  const enc = options.encoder ?? device.createCommandEncoder();
  const staging = reads.map(({ src, bytes }) => {
    const buffer = device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 16) * 16),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (bytes > 0) enc.copyBufferToBuffer(src, 0, buffer, 0, Math.ceil(bytes / 4) * 4);
    return buffer;
  });
  device.queue.submit([enc.finish()]);
  try {
    await Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ)));
    return staging.map((b, i) => b.getMappedRange().slice(0, reads[i]!.bytes));
  } finally {
    staging.forEach((b) => b.destroy());
  }
}

/** Largest storage binding to use: the device's (and its largest buffer), or a smaller test override. */
export function bindingLimit(device: GPUDevice, override?: number): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return override ? Math.min(limit, override) : limit;
}

/** A row-major float32 matrix on the GPU: consecutive row ranges, each in its own buffer that fits one binding. */
export interface GpuRowParts {
  dim: number;
  n: number;
  parts: { buffer: GPUBuffer; row0: number; rows: number }[];
  destroy(): void;
}

/**
 * Upload `n × dim` rows once, cut into binding-sized buffers whose row counts are multiples of `rowAlign` (so the
 * kernels' row tiles never straddle two buffers and binding offsets at tile starts stay aligned).
 */
export function uploadRowParts(
  device: GPUDevice,
  rows: { data: Float32Array; n: number; dim: number },
  options: { rowAlign: number; maxBindingBytes?: number },
): GpuRowParts {
  const { data, n, dim } = rows;
  const limit = bindingLimit(device, options.maxBindingBytes);
  const per = Math.floor(limit / (dim * 4) / options.rowAlign) * options.rowAlign;
  if (per < options.rowAlign) throw new Error(`webgpu: dim ${dim} too large for a ${limit}-byte storage binding`);
  const parts: GpuRowParts["parts"] = [];
  for (let row0 = 0; row0 < n; row0 += per) {
    const count = Math.min(per, n - row0);
    const buffer = storageBuffer(device, count * dim * 4, `rows ${row0}+${count}`);
    device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>, row0 * dim, count * dim);
    parts.push({ buffer, row0, rows: count });
  }
  return { dim, n, parts, destroy: () => parts.forEach((p) => p.buffer.destroy()) };
}
