/**
 * The one onnxruntime loader of the CPU twins (kNN, k-means products, GCN-D) and their one session rule.
 *
 * Loading: native `onnxruntime-node` first (MLAS SGEMM, threads), `onnxruntime-web` (wasm, SIMD) when the addon
 * cannot load, else none (callers fall back to TypeScript). `LTC_ORT=web` skips the native build (tests exercise the
 * fallback with it); `LTC_ORT=none` loads no build at all (tests run the TypeScript fallbacks through the stages).
 *
 * Sessions: intra-op threads = the machine's cores (the original's CPU path also used them all), one inter-op
 * thread, sequential execution, all graph optimisations, errors-only logging. Native worker threads sleep between
 * runs: spinning kept them busy while the TypeScript between runs (or another stage under `make -j`) needed the
 * cores — GCN-D training on 2 cores took 5–6 s an epoch spinning, 2.9 s without, with identical bytes; exact kNN
 * (long runs) was the same either way. `LTC_ORT_SPIN=1` lets them spin (many-core machines, one stage at a time).
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import { encodeModel, type OnnxModel } from "./onnx.ts";

/** A tensor handed to or returned by a session. */
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose?(): void;
}

/** An inference session. */
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}

/** The slice of the onnxruntime JS API used here (shared by onnxruntime-node and onnxruntime-web). */
export interface OrtApi {
  Tensor: new (
    type: "float32" | "int32" | "int64" | "uint8" | "int8",
    data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array,
    dims: number[],
  ) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  env?: { wasm?: { numThreads?: number } };
}

/** A loaded onnxruntime build. */
export interface OrtRuntime {
  ort: OrtApi;
  /** `onnxruntime-node` or `onnxruntime-web (wasm)`, recorded in backend labels */
  label: string;
  /** true for the native addon */
  native: boolean;
  /** this build's session options under the one rule (spinning as the environment says) */
  sessionOptions: Record<string, unknown>;
}

let runtime: Promise<OrtRuntime> | null = null;

/** Threads onnxruntime may use: the machine's cores. */
export function ortThreads(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/** Session options of a build: the rule in the module header. */
function sessionOptionsFor(native: boolean, spin: boolean): Record<string, unknown> {
  if (!native) return { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 };
  return {
    intraOpNumThreads: ortThreads(),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    logSeverityLevel: 3,
    ...(spin ? {} : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
  };
}

/** Whether native worker threads may spin between runs (only with `LTC_ORT_SPIN=1`; see the module header). */
function spinAllowed(): boolean {
  return Deno.env.get("LTC_ORT_SPIN") === "1";
}

/** Load onnxruntime once per process (see the module header); an {@linkcode LtcError} naming why when none loads. */
export function loadOrt(): Promise<OrtRuntime> {
  if (runtime) return runtime;
  runtime = (async () => {
    const errors: string[] = [];
    if (Deno.env.get("LTC_ORT") === "none") throw new LtcError(`cannot load onnxruntime (LTC_ORT=none)`);
    if (Deno.env.get("LTC_ORT") !== "web") {
      try {
        const mod = await import("onnxruntime-node");
        const ort = (mod.default ?? mod) as unknown as OrtApi;
        return { ort, label: "onnxruntime-node", native: true, sessionOptions: sessionOptionsFor(true, spinAllowed()) };
      } catch (err) {
        errors.push(`onnxruntime-node: ${(err as Error).message}`);
      }
    }
    try {
      const mod = await import("onnxruntime-web");
      const ort = (mod.default ?? mod) as unknown as OrtApi;
      if (ort.env?.wasm) ort.env.wasm.numThreads = ortThreads();
      return { ort, label: "onnxruntime-web (wasm)", native: false, sessionOptions: sessionOptionsFor(false, false) };
    } catch (err) {
      errors.push(`onnxruntime-web: ${(err as Error).message}`);
    }
    throw new LtcError(`cannot load onnxruntime (${errors.join("; ")})`);
  })();
  runtime.catch(() => runtime = null);
  return runtime;
}

/** {@linkcode loadOrt}, or null when no build loads here (the caller's TypeScript path runs). */
export async function tryLoadOrt(): Promise<OrtRuntime | null> {
  try {
    return await loadOrt();
  } catch {
    return null;
  }
}

/**
 * A session for `model` (a description, or already encoded bytes) under the one rule; `spin: false` keeps native
 * worker threads from spinning between runs whatever the environment says.
 */
export async function createSession(
  rt: OrtRuntime,
  model: OnnxModel | Uint8Array,
  options: { spin?: boolean } = {},
): Promise<OrtSession> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const sessionOptions = options.spin === false ? sessionOptionsFor(rt.native, false) : rt.sessionOptions;
  return await rt.ort.InferenceSession.create(bytes, sessionOptions);
}
