/**
 * Our checkpoint files (GCN-D and GCN-V/E alike): one `.npz` with a JSON `config` member (uint8 bytes), one float32
 * array per parameter named after its PyTorch name with dots as underscores, and optionally `momentum_<name>` — the
 * SGD momentum buffers, for resuming. Deterministic bytes: the same values give the same file. Also the plain-data view
 * of the original's pickled `meta` dict.
 * @module
 */
import { LtcError } from "./errors.ts";
import type { NdArray } from "./ndarray.ts";
import { type NpzFile, writeNpz } from "./npy.ts";

/** One parameter: its PyTorch name and shape. */
export interface ParamSpec {
  name: string;
  shape: number[];
}

/** A loaded checkpoint of a network whose weights are `W` (ours, or the original's `.pth`). */
export interface LoadedCheckpoint<W> {
  weights: W;
  /** SGD momentum buffers in parameter order (ours only, when saved) */
  momentum: Float32Array[] | null;
  /** epochs completed (from our config or the original's `meta.epoch`; 0 when unknown) */
  epoch: number;
  /** SGD steps taken (0 when unknown) */
  iter: number;
  /** our config JSON, or the original's meta as far as it is plain data */
  meta: Record<string, unknown>;
  source: "ltc-npz" | "pytorch-zip" | "pytorch-legacy";
}

/** npz member name of a parameter (`layers.0.gc.weight` → `layers_0_gc_weight`). */
export function arrayName(param: string): string {
  return param.replaceAll(".", "_");
}

/** Write `config`, the parameters and (when given) their momentum buffers, in `specs` order, atomically. */
export function writeCheckpointNpz(
  path: string,
  ckpt: { config: object; specs: ParamSpec[]; params: Float32Array[]; momentum: Float32Array[] | null },
): void {
  const json = new TextEncoder().encode(JSON.stringify(ckpt.config));
  const arrays: Record<string, NdArray> = { config: { dtype: "u1", shape: [json.length], data: json } };
  ckpt.specs.forEach((s, i) => arrays[arrayName(s.name)] = { dtype: "f4", shape: s.shape, data: ckpt.params[i]! });
  if (ckpt.momentum) {
    ckpt.specs.forEach((s, i) =>
      arrays[`momentum_${arrayName(s.name)}`] = { dtype: "f4", shape: s.shape, data: ckpt.momentum![i]! }
    );
  }
  writeNpz(path, arrays);
}

/**
 * The momentum buffers of a checkpoint, in `specs` order, or null when it holds none; a checkpoint with only some of
 * them, or one of another size, is an error naming the file and the member.
 */
export function readMomentum(
  npz: NpzFile,
  path: string,
  parts: { specs: ParamSpec[]; params: Float32Array[] },
): Float32Array[] | null {
  if (!npz.keys().some((k) => k.startsWith("momentum_"))) return null;
  return parts.specs.map((s, i) => {
    const key = `momentum_${arrayName(s.name)}`;
    if (!npz.has(key)) throw new LtcError(`${path}: has some momentum buffers but not '${key}'`);
    const a = npz.get(key).data;
    const n = parts.params[i]!.length;
    if (!(a instanceof Float32Array) || a.length !== n) {
      throw new LtcError(`${path}: '${key}' must be ${n} float32 values`);
    }
    return a;
  });
}

/** Plain-data view of the original's `meta` (a pickled dict): its number, string and boolean entries. */
export function plainMeta(meta: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (meta instanceof Map) {
    for (const [k, v] of meta) {
      if (["number", "string", "boolean"].includes(typeof v)) out[String(k)] = v;
    }
  }
  return out;
}
