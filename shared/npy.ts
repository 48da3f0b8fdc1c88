/**
 * numpy `.npy` and `.npz` files: read and write, stored (`np.savez`) and deflated (`np.savez_compressed`) archives,
 * dtypes f4 f8 i4 i8 u1 b1 (and the other plain integer types), C order, 0-d arrays, and object arrays through the
 * safe pickle reader and the protocol-3 pickle writer. Every failure is an {@linkcode LtcError} naming the file.
 * @module
 */
import { writeFileAtomic } from "./artifact.ts";
import { LtcError, readFileChecked } from "./errors.ts";
import { type DType, fromRawBytes, itemSize, type NdArray, type NumericData, parseDescr, sizeOf } from "./ndarray.ts";
import { pickleValue, unpickle } from "./pickle.ts";
import { buildZip, concat, readZip, type ZipEntry } from "./zip.ts";

export type { DType, NdArray } from "./ndarray.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** What a `.npy` header says. */
export interface NpyHeader {
  dtype: DType;
  shape: number[];
  littleEndian: boolean;
  /** offset of the data after the header */
  dataStart: number;
}

/**
 * Where a `.npy` payload's header text lies (after magic, version and length field), or null when `bytes` (its first
 * bytes) are too few to tell. Throws on a wrong magic or an unknown format version.
 */
function npyHeaderSpan(bytes: Uint8Array, path: string): { major: number; start: number; end: number } | null {
  const bad = (what: string): never => {
    throw new LtcError(`${path}: not a valid .npy array (${what})`);
  };
  if (bytes.length < 10) return null;
  if (MAGIC.some((b, i) => bytes[i] !== b)) bad("missing \\x93NUMPY magic");
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) return { major, start: 10, end: 10 + view.getUint16(8, true) };
  if (major !== 2 && major !== 3) return bad(`unknown format version ${major}`);
  if (bytes.length < 12) return null;
  return { major, start: 12, end: 12 + view.getUint32(8, true) };
}

/** Parse one `.npy` payload. `path` names the file (or `archive.npz:member`) in errors. */
export function parseNpy(bytes: Uint8Array, path: string): NdArray {
  const bad = (what: string): never => {
    throw new LtcError(`${path}: not a valid .npy array (${what})`);
  };
  const { dtype, shape, littleEndian, dataStart } = parseNpyHeader(bytes, path);
  const body = bytes.subarray(dataStart);
  if (dtype === "O") {
    const { value } = unpickle(body, 0, { path });
    const arr = value as NdArray;
    if (!arr || !Array.isArray(arr.shape)) return bad("object array pickle does not hold an ndarray");
    return arr;
  }
  const need = sizeOf(shape) * itemSize(dtype);
  if (body.length < need) bad(`data truncated: ${body.length} bytes, shape needs ${need}`);
  return fromRawBytes(body, dtype, shape, { littleEndian, fortranOrder: false });
}

/** Parse the header of a `.npy` payload (`bytes` may hold the whole payload or just its header). */
export function parseNpyHeader(bytes: Uint8Array, path: string): NpyHeader {
  const bad = (what: string): never => {
    throw new LtcError(`${path}: not a valid .npy array (${what})`);
  };
  const span = npyHeaderSpan(bytes, path) ?? bad(bytes.length < 10 ? "missing \\x93NUMPY magic" : "truncated header");
  if (span.end > bytes.length) bad("truncated header");
  const { major, start, end } = span;
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, end));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined) return bad("header has no plain 'descr' (structured dtypes are not supported)");
  if (fortran === undefined || shapeText === undefined) return bad("header lacks fortran_order or shape");
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const v = Number(s.replace(/L$/, ""));
    if (!Number.isInteger(v) || v < 0) bad(`bad shape (${shapeText})`);
    return v;
  });
  if (fortran === "True" && shape.filter((s) => s > 1).length > 1) {
    throw new LtcError(`${path}: Fortran-order arrays are not supported; save the array in C order`);
  }
  let dtype: DType, littleEndian: boolean;
  try {
    ({ dtype, littleEndian } = parseDescr(descr));
  } catch {
    throw new LtcError(`${path}: unsupported dtype '${descr}' (supported: f4 f8 i4 i8 u1 b1 and plain ints)`);
  }
  return { dtype, shape, littleEndian, dataStart: end };
}

/** Read a `.npy` file. */
export function readNpy(path: string): NdArray {
  return parseNpy(readFileChecked(path), path);
}

