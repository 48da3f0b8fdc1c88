/**
 * Per-row top-k selection shared by every kNN backend: a bounded min-heap per query row ordered by (similarity
 * descending, id ascending), so the kept set and the final row order are deterministic whatever order candidates
 * arrive in. Rows are finished into the faiss layout: neighbours by descending similarity, distance `1 − sim` in
 * float32, −1 / distance 1 padding where fewer than k candidates were offered.
 * @module
 */

/** Sentinel id of an empty heap slot: loses every tie against a real id. */
const EMPTY_ID = 0x7fffffff;

/** Ids below this pack with a float32's order key into one exactly representable float64 (32 + 21 bits). */
const PACK_IDS = 2 ** 21;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Sort one row (sims/ids at base..base+k) by (sim desc, id asc) in place by packing each pair into a float64 key
 * `(2³² − 1 − order(sim)) · 2²¹ + id`, where order() maps float32 bits to an unsigned integer that rises with the
 * value, and sorting the keys natively. Returns false (row untouched) when an id does not fit in 21 bits.
 */
function sortRowByKeys(hs: Float32Array, hi: Int32Array, base: number, k: number, keys: Float64Array): boolean {
  for (let t = 0; t < k; t++) {
    let id = hi[base + t]!;
    if (id === EMPTY_ID) id = 0; // empty slots hold −∞ and sort last whatever their id
    else if (id >= PACK_IDS) return false;
    f32[0] = hs[base + t]! === 0 ? 0 : hs[base + t]!; // −0 and +0 compare equal: one key
    const bits = u32[0]!;
    const ord = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    keys[t] = (0xffffffff - ord) * PACK_IDS + id;
  }
  keys.sort();
  for (let t = 0; t < k; t++) {
    const key = keys[t]!;
    const id = key % PACK_IDS;
    const ord = 0xffffffff - (key - id) / PACK_IDS;
    u32[0] = ord & 0x80000000 ? ord & 0x7fffffff : ~ord >>> 0;
    hs[base + t] = f32[0]!;
    hi[base + t] = f32[0] === -Infinity ? EMPTY_ID : id;
  }
  return true;
}

/**
 * The k best (similarity, id) pairs of each of `rows` query rows. Candidates are offered one by one or as a
 * contiguous block of similarities for consecutive ids; each row keeps a min-heap whose root is its worst kept pair.
 */
export class RowTopK {
  readonly rows: number;
  readonly k: number;
  /** heap similarities, rows × k */
  readonly sims: Float32Array;
  /** heap ids, rows × k */
  readonly ids: Int32Array;
  /** each row's heap root similarity (`sims[row · k]`), kept compact for {@linkcode threshold} */
  #roots: Float32Array;

  /** @param rows number of query rows; @param k neighbours kept per row */
  constructor(rows: number, k: number) {
    this.rows = rows;
    this.k = k;
    this.sims = new Float32Array(rows * k).fill(-Infinity);
    this.ids = new Int32Array(rows * k).fill(EMPTY_ID);
    this.#roots = new Float32Array(rows).fill(-Infinity);
  }

  /**
   * Current admission threshold of a row: its worst kept similarity (−∞ while not full). Read from a copy of the
   * heap roots, rows × 4 bytes: the IVF scan reads thousands of rows' thresholds per list product, and a heap root
   * is a cache miss in the rows × k buffers.
   */
  threshold(row: number): number {
    return this.#roots[row]!;
  }

  /** Offer one candidate to a row. */
  offer(row: number, sim: number, id: number): void {
    const base = row * this.k;
    const rs = this.sims[base]!;
    if (sim < rs || (sim === rs && id >= this.ids[base]!)) return;
    this.#replaceRoot(row, base, sim, id);
  }

  /**
   * Offer `len` candidates with similarities `sims[off..off+len)` and ids `idBase..idBase+len)` to a row. Ids rise
   * along the block, so a candidate equal to the root similarity never wins (the root has the smaller id or is
   * empty-with-−∞).
   */
  offerBlock(row: number, sims: Float32Array, off: number, len: number, idBase: number): void {
    const base = row * this.k;
    const hs = this.sims;
    let thr = hs[base]!;
    for (let t = 0; t < len; t++) {
      const s = sims[off + t]!;
      if (s < thr) continue;
      const id = idBase + t;
      if (s === thr && id >= this.ids[base]!) continue;
      this.#replaceRoot(row, base, s, id);
      thr = hs[base]!;
    }
  }

