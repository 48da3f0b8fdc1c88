/**
 * The dense and aggregation products GCN-V/E need, behind one small interface so that a faster backend (an
 * onnxruntime Gemm, WGSL) can replace the plain TypeScript one without touching the network code in
 * {@linkcode ./cpu.ts}. Everything here stores float32 and accumulates in float64, so results sit within a few float32
 * ulps of PyTorch's.
 * @module
 */

import type { VeGcnWeights } from "./model.ts";

/** Shape of a product `op(a)·op(b)`: op(a) is m × k, op(b) is k × n. */
export interface MatmulShape {
  m: number;
  k: number;
  n: number;
  /** a is stored k × m and used transposed */
  transA?: boolean;
  /** b is stored n × k and used transposed */
  transB?: boolean;
}

/** Dense matrix products. */
export interface DenseKernels {
  /** e.g. `cpu (typescript)` */
  readonly name: string;
  /** out[m × n] = op(a) · op(b), row-major float32. */
  matmul(a: Float32Array, b: Float32Array, shape: MatmulShape): Promise<Float32Array>;
  /**
   * Optional, inference only: the last GraphConv layer and the classifier in one call, from that layer's input `x`
   * and its aggregation `ax`. A backend whose outputs are costly to hand back (onnxruntime) implements it so that
   * the activations in between never leave it; {@linkcode ./cpu.ts} `forward` uses it when present.
   */
  lastLayers?(
    weights: VeGcnWeights,
    input: LastLayersInput,
    options: { keepFeatures: boolean },
  ): Promise<LastLayersResult>;
  /**
   * Optional, GCN-V training: the MSE loss of the whole network on all rows of `agg` against `target` and the
   * gradients (state-dict order, as a weights object), for a backend that keeps the graph's data on its device
   * between iterations; null where it does not apply (the caller then runs forward, loss and backward itself).
   */
  mseGradients?(
    weights: VeGcnWeights,
    input: { x: Float32Array; agg: Aggregator; target: Float32Array },
  ): Promise<{ loss: number; grads: VeGcnWeights } | null>;
}

/**
 * Input of {@linkcode DenseKernels.lastLayers}: the last GraphConv's input (rows × in) and its aggregation, handed
 * over by row ranges (`ax(from, to)`: rows from..to of A·x) so that a backend may compute one range's products while
 * the next range is being aggregated.
 */
export interface LastLayersInput {
  x: Float32Array;
  ax: (from: number, to: number) => Promise<Float32Array>;
  rows: number;
  /** the aggregation itself: a backend whose device holds its matrix applies it there instead of calling `ax` */
  agg?: Aggregator;
}

/** What {@linkcode DenseKernels.lastLayers} returns. */
export interface LastLayersResult {
  /** network output, rows × classes */
  out: Float32Array;
  /** the last GraphConv's ReLU output (rows × out) when `keepFeatures`, else null */
  features: Float32Array | null;
}

/** A graph's mean aggregation A (rows × rows) applied to row-major node features. */
export interface Aggregator {
  /** number of nodes (rows of A) */
  readonly rows: number;
  /** A·x, x being rows × width */
  apply(x: Float32Array, width: number): Promise<Float32Array>;
  /** Aᵀ·y, y being rows × width (backward through the aggregation) */
  applyTransposed(y: Float32Array, width: number): Promise<Float32Array>;
  /** Optional: rows from..to of A·x only (x being rows × width, all of it) */
  applyRows?(x: Float32Array, width: number, range: { from: number; to: number }): Promise<Float32Array>;
}

/**
 * out = a·b with a m×k, b k×n. Each row of a is first compacted to its non-zero entries (ReLU outputs are about half
 * zeros), then four rows of b are added per pass to keep the float64 accumulator traffic down.
 */
function matmulNN(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const out = new Float32Array(m * n);
  const acc = new Float64Array(n);
  const offset = new Int32Array(k), value = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    const ai = i * k;
    let nz = 0;
    for (let t = 0; t < k; t++) {
      const x = a[ai + t]!;
      if (x !== 0) offset[nz] = t * n, value[nz++] = x;
    }
    let q = 0;
    for (; q + 4 <= nz; q += 4) {
      const x0 = value[q]!, x1 = value[q + 1]!, x2 = value[q + 2]!, x3 = value[q + 3]!;
      const o0 = offset[q]!, o1 = offset[q + 1]!, o2 = offset[q + 2]!, o3 = offset[q + 3]!;
      for (let j = 0; j < n; j++) {
        acc[j] = acc[j]! + x0 * b[o0 + j]! + x1 * b[o1 + j]! + x2 * b[o2 + j]! + x3 * b[o3 + j]!;
      }
    }
    for (; q < nz; q++) {
      const x = value[q]!, o = offset[q]!;
      for (let j = 0; j < n; j++) acc[j] = acc[j]! + x * b[o + j]!;
    }
    out.set(acc, i * n);
  }
  return out;
}

