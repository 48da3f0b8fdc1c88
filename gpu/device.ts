/**
 * Choosing a compute backend. `webgpu` runs the hand-written WGSL kernels; `cpu` runs the CPU twin (onnxruntime for
 * large matrix products, TypeScript for the rest). `auto` picks WebGPU only for a real GPU: a fallback adapter (here,
 * Mesa llvmpipe, a CPU rasteriser at ~10 GFLOP/s) is slower than the CPU twin.
 * @module
 */
import { LtcError } from "../shared/errors.ts";

/** What the user asked for. */
export type BackendChoice = "auto" | "webgpu" | "cpu";

/** A WebGPU device with what we know of its adapter. */
export interface GpuContext {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** human-readable adapter name, recorded in sidecars and benchmarks */
  adapterName: string;
  /** true for software adapters (llvmpipe, SwiftShader, WARP) */
  isFallback: boolean;
}

let cached: Promise<GpuContext | null> | null = null;

/** Human-readable name of an adapter. */
export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info;
  const parts = [info.description, info.vendor && `vendor ${info.vendor}`, info.architecture].filter((s) => !!s);
  return parts.join(", ") || "unknown adapter";
}

function looksSoftware(adapter: GPUAdapter): boolean {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const desc = `${info.description} ${info.vendor} ${info.device}`.toLowerCase();
  return Boolean(info.isFallbackAdapter) || /llvmpipe|swiftshader|lavapipe|software|warp/.test(desc);
}

/**
 * The process-wide WebGPU device (requested once, with the adapter's maximum buffer limits), or null where WebGPU is
 * unavailable.
 */
export function getGpu(): Promise<GpuContext | null> {
  if (cached) return cached;
  cached = (async () => {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) return null;
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return null;
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
    return { device, adapter, adapterName: describeAdapter(adapter), isFallback: looksSoftware(adapter) };
  })();
  return cached;
}

/** Resolve `auto` / `webgpu` / `cpu` to a concrete backend; `webgpu` without any adapter is an error. */
export async function resolveBackend(
  choice: BackendChoice,
): Promise<{ kind: "webgpu"; gpu: GpuContext } | { kind: "cpu" }> {
  if (choice === "cpu") return { kind: "cpu" };
  const gpu = await getGpu();
  if (choice === "webgpu") {
    if (!gpu) throw new LtcError("--backend webgpu: no WebGPU adapter is available on this machine");
    return { kind: "webgpu", gpu };
  }
  if (gpu && !gpu.isFallback) return { kind: "webgpu", gpu };
  return { kind: "cpu" };
}

/** Label of a resolved backend for sidecars and benchmark output. */
export function backendLabel(
  b: { kind: "webgpu"; gpu: GpuContext } | { kind: "cpu" },
  cpuDetail = "onnxruntime",
): string {
  return b.kind === "webgpu" ? `webgpu (${b.gpu.adapterName})` : `cpu (${cpuDetail})`;
}
