/**
 * PyTorch checkpoints (`.pth`) read without Python and without executing anything. Two container formats:
 *
 * - **zip** (PyTorch ≥ 1.6): an archive `<name>/data.pkl` (the object pickle) plus `<name>/data/<key>` (one raw
 *   little-endian storage per key). A tensor's storage is a persistent id `('storage', <torch.XStorage>, key,
 *   location, numel)`.
 * - **legacy** (PyTorch ≤ 1.5, the published `pretrained_gcn_d*.pth`): a sequence of pickles — the magic number
 *   0x1950a86a20f9469cfc6c, the protocol version 1001, a sys-info dict, the object pickle (persistent ids
 *   `('storage', <torch.XStorage>, root_key, location, numel, view_metadata)`), the list of storage keys, and then
 *   for each key in that order an 8-byte little-endian element count followed by the raw elements.
 *
 * The object pickle may only name `torch._utils._rebuild_tensor_v2`, the typed `torch.*Storage` classes and
 * `collections.OrderedDict`; anything else is refused with an error naming the file and the global.
 * {@linkcode readStateDict} also unwraps `{'state_dict': …}` and strips DataParallel's `module.` prefixes.
 * @module
 */
import { LtcError, readFileChecked } from "./errors.ts";
import { type DType, type NdArray, type NumericData, sizeOf } from "./ndarray.ts";
import { PyTuple, unpickle } from "./pickle.ts";
import { readZip } from "./zip.ts";

/** Element type of each storage class, and how to turn its raw bytes into an array we can use. */
const STORAGE_TYPES: Record<string, { dtype: Exclude<DType, "O">; rawSize: number; half?: "f16" | "bf16" }> = {
  FloatStorage: { dtype: "f4", rawSize: 4 },
  DoubleStorage: { dtype: "f8", rawSize: 8 },
  HalfStorage: { dtype: "f4", rawSize: 2, half: "f16" },
  BFloat16Storage: { dtype: "f4", rawSize: 2, half: "bf16" },
  LongStorage: { dtype: "i8", rawSize: 8 },
  IntStorage: { dtype: "i4", rawSize: 4 },
  ShortStorage: { dtype: "i2", rawSize: 2 },
  CharStorage: { dtype: "i1", rawSize: 1 },
  ByteStorage: { dtype: "u1", rawSize: 1 },
  BoolStorage: { dtype: "b1", rawSize: 1 },
};

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** Which container a checkpoint used. */
export type TorchFormat = "zip" | "legacy";

/** A storage named by the object pickle; its bytes are attached once the container gives them. */
class StorageRef {
  bytes: Uint8Array | null = null;
  constructor(
    readonly type: string,
    readonly key: string,
    readonly numel: number,
    /** legacy storage views: element offset into the root storage and view length */
    readonly view: { offset: number; numel: number } | null,
  ) {}
}

