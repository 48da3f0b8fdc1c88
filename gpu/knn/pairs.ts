/**
 * Growable (i, j, sim) pair lists for {@linkcode similarityPairs}-style outputs.
 * @module
 */

/** Pairs i < j with their float32 inner products, parallel arrays. */
export interface PairList {
  i: Int32Array;
  j: Int32Array;
  sim: Float32Array;
}

/** Appends pairs into doubling typed arrays. */
export class PairBuilder {
  #i = new Int32Array(1024);
  #j = new Int32Array(1024);
  #s = new Float32Array(1024);
  #n = 0;

  /** Number of pairs so far. */
  get length(): number {
    return this.#n;
  }

  /** Append every pair of a list. */
  pushAll(p: PairList): void {
    const m = p.i.length;
    if (this.#n + m > this.#i.length) this.#grow(this.#n + m);
    this.#i.set(p.i, this.#n);
    this.#j.set(p.j, this.#n);
    this.#s.set(p.sim, this.#n);
    this.#n += m;
  }

  /** Append one pair. */
  push(i: number, j: number, sim: number): void {
    if (this.#n === this.#i.length) this.#grow(this.#n + 1);
    this.#i[this.#n] = i;
    this.#j[this.#n] = j;
    this.#s[this.#n] = sim;
    this.#n++;
  }

  #grow(need: number): void {
    let cap = this.#i.length;
    while (cap < need) cap *= 2;
    const i = new Int32Array(cap), j = new Int32Array(cap), s = new Float32Array(cap);
    i.set(this.#i.subarray(0, this.#n));
    j.set(this.#j.subarray(0, this.#n));
    s.set(this.#s.subarray(0, this.#n));
    this.#i = i;
    this.#j = j;
    this.#s = s;
  }

  /** The pairs, trimmed to length. */
  finish(): PairList {
    return {
      i: this.#i.slice(0, this.#n),
      j: this.#j.slice(0, this.#n),
      sim: this.#s.slice(0, this.#n),
    };
  }
}

/**
 * Sort pairs by ascending i, then j (the order every backend returns): a counting sort on i (ids in
 * [row0, row0 + rows)), then each row's few entries by j.
 */
export function sortPairs(p: PairList, rows: number, row0 = 0): PairList {
  const m = p.i.length;
  const start = new Int32Array(rows + 1);
  for (let t = 0; t < m; t++) start[p.i[t]! - row0 + 1]!++;
  for (let r = 0; r < rows; r++) start[r + 1]! += start[r]!;
  const fill = start.slice(0, rows);
  const order = new Int32Array(m);
  for (let t = 0; t < m; t++) order[fill[p.i[t]! - row0]!++] = t;
  const out: PairList = { i: new Int32Array(m), j: new Int32Array(m), sim: new Float32Array(m) };
  for (let r = 0; r < rows; r++) {
    const a = start[r]!, b = start[r + 1]!;
    if (b - a > 1) order.subarray(a, b).sort((x, y) => p.j[x]! - p.j[y]!);
  }
  for (let t = 0; t < m; t++) {
    const o = order[t]!;
    out.i[t] = p.i[o]!;
    out.j[t] = p.j[o]!;
    out.sim[t] = p.sim[o]!;
  }
  return out;
}
