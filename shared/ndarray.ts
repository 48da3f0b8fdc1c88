/**
 * The in-memory n-d array shared by the npy/npz and pickle readers: a dtype, a C-order shape and a typed array.
 * @module
 */

/** numpy dtypes the tool reads and writes; `O` is an object array (values from a pickle). */
export type DType = "f4" | "f8" | "i4" | "i8" | "u1" | "b1" | "i2" | "u2" | "u4" | "u8" | "i1" | "O";

/** Typed storage for each dtype. */
export type NumericData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array;

/** A C-order n-d array. For `b1` the data is a Uint8Array of 0/1. */
export interface NdArray {
  dtype: DType;
  shape: number[];
  data: NumericData | unknown[];
}

const ITEM_SIZE: Record<Exclude<DType, "O">, number> = {
  f4: 4,
  f8: 8,
  i4: 4,
  i8: 8,
  u1: 1,
  b1: 1,
  i2: 2,
  u2: 2,
  u4: 4,
  u8: 8,
  i1: 1,
};

/** Bytes per element of a numeric dtype. */
export function itemSize(dtype: Exclude<DType, "O">): number {
  return ITEM_SIZE[dtype];
}

/** Product of a shape (1 for a 0-d array). */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Split a numpy `descr` like `<f8` into dtype and byte order; throws a plain Error for unsupported ones. */
export function parseDescr(descr: string): { dtype: DType; littleEndian: boolean } {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (!m) throw new Error(`unsupported dtype ${JSON.stringify(descr)}`);
  const [, order, kind, size] = m;
  if (kind === "O") return { dtype: "O", littleEndian: true };
  const code = `${kind}${size}` as DType;
  if (code === "?1" as DType || kind === "?") return { dtype: "b1", littleEndian: true };
  if (!(code in ITEM_SIZE)) throw new Error(`unsupported dtype ${JSON.stringify(descr)}`);
  return { dtype: code, littleEndian: order !== ">" };
}

/**
 * Build an {@linkcode NdArray} from raw element bytes. The bytes are copied into aligned storage and big-endian data
 * is byte-swapped. Fortran order is refused (numpy only writes it for arrays saved from transposed views).
 */
export function fromRawBytes(
  raw: Uint8Array,
  dtype: DType,
  shape: number[],
  options: { littleEndian: boolean; fortranOrder: boolean },
): NdArray {
  if (dtype === "O") throw new Error("object arrays have no raw bytes");
  if (options.fortranOrder && shape.length > 1) {
    throw new Error("Fortran-order arrays are not supported (save with C order)");
  }
  const n = sizeOf(shape);
  const isz = ITEM_SIZE[dtype];
  if (raw.length < n * isz) throw new Error(`array data has ${raw.length} bytes, expected ${n * isz}`);
  // Aligned little-endian data is used in place (no copy of a multi-GB kNN array); otherwise copy into fresh,
  // aligned storage (raw may be an unaligned view, or a Node Buffer whose slice() is a view).
  let buf: Uint8Array;
  if ((options.littleEndian || isz === 1) && raw.byteOffset % isz === 0) {
    buf = new Uint8Array(raw.buffer, raw.byteOffset, n * isz);
  } else {
    buf = new Uint8Array(n * isz);
    buf.set(raw.subarray(0, n * isz));
  }
  if (!options.littleEndian && isz > 1) {
    for (let i = 0; i < buf.length; i += isz) buf.subarray(i, i + isz).reverse();
  }
  let data: NumericData;
  switch (dtype) {
    case "f4":
      data = new Float32Array(buf.buffer, buf.byteOffset, n);
      break;
    case "f8":
      data = new Float64Array(buf.buffer, buf.byteOffset, n);
      break;
    case "i4":
      data = new Int32Array(buf.buffer, buf.byteOffset, n);
      break;
    case "i8":
      data = new BigInt64Array(buf.buffer, buf.byteOffset, n);
      break;
    case "u1":
    case "b1":
      data = buf;
      break;
    case "i1":
      data = new Int8Array(buf.buffer, buf.byteOffset, n);
      break;
    case "i2":
      data = new Int16Array(buf.buffer, buf.byteOffset, n);
      break;
    case "u2":
      data = new Uint16Array(buf.buffer, buf.byteOffset, n);
      break;
    case "u4":
      data = new Uint32Array(buf.buffer, buf.byteOffset, n);
      break;
    case "u8":
      data = new BigUint64Array(buf.buffer, buf.byteOffset, n);
      break;
  }
  return { dtype, shape, data };
}

/** Element values as plain numbers (bigints converted); for numeric arrays only. */
export function toNumbers(arr: NdArray): Float64Array {
  if (arr.dtype === "O") throw new Error("object array has no numeric values");
  const d = arr.data as NumericData;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float64Array.from(d, (v) => Number(v));
  return Float64Array.from(d as ArrayLike<number>);
}
