/**
 * kNN files `knns/<name>/<method>_k_<k>.npz`, key `data`. Two layouts are read:
 * - dense `(N, 2, k)` float64 (faiss runs): `data[i,0,:]` neighbour ids, `data[i,1,:]` distances = 1 − cosine;
 * - ragged object array `(N, 2)` of per-row ndarrays (hnsw runs whose rows can be shorter than k), padded here
 *   like the original's `fast_knns2spmat` does: neighbour −1, distance 1.
 * Written always in the dense layout, deflated, loadable by `np.load(f)['data']`.
 * @module
 */
import { writeFileAtomic } from "./artifact.ts";
import { LtcError } from "./errors.ts";
import { type NdArray, toNumbers } from "./ndarray.ts";
import { encodeNpy, npyHeader, NpzFile } from "./npy.ts";
import { buildZip, DEFLATE_PIECE, deflateMemberParallel, type MemberPieces } from "./zip.ts";

/** A kNN graph: row i's neighbours `nbrs[i*k .. i*k+k)` (−1 = none) and distances (1 − cosine). */
export interface KnnGraph {
  n: number;
  k: number;
  /** neighbour ids, row-major N × k; −1 marks padding */
  nbrs: Int32Array;
  /** distances 1 − cos, row-major N × k, float32 (the original computes them in float32 too) */
  dists: Float32Array;
}

/** Read a kNN `.npz` in either layout; errors name the file. */
export function readKnn(path: string): KnnGraph {
  const npz = new NpzFile(path);
  // The dense float64 layout is inflated and converted piece by piece: holding it inflated (N × 2k × 8 bytes, 750 MB
  // at MS1M part1 size) next to the archive and the result would double a stage's peak memory.
  const streamed = readDenseStreamed(npz, { path });
  if (streamed) return streamed;
  const arr = npz.get("data");
  if (arr.dtype === "O") return fromRagged(arr, path);
  if (arr.shape.length !== 3 || arr.shape[1] !== 2) {
    throw new LtcError(`${path}: kNN array has shape (${arr.shape.join(", ")}), expected (N, 2, k)`);
  }
  const [n, , k] = arr.shape as [number, number, number];
  if (n === 0 || k === 0) throw new LtcError(`${path}: kNN array is empty`);
  const values = arr.dtype === "f8" ? arr.data as Float64Array : toNumbers(arr);
  const nbrs = new Int32Array(n * k);
  const dists = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const base = i * 2 * k;
    for (let j = 0; j < k; j++) {
      nbrs[i * k + j] = neighbourId(values[base + j]!, i, n, path);
      dists[i * k + j] = distance(values[base + k + j]!, i, path);
    }
  }
  return { n, k, nbrs, dists };
}

/** A neighbour id read from a file, checked: an integer in −1 (padding) .. n − 1. */
function neighbourId(id: number, row: number, n: number, path: string): number {
  if (!Number.isInteger(id) || id < -1 || id >= n) {
    throw new LtcError(`${path}: row ${row} has neighbour id ${id}, outside 0..${n - 1}`);
  }
  return id;
}

/** A distance read from a file, checked: a finite number (NaN or Inf would silently drop or keep edges). */
function distance(d: number, row: number, path: string): number {
  if (!Number.isFinite(d)) throw new LtcError(`${path}: row ${row} has distance ${d}`);
  return d;
}

/**
 * The dense little-endian float64 `(N, 2, k)` layout, streamed; undefined for any other layout. Neighbour ids must
 * lie in −1 .. `idBound` − 1 (default: N, the rows of a whole graph; a part file's rows point into the whole base).
 */