/** A tensor waiting for its storage bytes (legacy storages come after the object pickle). */
class PendingTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** `collections.OrderedDict` as torch pickles it: a Map whose BUILD state (module `_metadata`) is kept apart. */
export class TorchOrderedDict extends Map<unknown, unknown> {
  /** attributes set by BUILD (for a state dict: `_metadata`, the module versions) */
  attributes: unknown = null;
  __setstate__(state: unknown): this {
    this.attributes = state;
    return this;
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Typed view of a storage's bytes, converted to the dtype we expose (half types widen to float32). */
function storageArray(ref: StorageRef, path: string): NumericData {
  const spec = STORAGE_TYPES[ref.type]!;
  const bytes = ref.bytes!;
  const need = ref.numel * spec.rawSize;
  if (bytes.length < need) {
    throw new LtcError(`${path}: storage ${ref.key} is truncated (${bytes.length} bytes, needs ${need})`);
  }
  const raw = bytes.slice(0, need); // aligned copy
  const dv = new DataView(raw.buffer);
  if (spec.half) {
    const out = new Float32Array(ref.numel);
    for (let i = 0; i < ref.numel; i++) {
      const h = dv.getUint16(2 * i, true);
      out[i] = spec.half === "f16" ? halfToFloat(h) : new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
    }
    return out;
  }
  switch (spec.dtype) {
    case "f4":
      return new Float32Array(raw.buffer);
    case "f8":
      return new Float64Array(raw.buffer);
    case "i8":
      return new BigInt64Array(raw.buffer);
    case "i4":
      return new Int32Array(raw.buffer);
    case "i2":
      return new Int16Array(raw.buffer);
    case "i1":
      return new Int8Array(raw.buffer);
    default:
      return raw;
  }
}

/** Materialise a tensor (any strides) as a C-order {@linkcode NdArray}. */
function materialise(t: PendingTensor, path: string, cache: Map<StorageRef, NumericData>): NdArray {
  const ref = t.storage;
  if (!ref.bytes) throw new LtcError(`${path}: storage ${ref.key} is missing from the checkpoint`);
  let all = cache.get(ref);
  if (!all) cache.set(ref, all = storageArray(ref, path));
  const spec = STORAGE_TYPES[ref.type]!;
  const base = ref.view ? ref.view.offset : 0;
  const limit = ref.view ? ref.view.numel : ref.numel;
  const n = sizeOf(t.shape);
  if (n > 0) {
    // Highest element touched must lie inside the storage (or the view) — checked before anything is allocated, and
    // so is the element count: a saved parameter never holds more elements than its storage (a corrupt shape would
    // otherwise ask for terabytes).
    let last = t.offset;
    t.shape.forEach((s, d) => last += (s - 1) * t.stride[d]!);
    if (last >= limit || n > limit) {
      throw new LtcError(`${path}: tensor of shape (${t.shape.join(", ")}) overruns storage ${ref.key}`);
    }
  }
  const ctor = all.constructor as { new (n: number): NumericData };
  const out = new ctor(n);
  if (n > 0) {
    let contiguous = true;
    for (let d = t.shape.length - 1, step = 1; d >= 0; step *= t.shape[d]!, d--) {
      if (t.shape[d]! > 1 && t.stride[d] !== step) contiguous = false;
    }
    if (contiguous) {
      out.set(all.subarray(base + t.offset, base + t.offset + n) as never);
      return { dtype: spec.dtype, shape: t.shape, data: out };
    }
    const idx = new Array<number>(t.shape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let src = base + t.offset;
      for (let d = 0; d < idx.length; d++) src += idx[d]! * t.stride[d]!;
      (out as unknown as unknown[])[i] = (all as unknown as unknown[])[src];
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d]! < t.shape[d]!) break;
        idx[d] = 0;
      }
    }
  }
  return { dtype: spec.dtype, shape: t.shape, data: out };
}

/** Replace every pending tensor in a pickled object tree by its array. */
function resolveTree(value: unknown, path: string, cache: Map<StorageRef, NumericData>): unknown {
  if (value instanceof PendingTensor) return materialise(value, path, cache);
  if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, resolveTree(v, path, cache));
    return value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = resolveTree(value[i], path, cache);
    return value;
  }
  return value;
}

function toIntList(v: unknown, what: string, path: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isInteger(x))) {
    throw new LtcError(`${path}: tensor ${what} is not a tuple of integers`);
  }
  return Array.from(v as number[]);
}