/** The members of a `.npz` file, keyed without the `.npy` suffix, parsed lazily. */
export class NpzFile {
  readonly #entries: Map<string, ZipEntry>;
  /** @param path file to open; the archive's directory is read at once, members on demand */
  constructor(readonly path: string) {
    const bytes = readFileChecked(path);
    const zip = readZip(bytes, path);
    this.#entries = new Map();
    for (const [name, e] of zip) this.#entries.set(name.replace(/\.npy$/, ""), e);
  }
  /** The member names (keys), in archive order. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }
  /** Whether the archive holds `key`. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }
  /** Parse member `key`; a missing key is an error naming the file and the keys it does have. */
  get(key: string): NdArray {
    return parseNpy(this.#entry(key).read(), `${this.path}:${key}`);
  }
  /**
   * Stream member `key` without holding it inflated: `header` sees its header first and returns whether to go on
   * (false: nothing more is read, and `stream` returns false); then `data` receives the raw array bytes in order,
   * in pieces of any length. Size, truncation and CRC are checked as in {@linkcode get}.
   */
  stream(key: string, sink: { header(h: NpyHeader): boolean; data(bytes: Uint8Array): void }): boolean {
    const where = `${this.path}:${key}`;
    let head: Uint8Array | null = new Uint8Array(0);
    let header: NpyHeader | undefined;
    let received = 0, declined = false;
    const stop = new LtcError(`${where}: declined`); // thrown to end the stream early, caught below
    try {
      this.#entry(key).readChunks((chunk) => {
        if (head !== null) {
          head = concat([head, chunk]);
          const span = npyHeaderSpan(head, where);
          if (!span || head.length < span.end) return;
          header = parseNpyHeader(head, where);
          if (header.dtype === "O" || !sink.header(header)) {
            declined = true;
            throw stop;
          }
          chunk = head.subarray(header.dataStart);
          head = null;
        }
        received += chunk.length;
        if (chunk.length > 0) sink.data(chunk);
      });
    } catch (err) {
      if (err !== stop) throw err;
    }
    if (declined) return false;
    if (!header || header.dtype === "O") throw new LtcError(`${where}: not a valid .npy array (truncated header)`);
    const need = sizeOf(header.shape) * itemSize(header.dtype);
    if (received < need) {
      throw new LtcError(`${where}: not a valid .npy array (data truncated: ${received} bytes, shape needs ${need})`);
    }
    return true;
  }
  #entry(key: string): ZipEntry {
    const e = this.#entries.get(key);
    if (!e) throw new LtcError(`${this.path}: no array '${key}' (has: ${this.keys().join(", ") || "none"})`);
    return e;
  }
}

/** Read one array (default key `data`, the original's convention) from a `.npz`. */
export function readNpzArray(path: string, key = "data"): NdArray {
  return new NpzFile(path).get(key);
}

function shapeLiteral(shape: readonly number[]): string {
  if (shape.length === 0) return "()";
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

const DESCR: Record<Exclude<DType, "O">, string> = {
  f4: "<f4",
  f8: "<f8",
  i4: "<i4",
  i8: "<i8",
  u1: "|u1",
  b1: "|b1",
  i1: "|i1",
  i2: "<i2",
  u2: "<u2",
  u4: "<u4",
  u8: "<u8",
};

/**
 * A format-1.0 `.npy` header as numpy writes it: magic, version, header length, then the dict literal padded with
 * spaces and a newline so the data starts at a multiple of 64 bytes (which also aligns a float64 view after it).
 */
export function npyHeader(descr: string, shape: readonly number[]): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeLiteral(shape)}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const head = new Uint8Array(10 + header.length);
  head.set(MAGIC, 0);
  head[6] = 1;
  head[7] = 0;
  new DataView(head.buffer).setUint16(8, header.length, true);
  head.set(new TextEncoder().encode(header), 10);
  return head;
}

/**
 * Encode an array as `.npy` bytes (format 1.0, header padded to 64 bytes like numpy). An object array (`dtype: "O"`,
 * e.g. the 0-d `meta` dict of a prediction file) is pickled the way numpy 1.x's `np.save` does it
 * ({@linkcode pickleValue}); its items must be values that writer supports.
 */
export function encodeNpy(arr: NdArray): Uint8Array[] {
  const data = arr.data as NumericData | unknown[];
  if (data.length !== sizeOf(arr.shape)) {
    throw new Error(`array of ${data.length} elements does not match shape ${shapeLiteral(arr.shape)}`);
  }
  const head = npyHeader(arr.dtype === "O" ? "|O" : DESCR[arr.dtype], arr.shape);
  if (arr.dtype === "O") {
    if (!Array.isArray(data)) throw new Error("an object array's data must be a plain array of values");
    return [head, pickleValue(arr)];
  }
  if (Array.isArray(data)) throw new Error(`a ${arr.dtype} array's data must be a typed array`);
  return [head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
}

/** Write a `.npy` file atomically. */
export function writeNpy(path: string, arr: NdArray): void {
  writeFileAtomic(path, concat(encodeNpy(arr)));
}

/** Options for {@linkcode writeNpz}. */
export interface WriteNpzOptions {
  /** deflate members like `np.savez_compressed` (default true, as every file of the original is) */
  compress?: boolean;
  /** zlib level 0–9 (default 6, Python's default) */
  level?: number;
}

/** Encode arrays as `.npz` bytes (deterministic: fixed timestamps, members in the given order). */
export function encodeNpz(arrays: Record<string, NdArray>, options: WriteNpzOptions = {}): Uint8Array[] {
  const members = Object.entries(arrays).map(([k, a]) => ({ name: `${k}.npy`, chunks: encodeNpy(a) }));
  return buildZip(members, { compress: options.compress ?? true, level: options.level });
}

/** Write arrays to a `.npz` file atomically (temp name, then rename). */
export function writeNpz(path: string, arrays: Record<string, NdArray>, options: WriteNpzOptions = {}): void {
  writeFileAtomic(path, encodeNpz(arrays, options));
}