function readDenseStreamed(npz: NpzFile, opts: { path: string; idBound?: number }): KnnGraph | undefined {
  const { path } = opts;
  let n = 0, k = 0, bound = 0;
  let row = 0, col = 0; // where the next float64 value goes: row, and column in the row's 2k values
  let nbrs = new Int32Array(0), dists = new Float32Array(0);
  let buf = new Uint8Array(1 << 16); // 8-byte aligned staging for unaligned pieces
  let carry = 0; // bytes of an incomplete value at the start of `buf`
  const ok = npz.stream("data", {
    header(h) {
      if (h.dtype !== "f8" || !h.littleEndian || h.shape.length !== 3 || h.shape[1] !== 2) return false;
      [n, , k] = h.shape as [number, number, number];
      if (n === 0 || k === 0) return false; // let the full reader name the problem
      nbrs = new Int32Array(n * k);
      dists = new Float32Array(n * k);
      bound = opts.idBound ?? n;
      return true;
    },
    data(bytes) {
      if (carry + bytes.length > buf.length) {
        const grown = new Uint8Array(Math.max(carry + bytes.length, 2 * buf.length));
        grown.set(buf.subarray(0, carry));
        buf = grown;
      }
      buf.set(bytes, carry);
      const total = carry + bytes.length;
      const count = Math.floor(total / 8);
      const row2 = 2 * k;
      const values = new Float64Array(buf.buffer, 0, Math.min(count, (n - row) * row2 - col));
      let i = row, j = col;
      for (let t = 0; t < values.length; t++) {
        if (j < k) {
          nbrs[i * k + j] = neighbourId(values[t]!, i, bound, path);
        } else dists[i * k + j - k] = distance(values[t]!, i, path);
        if (++j === row2) j = 0, i++;
      }
      row = i, col = j;
      carry = total - count * 8;
      buf.copyWithin(0, count * 8, total);
    },
  });
  return ok ? { n, k, nbrs, dists } : undefined;
}

function fromRagged(arr: NdArray, path: string): KnnGraph {
  if (arr.shape.length !== 2 || arr.shape[1] !== 2) {
    throw new LtcError(`${path}: object kNN array has shape (${arr.shape.join(", ")}), expected (N, 2)`);
  }
  const n = arr.shape[0]!;
  const cells = arr.data as NdArray[];
  let k = 0;
  for (let i = 0; i < n; i++) {
    const ids = cells[2 * i];
    if (!ids || !Array.isArray(ids.shape)) throw new LtcError(`${path}: row ${i} is not an ndarray pair`);
    k = Math.max(k, ids.shape[0] ?? 0);
  }
  if (n === 0 || k === 0) throw new LtcError(`${path}: kNN array is empty`);
  const nbrs = new Int32Array(n * k).fill(-1);
  const dists = new Float32Array(n * k).fill(1);
  for (let i = 0; i < n; i++) {
    const ids = toNumbers(cells[2 * i]!);
    const ds = toNumbers(cells[2 * i + 1]!);
    if (ids.length !== ds.length) {
      throw new LtcError(`${path}: row ${i} has ${ids.length} ids but ${ds.length} distances`);
    }
    for (let j = 0; j < ids.length; j++) {
      nbrs[i * k + j] = neighbourId(ids[j]!, i, n, path);
      dists[i * k + j] = distance(ds[j]!, i, path);
    }
  }
  return { n, k, nbrs, dists };
}

/** Encode a graph in the dense `(N, 2, k)` float64 layout. */
export function knnToArray(g: KnnGraph): NdArray {
  const { n, k } = g;
  const out = new Float64Array(n * 2 * k);
  for (let i = 0; i < n; i++) {
    const base = i * 2 * k;
    for (let j = 0; j < k; j++) {
      out[base + j] = g.nbrs[i * k + j]!;
      out[base + k + j] = g.dists[i * k + j]!;
    }
  }
  return { dtype: "f8", shape: [n, 2, k], data: out };
}

/**
 * Write a kNN graph as the original's `np.savez_compressed(path, data=(N, 2, k) float64)`, atomically. The `.npy`
 * member (header + float64 rows) is made 4 MiB piece by piece as the deflate workers (`workers`, default
 * `deflateWorkers()` of shared/zip.ts) take them, so the float64 layout never exists whole (at scale 9, 5.21M × 80,
 * it would be 6.7 GB next to the graph) and every core compresses; the bytes equal
 * `writeNpz(path, { data: knnToArray(g) })` whatever the worker count.
 */
export async function writeKnn(path: string, g: KnnGraph, options: { workers?: number } = {}): Promise<void> {
  const deflated = await deflateMemberParallel(denseMemberPieces(g), { workers: options.workers });
  writeFileAtomic(path, buildZip([{ name: "data.npy", chunks: [], deflated }], { compress: true }));
}