/** The pickle options that admit exactly what a checkpoint's object pickle needs. */
function torchPickleOptions(path: string, storages: Map<string, StorageRef>, format: TorchFormat) {
  const globals: Record<string, (args: unknown[]) => unknown> = {
    "collections.OrderedDict": (a) => new TorchOrderedDict(a.length ? (a[0] as Iterable<[unknown, unknown]>) : []),
    "torch._utils._rebuild_tensor_v2": (a) => {
      const [storage, offset, size, stride] = a;
      if (!(storage instanceof StorageRef)) throw new LtcError(`${path}: tensor without a storage`);
      if (typeof offset !== "number") throw new LtcError(`${path}: tensor storage offset is not an integer`);
      const shape = toIntList(size, "size", path);
      const strides = toIntList(stride, "stride", path);
      if (shape.length !== strides.length) throw new LtcError(`${path}: tensor size and stride differ in length`);
      if (!Number.isInteger(offset) || offset < 0) {
        throw new LtcError(`${path}: tensor storage offset ${offset} is not a non-negative integer`);
      }
      if (shape.some((v) => v < 0) || strides.some((v) => v < 0)) {
        throw new LtcError(
          `${path}: tensor has a negative size or stride (${shape.join(", ")} / ${strides.join(", ")})`,
        );
      }
      return new PendingTensor(storage, offset, shape, strides);
    },
  };
  // The storage classes only ever appear inside persistent ids; calling one is not something a checkpoint does.
  for (const name of Object.keys(STORAGE_TYPES)) {
    globals[`torch.${name}`] = () => {
      throw new LtcError(`${path}: torch.${name} is constructed directly, which checkpoints never do`);
    };
  }
  const persistentLoad = (pid: unknown): StorageRef => {
    if (!(pid instanceof PyTuple) || pid[0] !== "storage") {
      throw new LtcError(`${path}: unsupported persistent id (only tensor storages are allowed)`);
    }
    const cls = pid[1] as { module?: string; name?: string } | undefined;
    const type = cls?.name ?? "";
    if (cls?.module !== "torch" || !(type in STORAGE_TYPES)) {
      throw new LtcError(`${path}: unsupported storage type ${cls?.module}.${type}`);
    }
    const key = String(pid[2]);
    const numel = pid[4];
    if (typeof numel !== "number" || !Number.isInteger(numel) || numel < 0) {
      throw new LtcError(`${path}: storage ${key} has a bad element count`);
    }
    let view: StorageRef["view"] = null;
    const viewMeta = format === "legacy" ? pid[5] : null;
    if (viewMeta !== null && viewMeta !== undefined) {
      if (!(viewMeta instanceof PyTuple) || viewMeta.length !== 3) {
        throw new LtcError(`${path}: storage ${key} has malformed view metadata`);
      }
      view = { offset: Number(viewMeta[1]), numel: Number(viewMeta[2]) };
    }
    // Views of one root storage share its bytes; each view gets its own ref.
    const id = view ? `${key}@${view.offset}+${view.numel}` : key;
    let ref = storages.get(id);
    if (!ref) storages.set(id, ref = new StorageRef(type, key, numel, view));
    return ref;
  };
  return { globals, persistentLoad, path, builtins: false } as const;
}

function readZipCheckpoint(bytes: Uint8Array, path: string): unknown {
  const zip = readZip(bytes, path);
  const pkl = [...zip.keys()].find((k) => k === "data.pkl" || k.endsWith("/data.pkl"));
  if (!pkl) throw new LtcError(`${path}: zip archive has no data.pkl, so it is not a PyTorch checkpoint`);
  const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
  const order = zip.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order.read()).trim() !== "little") {
    throw new LtcError(`${path}: big-endian checkpoints are not supported`);
  }
  const storages = new Map<string, StorageRef>();
  const { value } = unpickle(zip.get(pkl)!.read(), 0, torchPickleOptions(path, storages, "zip"));
  for (const ref of storages.values()) {
    const entry = zip.get(`${prefix}data/${ref.key}`);
    if (!entry) throw new LtcError(`${path}: storage ${ref.key} is missing from the archive`);
    ref.bytes = entry.read();
  }
  return resolveTree(value, path, new Map());
}

