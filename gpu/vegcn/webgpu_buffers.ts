/**
 * Buffer plumbing shared by GCN-V/E's WebGPU products ({@linkcode ./webgpu.ts}, {@linkcode ./webgpu_last_layers.ts}).
 * @module
 */

/** Most workgroups along one grid dimension (WebGPU's default limit); kernels stride over more. */
export const MAX_GROUPS = 65535;
/** Usage of every storage buffer here: bound to kernels, written by the queue, copied out for read-back. */
export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** A storage buffer holding `data` (at least 4 bytes: WebGPU refuses empty bindings). */
export function upload(device: GPUDevice, data: Int32Array | Float32Array, label: string): GPUBuffer {
  const buffer = device.createBuffer({ size: Math.max(4, data.byteLength), usage: STORAGE, label });
  if (data.byteLength > 0) {
    device.queue.writeBuffer(buffer, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  }
  return buffer;
}

/** Read a GPU buffer's first `bytes` bytes back as float32 (through a staging buffer). */
export async function readBack(device: GPUDevice, enc: GPUCommandEncoder, source: GPUBuffer, bytes: number) {
  const staging = device.createBuffer({
    size: Math.max(4, bytes),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  if (bytes > 0) enc.copyBufferToBuffer(source, 0, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  const result = new Float32Array(bytes / 4);
  if (bytes > 0) {
    await staging.mapAsync(GPUMapMode.READ);
    result.set(new Float32Array(staging.getMappedRange(0, bytes)));
    staging.unmap();
  }
  staging.destroy();
  return result;
}

/** A uniform buffer holding `values` (u32), for one dispatch's parameters. */
export function uniforms(device: GPUDevice, values: number[]): GPUBuffer {
  const size = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, new Uint32Array(values));
  return buffer;
}
