/**
 * GCN-V and GCN-E (CVPR'20, the original's `vegcn/`) for ltc-deno: the networks' parameters and checkpoints, their
 * forward/backward passes over pluggable dense kernels and graph aggregations, and SGD. The clustering rules built
 * on them live in `cluster/gcn_v.ts` and `cluster/gcn_e.ts`.
 * @module
 */
import { type BackendChoice, resolveBackend } from "../device.ts";
import { type Aggregator, CsrAggregator, type CsrMatrix, type DenseKernels, tsKernels } from "./kernels.ts";
import { GpuCsrAggregator, WebGpuKernels } from "./webgpu.ts";
import { tryLoadOrt } from "../ort.ts";
import { OrtKernels } from "./ort_kernels.ts";

export * from "./checkpoint.ts";
export * from "./cpu.ts";
export * from "./kernels.ts";
export * from "./model.ts";
export * from "./ort_kernels.ts";
export * from "./sgd.ts";
export * from "./webgpu.ts";

/** The products a GCN-V/E run uses, for one backend choice. */
export interface VeGcnBackend {
  /** e.g. `cpu (typescript)`, `webgpu (NVIDIA H100)` */
  label: string;
  kernels: DenseKernels;
  /** the whole-graph aggregation for a CSR adjacency */
  aggregator(a: CsrMatrix): Promise<Aggregator>;
}

/**
 * Products for `choice` (as GCN-D and the kNN resolve it): `webgpu` runs the WGSL kernels, `cpu` the CPU twin —
 * onnxruntime's products where it loads, the TypeScript ones otherwise (`LTC_ORT=none` forces them) — and `auto`
 * WebGPU only on a real (non-fallback) adapter. The aggregation runs in TypeScript on the CPU twin.
 */
export async function veGcnBackend(choice: BackendChoice = "auto"): Promise<VeGcnBackend> {
  const resolved = await resolveBackend(choice);
  if (resolved.kind === "webgpu") {
    const { gpu } = resolved;
    const kernels = await WebGpuKernels.create(gpu);
    return { label: kernels.name, kernels, aggregator: (a) => GpuCsrAggregator.create(gpu, a) };
  }
  const kernels = await tryLoadOrt() ? await OrtKernels.create() : tsKernels;
  return { label: kernels.name, kernels, aggregator: (a) => Promise.resolve(new CsrAggregator(a)) };
}