/** out = aᵀ·b with a stored r×m, b r×n (a sum over the r rows, as weight gradients are). */
function matmulTN(a: Float32Array, b: Float32Array, m: number, r: number, n: number): Float32Array {
  const acc = new Float64Array(m * n);
  let i = 0;
  for (; i + 2 <= r; i += 2) {
    const a0 = i * m, a1 = a0 + m, b0 = i * n, b1 = b0 + n;
    for (let t = 0; t < m; t++) {
      const x0 = a[a0 + t]!, x1 = a[a1 + t]!;
      if (x0 === 0 && x1 === 0) continue;
      const o = t * n;
      for (let j = 0; j < n; j++) acc[o + j] = acc[o + j]! + x0 * b[b0 + j]! + x1 * b[b1 + j]!;
    }
  }
  for (; i < r; i++) {
    const a0 = i * m, b0 = i * n;
    for (let t = 0; t < m; t++) {
      const x = a[a0 + t]!;
      if (x === 0) continue;
      const o = t * n;
      for (let j = 0; j < n; j++) acc[o + j] = acc[o + j]! + x * b[b0 + j]!;
    }
  }
  return Float32Array.from(acc);
}

/** Transpose a rows × cols matrix. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

/** Plain TypeScript products (float64 accumulation). */
export const tsKernels: DenseKernels = {
  name: "cpu (typescript)",
  matmul(a, b, s) {
    const { m, k, n } = s;
    if (a.length !== m * k || b.length !== k * n) {
      throw new Error(`matmul: operands of ${a.length} and ${b.length} values do not fit ${m}×${k}·${k}×${n}`);
    }
    // op(b) = bᵀ: transposing b (a weight, small next to the product) lets the row-compacting kernel skip a's zeros
    const right = s.transB ? transpose(b, n, k) : b;
    if (s.transA) return Promise.resolve(matmulTN(a, right, m, k, n));
    return Promise.resolve(matmulNN(a, right, m, k, n));
  },
};

/** A sparse rows × cols matrix in CSR form, float32 values. */
export interface CsrMatrix {
  rows: number;
  cols: number;
  /** rows + 1 offsets into `colIdx` / `vals` */
  rowPtr: Int32Array;
  colIdx: Int32Array;
  vals: Float32Array;
}

/** The transpose of a CSR matrix (columns become rows; entries of a row stay in ascending column order). */
export function transposeCsr(a: CsrMatrix): CsrMatrix {
  const count = new Int32Array(a.cols + 1);
  for (let e = 0; e < a.rowPtr[a.rows]!; e++) count[a.colIdx[e]! + 1]!++;
  for (let c = 0; c < a.cols; c++) count[c + 1]! += count[c]!;
  const rowPtr = count.slice();
  const colIdx = new Int32Array(a.colIdx.length), vals = new Float32Array(a.vals.length);
  const next = count.subarray(0, a.cols).slice();
  for (let r = 0; r < a.rows; r++) {
    for (let e = a.rowPtr[r]!; e < a.rowPtr[r + 1]!; e++) {
      const p = next[a.colIdx[e]!]!++;
      colIdx[p] = r;
      vals[p] = a.vals[e]!;
    }
  }
  return { rows: a.cols, cols: a.rows, rowPtr, colIdx, vals };
}

/**
 * out = a·x for CSR a (rows × cols) and dense x (cols × width), float64 accumulation per row. Eight entries of a row
 * are added per pass over the accumulator (a quarter of the accumulator traffic of one at a time: about 2.7× faster
 * at GCN-V's 256 columns); float64 sums of float32 products round the same either way to float32.
 */
export function csrMatmul(a: CsrMatrix, x: Float32Array, width: number): Float32Array {
  const out = new Float32Array(a.rows * width);
  const acc = new Float64Array(width);
  const { rowPtr, colIdx, vals } = a;
  for (let r = 0; r < a.rows; r++) {
    acc.fill(0);
    let e = rowPtr[r]!;
    const end = rowPtr[r + 1]!;
    for (; e + 8 <= end; e += 8) {
      const v0 = vals[e]!, v1 = vals[e + 1]!, v2 = vals[e + 2]!, v3 = vals[e + 3]!;
      const v4 = vals[e + 4]!, v5 = vals[e + 5]!, v6 = vals[e + 6]!, v7 = vals[e + 7]!;
      const o0 = colIdx[e]! * width, o1 = colIdx[e + 1]! * width, o2 = colIdx[e + 2]! * width;
      const o3 = colIdx[e + 3]! * width, o4 = colIdx[e + 4]! * width, o5 = colIdx[e + 5]! * width;
      const o6 = colIdx[e + 6]! * width, o7 = colIdx[e + 7]! * width;
      for (let j = 0; j < width; j++) {
        acc[j] = acc[j]! + (v0 * x[o0 + j]! + v1 * x[o1 + j]! + v2 * x[o2 + j]! + v3 * x[o3 + j]!) +
          (v4 * x[o4 + j]! + v5 * x[o5 + j]! + v6 * x[o6 + j]! + v7 * x[o7 + j]!);
      }
    }
    for (; e < end; e++) {
      const v = vals[e]!, o = colIdx[e]! * width;
      for (let j = 0; j < width; j++) acc[j] = acc[j]! + v * x[o + j]!;
    }
    out.set(acc, r * width);
  }
  return out;
}

