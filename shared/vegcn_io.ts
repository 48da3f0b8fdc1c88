/**
 * GCN-V / GCN-E output files (reference §1.8), as the original's `np.savez_compressed` writes them:
 * - `pred_confs/<ckpt>.npz`: `pred_confs` float32[N], `inst_num` (0-d int64) — GCN-V's confidences, also GCN-E's input;
 * - `pred_conns.npz`: `pred_conns` int64[n_sub, max_conn] (the chosen candidate of each subgraph, as an index into
 *   its candidate list), `inst_num`. The reference names the keys but not the array layout; this is ours.
 * @module
 */
import { LtcError } from "./errors.ts";
import { NpzFile, writeNpz } from "./npy.ts";
import { toNumbers } from "./ndarray.ts";

function instNumOf(npz: NpzFile): number | null {
  if (!npz.has("inst_num")) return null;
  const v = toNumbers(npz.get("inst_num"));
  if (v.length !== 1 || !Number.isInteger(v[0]) || v[0]! < 0) {
    throw new LtcError(`${npz.path}: 'inst_num' is not one non-negative integer`);
  }
  return v[0]!;
}

/** Write GCN-V's confidences like the original (`pred_confs`, `inst_num`). */
export function writePredConfs(path: string, confs: Float32Array): void {
  writeNpz(path, {
    pred_confs: { dtype: "f4", shape: [confs.length], data: confs },
    inst_num: { dtype: "i8", shape: [], data: BigInt64Array.of(BigInt(confs.length)) },
  });
}

/**
 * Read GCN-V's confidences (ours or the original's file). `n`, when given, must match; values must be finite.
 * Errors name the file.
 */
export function readPredConfs(path: string, options: { n?: number } = {}): Float32Array {
  const npz = new NpzFile(path);
  const arr = npz.get("pred_confs");
  if (arr.shape.length !== 1 || arr.dtype === "O") {
    throw new LtcError(`${path}: 'pred_confs' must be a 1-D numeric array, has shape (${arr.shape.join(", ")})`);
  }
  const confs = arr.data instanceof Float32Array ? arr.data : Float32Array.from(toNumbers(arr));
  const inst = instNumOf(npz);
  if (inst !== null && inst !== confs.length) {
    throw new LtcError(`${path}: holds ${confs.length} confidences but inst_num = ${inst}`);
  }
  if (options.n !== undefined && confs.length !== options.n) {
    throw new LtcError(`${path}: holds ${confs.length} confidences, but the features have ${options.n} rows`);
  }
  for (let i = 0; i < confs.length; i++) {
    if (!Number.isFinite(confs[i]!)) throw new LtcError(`${path}: confidence ${i} is ${confs[i]}`);
  }
  return confs;
}

/** Write GCN-E's connections (`pred_conns` n_sub × maxConn, `inst_num`). */
export function writePredConns(path: string, conns: Int32Array, options: { maxConn: number; instNum: number }): void {
  const { maxConn, instNum } = options;
  if (conns.length % maxConn !== 0) throw new Error(`writePredConns: ${conns.length} values for max_conn ${maxConn}`);
  writeNpz(path, {
    pred_conns: { dtype: "i8", shape: [conns.length / maxConn, maxConn], data: BigInt64Array.from(conns, BigInt) },
    inst_num: { dtype: "i8", shape: [], data: BigInt64Array.of(BigInt(instNum)) },
  });
}

/** Read GCN-E's connections written by {@linkcode writePredConns}. */
export function readPredConns(path: string): { conns: Int32Array; maxConn: number; instNum: number | null } {
  const npz = new NpzFile(path);
  const arr = npz.get("pred_conns");
  if (arr.dtype === "O" || arr.shape.length < 1 || arr.shape.length > 2) {
    throw new LtcError(`${path}: 'pred_conns' must be an integer array (n_sub, max_conn)`);
  }
  const v = toNumbers(arr);
  const conns = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isInteger(v[i]) || v[i]! < -1) throw new LtcError(`${path}: connection ${i} is ${v[i]}`);
    conns[i] = v[i]!;
  }
  return { conns, maxConn: arr.shape[1] ?? 1, instNum: instNumOf(npz) };
}