  /**
   * Offer `len` candidates with similarities `sims[off..off+len)` and ids `ids[idOff..idOff+len)` (any order) to a
   * row: the threshold test runs inline, so the common rejected candidate costs one comparison.
   */
  offerGathered(
    row: number,
    sims: Float32Array,
    at: { off: number; len: number; ids: Int32Array; idOff: number },
  ): void {
    const { off, len, ids, idOff } = at;
    const base = row * this.k;
    const hs = this.sims, hi = this.ids;
    let thr = hs[base]!;
    for (let t = 0; t < len; t++) {
      const s = sims[off + t]!;
      if (s < thr) continue;
      const id = ids[idOff + t]!;
      if (s === thr && id >= hi[base]!) continue;
      this.#replaceRoot(row, base, s, id);
      thr = hs[base]!;
    }
  }

  /** Merge candidate lists (k per row, −1 ids skipped) given as parallel arrays starting at row `row0`. */
  offerRows(row0: number, count: number, width: number, sims: Float32Array, ids: Int32Array | BigInt64Array): void {
    const big = ids instanceof BigInt64Array;
    for (let r = 0; r < count; r++) {
      const row = row0 + r;
      const base = row * this.k;
      for (let t = 0; t < width; t++) {
        const o = r * width + t;
        const id = big ? Number((ids as BigInt64Array)[o]!) : (ids as Int32Array)[o]!;
        if (id < 0) continue;
        const s = sims[o]!;
        const rs = this.sims[base]!;
        if (s < rs || (s === rs && id >= this.ids[base]!)) continue;
        this.#replaceRoot(row, base, s, id);
      }
    }
  }

  #replaceRoot(row: number, base: number, sim: number, id: number): void {
    const hs = this.sims;
    const hi = this.ids;
    const k = this.k;
    let pos = 0;
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= k) break;
      let c = l;
      const r = l + 1;
      if (r < k) {
        // pick the worse child: lower sim, or equal sim and higher id
        const ls = hs[base + l]!, rs = hs[base + r]!;
        if (rs < ls || (rs === ls && hi[base + r]! > hi[base + l]!)) c = r;
      }
      const cs = hs[base + c]!;
      if (cs < sim || (cs === sim && hi[base + c]! > id)) {
        hs[base + pos] = cs;
        hi[base + pos] = hi[base + c]!;
        pos = c;
      } else break;
    }
    hs[base + pos] = sim;
    hi[base + pos] = id;
    this.#roots[row] = hs[base]!;
  }

  /**
   * Finish every row in place (this object's buffers become the result; it must not be used afterwards): rows best
   * first, ids −1 / distance 1 for empty slots, distance `1 − sim` in float32. Saves a second N × k copy.
   */
  finishInPlace(): { nbrs: Int32Array; dists: Float32Array } {
    const k = this.k;
    const hs = this.sims, hi = this.ids;
    const keys = new Float64Array(k);
    const order = new Int32Array(k);
    const tmpS = new Float32Array(k), tmpI = new Int32Array(k);
    for (let row = 0; row < this.rows; row++) {
      const base = row * k;
      if (!sortRowByKeys(hs, hi, base, k, keys)) {
        // ids too large to pack: sort with a comparator
        for (let t = 0; t < k; t++) order[t] = t;
        order.sort((a, b) => {
          const sa = hs[base + a]!, sb = hs[base + b]!;
          if (sa !== sb) return sa > sb ? -1 : 1;
          return hi[base + a]! - hi[base + b]!;
        });
        for (let t = 0; t < k; t++) {
          tmpS[t] = hs[base + order[t]!]!;
          tmpI[t] = hi[base + order[t]!]!;
        }
        hs.set(tmpS, base);
        hi.set(tmpI, base);
      }
      for (let t = 0; t < k; t++) {
        if (hi[base + t] === EMPTY_ID) {
          hi[base + t] = -1;
          hs[base + t] = 1;
        } else hs[base + t] = Math.fround(1 - hs[base + t]!);
      }
    }
    return { nbrs: hi, dists: hs };
  }

  /**
   * Write the rows, best first, into `nbrs`/`dists` (row-major, `k` per row) starting at output row `outRow0`.
   * Distance is `1 − sim` rounded to float32, as faiss users compute it from IndexFlatIP similarities.
   */
  finishInto(nbrs: Int32Array, dists: Float32Array, outRow0 = 0): void {
    const k = this.k;
    const order = new Int32Array(k);
    for (let row = 0; row < this.rows; row++) {
      const base = row * k;
      for (let t = 0; t < k; t++) order[t] = t;
      const hs = this.sims, hi = this.ids;
      order.sort((a, b) => {
        const sa = hs[base + a]!, sb = hs[base + b]!;
        if (sa !== sb) return sa > sb ? -1 : 1;
        return hi[base + a]! - hi[base + b]!;
      });
      const out = (outRow0 + row) * k;
      for (let t = 0; t < k; t++) {
        const src = base + order[t]!;
        const id = hi[src]!;
        if (id === EMPTY_ID) {
          nbrs[out + t] = -1;
          dists[out + t] = 1;
        } else {
          nbrs[out + t] = id;
          dists[out + t] = Math.fround(1 - hs[src]!);
        }
      }
    }
  }
}
