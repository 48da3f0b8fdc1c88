/**
 * The kNN backends this build knows, in order of preference within each device, and how a search picks one.
 * A new backend is one file implementing {@linkcode ./backend.ts} plus its line here.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import { type BackendChoice, resolveBackend } from "../device.ts";
import type { ExactBackendEntry, ExactKnnBackend, IndexBackendEntry, IndexKnnBackend, IndexParams } from "./backend.ts";
import { typescriptBackend } from "./cpu_js.ts";
import { onnxruntimeBackend } from "./cpu_ort.ts";
import { hnswBackend } from "./hnsw.ts";
import { ivfBackend } from "./ivf.ts";
import { webgpuBackend } from "./webgpu.ts";

/** Exact backends: the first of the resolved device that opens here runs (TypeScript always opens). */
export const EXACT_KNN_BACKENDS: readonly ExactBackendEntry[] = [webgpuBackend, onnxruntimeBackend, typescriptBackend];

/** Approximate indexes, by name. */
export const KNN_INDEXES: readonly IndexBackendEntry[] = [hnswBackend, ivfBackend];

/**
 * The exact backend for a `--backend` choice: `auto` / `webgpu` / `cpu` resolve to a device as
 * {@linkcode resolveBackend} says (`webgpu` without an adapter is an error), then the first backend of that device
 * that opens on this machine.
 */
export async function openExactBackend(choice: BackendChoice): Promise<ExactKnnBackend> {
  const resolved = await resolveBackend(choice);
  const gpu = resolved.kind === "webgpu" ? resolved.gpu : null;
  for (const entry of EXACT_KNN_BACKENDS) {
    if (entry.device !== resolved.kind) continue;
    const backend = await entry.open({ gpu });
    if (backend) return backend;
  }
  throw new LtcError(`no exact kNN backend for the ${resolved.kind} device can run here`);
}

/** The approximate index `name` with its parameters. */
export async function openKnnIndex(name: string, params: IndexParams = {}): Promise<IndexKnnBackend> {
  const entry = KNN_INDEXES.find((e) => e.name === name);
  if (!entry) {
    throw new LtcError(`unknown kNN index ${name} (known: ${KNN_INDEXES.map((e) => e.name).join(", ")})`);
  }
  return await entry.open(params);
}
