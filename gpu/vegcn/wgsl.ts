/**
 * GCN-V/E's WGSL kernels: the `.wgsl` files beside this module, compiled once per device by the one WebGPU helper.
 * @module
 */
import { computePipeline, wgslFile } from "../webgpu.ts";

/** The pipeline of `<name>.wgsl` (in gpu/vegcn/) on `device`. */
export function vegcnKernel(device: GPUDevice, name: string): Promise<GPUComputePipeline> {
  return computePipeline(device, { label: `vegcn_${name}`, code: () => wgslFile(`${name}.wgsl`, import.meta.url) });
}