function readLegacyCheckpoint(bytes: Uint8Array, path: string): unknown {
  const plain = { path, builtins: false };
  let pos = 0;
  const next = (what: string, options: Parameters<typeof unpickle>[2] = plain): unknown => {
    if (pos >= bytes.length) throw new LtcError(`${path}: truncated checkpoint (ends before the ${what})`);
    const r = unpickle(bytes, pos, options);
    pos = r.end;
    return r.value;
  };
  const magic = next("magic number");
  if (typeof magic !== "bigint" || magic !== LEGACY_MAGIC) {
    throw new LtcError(`${path}: not a PyTorch checkpoint (wrong magic number)`);
  }
  const protocol = next("protocol version");
  if (protocol !== LEGACY_PROTOCOL) throw new LtcError(`${path}: unsupported legacy protocol version ${protocol}`);
  const sysInfo = next("system info");
  if (sysInfo instanceof Map && sysInfo.get("little_endian") === false) {
    throw new LtcError(`${path}: big-endian checkpoints are not supported`);
  }
  const storages = new Map<string, StorageRef>();
  const value = next("object pickle", torchPickleOptions(path, storages, "legacy"));
  const keys = next("storage key list");
  if (!Array.isArray(keys)) throw new LtcError(`${path}: storage key list is not a list`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const byKey = new Map<string, StorageRef[]>();
  for (const ref of storages.values()) {
    const list = byKey.get(ref.key);
    if (list) list.push(ref);
    else byKey.set(ref.key, [ref]);
  }
  for (const k of keys) {
    const key = String(k);
    if (pos + 8 > bytes.length) throw new LtcError(`${path}: truncated checkpoint (storage ${key} header missing)`);
    const numel = Number(view.getBigInt64(pos, true));
    pos += 8;
    const refs = byKey.get(key) ?? [];
    const rawSize = refs.length ? STORAGE_TYPES[refs[0]!.type]!.rawSize : null;
    if (rawSize === null) {
      throw new LtcError(`${path}: storage ${key} is listed but no tensor uses it, so its size is unknown`);
    }
    const len = numel * rawSize;
    if (numel < 0 || pos + len > bytes.length) {
      throw new LtcError(`${path}: truncated checkpoint (storage ${key} needs ${len} bytes)`);
    }
    for (const ref of refs) {
      const need = ref.view ? ref.view.offset + ref.view.numel : ref.numel;
      if (need > numel) throw new LtcError(`${path}: storage ${key} holds ${numel} elements, tensors need ${need}`);
      ref.bytes = bytes.subarray(pos, pos + len);
    }
    pos += len;
  }
  return resolveTree(value, path, new Map());
}

/** A whole checkpoint: the unpickled object (tensors as {@linkcode NdArray}) and its container format. */
export interface TorchCheckpoint {
  value: unknown;
  format: TorchFormat;
}

/** Whether `bytes` look like a PyTorch checkpoint of either format (cheap sniffing). */
export function looksLikeTorch(bytes: Uint8Array): TorchFormat | null {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4) return "zip";
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1]! <= 5) return "legacy";
  return null;
}

/** Read any PyTorch checkpoint into plain values. */
export function readTorchCheckpoint(path: string, bytes: Uint8Array = readFileChecked(path)): TorchCheckpoint {
  const format = looksLikeTorch(bytes);
  if (format === "zip") return { value: readZipCheckpoint(bytes, path), format };
  if (format === "legacy") return { value: readLegacyCheckpoint(bytes, path), format };
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar") {
    throw new LtcError(`${path}: tar-format checkpoints (PyTorch < 0.4) are not supported`);
  }
  throw new LtcError(`${path}: not a PyTorch checkpoint (neither zip nor legacy pickle format)`);
}

/** A model state dict: parameter name → array, in the checkpoint's order. */
export interface StateDict {
  tensors: Map<string, NdArray>;
  /** the checkpoint's `meta` entry (mmcv: epoch, iter, …) when present */
  meta: unknown;
  format: TorchFormat;
}

/**
 * Read a checkpoint's state dict: the top-level dict's `state_dict` entry when it has one (mmcv / the original's
 * checkpoints), else the top-level dict itself. DataParallel's `module.` prefixes are stripped. Non-tensor entries
 * are an error naming the key.
 */
export function readStateDict(path: string): StateDict {
  const { value, format } = readTorchCheckpoint(path);
  if (!(value instanceof Map)) throw new LtcError(`${path}: checkpoint does not hold a dict of tensors`);
  const inner = value.has("state_dict") ? value.get("state_dict") : value;
  if (!(inner instanceof Map)) throw new LtcError(`${path}: 'state_dict' is not a dict`);
  const tensors = new Map<string, NdArray>();
  for (const [k, v] of inner) {
    const key = String(k).startsWith("module.") ? String(k).slice("module.".length) : String(k);
    if (!v || typeof v !== "object" || !("shape" in v) || !("data" in v)) {
      throw new LtcError(`${path}: state dict entry '${k}' is not a tensor`);
    }
    if (tensors.has(key)) throw new LtcError(`${path}: state dict names '${key}' twice (with and without module.)`);
    tensors.set(key, v as NdArray);
  }
  return { tensors, meta: value.has("state_dict") ? value.get("meta") ?? null : null, format };
}
