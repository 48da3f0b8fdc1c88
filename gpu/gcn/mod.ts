/**
 * GCN-D (cluster detection) for ltc-deno: model, engines (WebGPU kernels and the CPU twin), checkpoints, configs
 * and proposal scoring. Stages `detect` and `train` are built on this module.
 * @module
 */
import { type BackendChoice, resolveBackend } from "../device.ts";
import { CpuGcn, type CpuKernels } from "./cpu.ts";
import type { GcnEngine } from "./engine.ts";
import type { GcnWeights } from "./model.ts";
import { GpuGcn } from "./webgpu.ts";

export * from "./checkpoint.ts";
export * from "./config.ts";
export * from "./cpu.ts";
export * from "./engine.ts";
export * from "./graph.ts";
export * from "./infer.ts";
export * from "./model.ts";
export * from "./rng.ts";
export * from "./trainer.ts";
export * from "./webgpu.ts";

/**
 * An engine for `choice`: `webgpu` runs the WGSL kernels, `cpu` the CPU twin, `auto` WebGPU only on a real
 * (non-fallback) adapter. Momentum buffers, when given, are restored (resuming training).
 */
export async function createEngine(
  weights: GcnWeights,
  choice: BackendChoice,
  options: { momentum?: Float32Array[] | null; cpuKernels?: CpuKernels } = {},
): Promise<GcnEngine & { setMomentum(b: Float32Array[] | null): void }> {
  const backend = await resolveBackend(choice);
  const engine = backend.kind === "webgpu"
    ? await GpuGcn.create(weights, backend.gpu)
    : await CpuGcn.create(weights, { kernels: options.cpuKernels });
  if (options.momentum) engine.setMomentum(options.momentum);
  return engine;
}