/**
 * The `.npy` member of a graph's dense `(N, 2, k)` float64 layout, made piece by piece: piece p holds bytes
 * [p·DEFLATE_PIECE, …) of header + values. npy pads its header to a multiple of 64 bytes and a piece is a multiple
 * of 8, so every piece after the header starts at a whole float64 value.
 */
function denseMemberPieces(g: KnnGraph): MemberPieces {
  const { n, k } = g;
  const head = npyHeader("<f8", [n, 2, k]);
  const size = head.length + n * 2 * k * 8;
  return {
    size,
    piece(p) {
      const start = p * DEFLATE_PIECE, end = Math.min(size, start + DEFLATE_PIECE);
      const out = new Uint8Array(end - start);
      let at = 0; // byte of `out` where values begin
      if (start < head.length) {
        out.set(head.subarray(start, Math.min(head.length, end)), 0);
        at = head.length - start;
      }
      const values = new Float64Array(out.buffer, at, (out.length - at) / 8);
      const v = (start + at - head.length) / 8; // value index in the (N, 2k) layout
      let row = Math.floor(v / (2 * k)), col = v - row * 2 * k;
      for (let t = 0; t < values.length; t++) {
        values[t] = col < k ? g.nbrs[row * k + col]! : g.dists[row * k + col - k]!;
        if (++col === 2 * k) col = 0, row++;
      }
      return out;
    },
  };
}

/** Rows [start, end) of a kNN graph over `total` rows, as a part file holds them. */
export interface KnnPart {
  /** the rows: `graph.n = end − start`, neighbour ids into all `total` rows */
  graph: KnnGraph;
  start: number;
  end: number;
  total: number;
}

/**
 * Write rows [start, end) of a kNN graph (a shard's part file, e.g. `faiss_k_80.part_0_of_4.npz`), atomically:
 * member `data` in the dense layout of {@linkcode writeKnn} with shape `(end − start, 2, k)` — its ids point into
 * all `total` rows — and member `rows`, int64 `[start, end, total]`, so the file says which rows it holds.
 */
export async function writeKnnPart(path: string, part: KnnPart, options: { workers?: number } = {}): Promise<void> {
  const { graph, start, end, total } = part;
  if (graph.n !== end - start) throw new LtcError(`${path}: ${graph.n} rows given for rows [${start}, ${end})`);
  const deflated = await deflateMemberParallel(denseMemberPieces(graph), { workers: options.workers });
  const rows = encodeNpy({
    dtype: "i8",
    shape: [3],
    data: BigInt64Array.of(BigInt(start), BigInt(end), BigInt(total)),
  });
  writeFileAtomic(
    path,
    buildZip([{ name: "data.npy", chunks: [], deflated }, { name: "rows.npy", chunks: rows }], {
      compress: true,
    }),
  );
}

/** Read a part file written by {@linkcode writeKnnPart}; errors name the file. */
export function readKnnPart(path: string): KnnPart {
  const npz = new NpzFile(path);
  const rows = toNumbers(npz.get("rows"));
  const [start, end, total] = rows;
  if (
    rows.length !== 3 || !Number.isInteger(start) || !Number.isInteger(end) || !Number.isInteger(total) ||
    !(0 <= start! && start! <= end! && end! <= total! && total! > 0)
  ) {
    throw new LtcError(`${path}: member 'rows' is [${rows.join(", ")}], not [start, end, total] of a row range`);
  }
  const graph = readDenseStreamed(npz, { path, idBound: total });
  if (!graph) throw new LtcError(`${path}: member 'data' is not a dense (rows, 2, k) float64 array`);
  if (graph.n !== end! - start!) {
    throw new LtcError(`${path}: holds ${graph.n} rows but says it holds rows [${start}, ${end})`);
  }
  return { graph, start: start!, end: end!, total: total! };
}

/** File name the original uses for a kNN graph: `<method>_k_<k>.npz`. */
export function knnFileName(method: string, k: number): string {
  return `${method}_k_${k}.npz`;
}
