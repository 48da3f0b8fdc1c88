/**
 * Feature files `.bin`: headerless little-endian float32, row-major N × dim, exactly as the original's
 * `read_probs` / `write_feat`. Loading L2-normalises each row (as the original does unless `--no_normalize`), and can
 * first subtract the dataset mean (`center`), which face-api style embeddings need.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { isFile, readSidecar, writeFileAtomic } from "./artifact.ts";
import { check, LtcError } from "./errors.ts";

/** N × dim float32 features, row-major. */
export interface Features {
  data: Float32Array;
  n: number;
  dim: number;
}

/** Options for {@linkcode readFeatures}. */
export interface ReadFeaturesOptions {
  /** feature dimension (default 256, the original's) */
  dim?: number;
  /** L2-normalise rows (default true) */
  normalize?: boolean;
  /** subtract the dataset mean before normalising (default false) */
  center?: boolean;
  /** expected number of rows (e.g. from the labels); checked when given */
  count?: number;
}

/** Read a `.bin` feature file, validating size and values; errors name the file and row. */
export function readFeatures(path: string, options: ReadFeaturesOptions = {}): Features {
  const dim = options.dim ?? 256;
  check(Number.isInteger(dim) && dim > 0, path, `feature dim must be a positive integer, got ${dim}`);
  let size: number;
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) throw new LtcError(`${path}: not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof LtcError) throw err;
    throw new LtcError(`${path}: no such file`);
  }
  check(size > 0, path, "feature file is empty");
  check(
    size % (4 * dim) === 0,
    path,
    `size ${size} bytes is not a multiple of 4·dim = ${4 * dim} (wrong --dim, or a truncated file?)`,
  );
  const n = size / (4 * dim);
  checkDatasetShape(path, n, dim);
  if (options.count !== undefined) {
    check(n === options.count, path, `has ${n} rows of dim ${dim}, but the labels have ${options.count}`);
  }
  const data = new Float32Array(n * dim);
  const f = Deno.openSync(path, { read: true });
  try {
    const bytes = new Uint8Array(data.buffer);
    let off = 0;
    while (off < bytes.length) {
      const got = f.readSync(bytes.subarray(off, Math.min(bytes.length, off + (1 << 26))));
      if (got === null || got === 0) throw new LtcError(`${path}: file ended early at byte ${off}`);
      off += got;
    }
  } finally {
    f.close();
  }
  for (let i = 0; i < n; i++) {
    const row = data.subarray(i * dim, (i + 1) * dim);
    for (let j = 0; j < dim; j++) {
      if (!Number.isFinite(row[j]!)) throw new LtcError(`${path}: row ${i} holds NaN or Inf (column ${j})`);
    }
  }
  if (options.center) centerRows(data, n, dim);
  if (options.normalize ?? true) l2NormalizeRows(data, n, dim, path);
  return { data, n, dim };
}

/**
 * Catch a wrong `--dim` before any work: a feature file's own sidecar (written by `synth` and `split`) records its
 * dim, and the original layout keeps the labels beside it (`<prefix>/labels/<name>.meta`, one line per row), so a
 * dim that contradicts either is refused naming both files.
 */
function checkDatasetShape(path: string, n: number, dim: number): void {
  const side = readSidecar(path);
  if (side && typeof side.dim === "number" && side.dim !== dim) {
    throw new LtcError(`${path}: its sidecar records dim ${side.dim}, but it is read with dim ${dim} (wrong --dim?)`);
  }
  const labels = join(dirname(dirname(path)), "labels", basename(path).replace(/\.bin$/, ".meta"));
  if (labels === path || !isFile(labels)) return;
  const bytes = Deno.readFileSync(labels);
  let rows = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) rows++;
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 10) rows++;
  if (rows !== n) {
    throw new LtcError(`${path}: read with dim ${dim} it has ${n} rows, but ${labels} has ${rows} (wrong --dim?)`);
  }
}

/** Subtract the column mean (computed in float64) from every row, in place. */
export function centerRows(data: Float32Array, n: number, dim: number): void {
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += data[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) data[i * dim + j] = data[i * dim + j]! - mean[j]!;
}

/** L2-normalise every row in place (float32 result, like the original's `vec /= norm`); zero rows are an error. */
export function l2NormalizeRows(data: Float32Array, n: number, dim: number, path = "<features>"): void {
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += data[o + j]! * data[o + j]!;
    const norm = Math.fround(Math.sqrt(ss));
    if (!(norm > 0)) throw new LtcError(`${path}: row ${i} has zero norm and cannot be normalised`);
    for (let j = 0; j < dim; j++) data[o + j] = data[o + j]! / norm;
  }
}

/** Write features as a `.bin` file atomically. */
export function writeFeatures(path: string, data: Float32Array): void {
  writeFileAtomic(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