/** The whole-graph aggregation of GCN-V: a sparse square A in CSR form (A·X as `torch.spmm`). */
export class CsrAggregator implements Aggregator {
  #transposed: CsrMatrix | null = null;
  /** @param a square CSR matrix (typically row-normalised, self loops included) */
  constructor(readonly a: CsrMatrix) {
    if (a.rows !== a.cols) throw new Error(`CsrAggregator: matrix is ${a.rows} × ${a.cols}, not square`);
  }
  get rows(): number {
    return this.a.rows;
  }
  apply(x: Float32Array, width: number): Promise<Float32Array> {
    return Promise.resolve(csrMatmul(this.a, x, width));
  }
  applyRows(x: Float32Array, width: number, range: { from: number; to: number }): Promise<Float32Array> {
    const { rowPtr, colIdx, vals, cols } = this.a;
    const rows = range.to - range.from;
    // a view of the row range: its row pointers still index the whole matrix's columns and values
    const part = { rows, cols, rowPtr: rowPtr.subarray(range.from, range.to + 1), colIdx, vals };
    return Promise.resolve(csrMatmul(part, x, width));
  }
  applyTransposed(y: Float32Array, width: number): Promise<Float32Array> {
    this.#transposed ??= transposeCsr(this.a);
    return Promise.resolve(csrMatmul(this.#transposed, y, width));
  }
}

/** One dense square block of a block-diagonal adjacency: rows `offset .. offset+size`. */
export interface DenseBlock {
  offset: number;
  size: number;
  /** size × size, row-major */
  adj: Float32Array;
}

/**
 * Several small graphs stacked as one block-diagonal adjacency (GCN-E's candidate subgraphs): each block is
 * multiplied densely, exactly as the original's `bmm` on one subgraph at a time.
 */
export class BlockAggregator implements Aggregator {
  readonly rows: number;
  /** @param blocks consecutive blocks covering rows 0..Σ size */
  constructor(readonly blocks: DenseBlock[]) {
    let rows = 0;
    for (const b of blocks) {
      if (b.offset !== rows) throw new Error(`BlockAggregator: block at row ${b.offset}, expected ${rows}`);
      if (b.adj.length !== b.size * b.size) throw new Error(`BlockAggregator: block of ${b.size} rows is not square`);
      rows += b.size;
    }
    this.rows = rows;
  }
  #csr: CsrMatrix | null = null;
  #csrT: CsrMatrix | null = null;
  apply(x: Float32Array, width: number): Promise<Float32Array> {
    this.#csr ??= this.#sparse(false);
    return Promise.resolve(csrMatmul(this.#csr, x, width));
  }
  applyTransposed(y: Float32Array, width: number): Promise<Float32Array> {
    this.#csrT ??= this.#sparse(true);
    return Promise.resolve(csrMatmul(this.#csrT, y, width));
  }
  /**
   * The block-diagonal matrix (or its transpose) in CSR form, built once and used by every layer: the products then
   * run on {@linkcode csrMatmul}'s unrolled rows and skip the blocks' zeros.
   */
  #sparse(transposed: boolean): CsrMatrix {
    let nnz = 0;
    for (const b of this.blocks) for (let t = 0; t < b.adj.length; t++) if (b.adj[t] !== 0) nnz++;
    const rowPtr = new Int32Array(this.rows + 1), colIdx = new Int32Array(nnz), vals = new Float32Array(nnz);
    let e = 0;
    for (const { offset, size, adj } of this.blocks) {
      for (let i = 0; i < size; i++) {
        for (let j = 0; j < size; j++) {
          const v = transposed ? adj[j * size + i]! : adj[i * size + j]!;
          if (v === 0) continue;
          colIdx[e] = offset + j;
          vals[e++] = v;
        }
        rowPtr[offset + i + 1] = e;
      }
    }
    return { rows: this.rows, cols: this.rows, rowPtr, colIdx, vals };
  }
}
