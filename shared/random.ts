/**
 * The tool's one seeded PRNG: xoshiro128** seeded through splitmix32 from any list of integers, so every random
 * choice — synthetic data, shuffles, dropout masks, initialisation — is reproducible from `--seed` on any machine,
 * and independent uses draw from independent streams (`new Rng(seed, stream, epoch)`). Not cryptographic.
 * (The baselines that reproduce numpy's and Python's own streams use their Mersenne Twister instead.)
 * @module
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A xoshiro128** generator seeded from a list of 32-bit integers. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare: number | null = null;

  /** Seed from any list of 32-bit integers (e.g. `[seed, purpose, epoch]`). */
  constructor(...seeds: number[]) {
    const st = { s: 0x6a09e667 };
    for (const v of seeds) {
      st.s = (st.s ^ Math.imul((v | 0) + 0x7f4a7c15, 0x2545f491)) | 0;
      splitmix32(st);
    }
    this.#a = splitmix32(st);
    this.#b = splitmix32(st);
    this.#c = splitmix32(st);
    this.#d = splitmix32(st);
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n) without modulo bias (rejection sampling on 32-bit draws). */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000)) throw new RangeError(`Rng.int: bad range ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }

  /** Same as {@linkcode Rng.next}. */
  random(): number {
    return this.next();
  }

  /** Standard normal variate (Box–Muller, both halves used). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(arr: T[] | Int32Array | Uint32Array): void {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
  }

  /** A uniformly random permutation of 0..n−1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * MT19937, seeded either like CPython's `random.seed(int)` (`init_by_array`) or like numpy's legacy
 * `RandomState(int)` (`init_genrand`), with the draws both libraries build on.
 */
export class Mt19937 {
  readonly #mt = new Uint32Array(624);
  #idx = 625;

  private constructor() {}

  /** Seeded as numpy's `RandomState(seed)` (0 ≤ seed < 2³²). */
  static numpy(seed: number): Mt19937 {
    const r = new Mt19937();
    r.#initGenrand(seed >>> 0);
    return r;
  }

  /** Seeded as CPython's `random.seed(seed)` for a non-negative integer below 2⁵³. */
  static python(seed: number): Mt19937 {
    const r = new Mt19937();
    let a = Math.abs(Math.trunc(seed));
    const key: number[] = [];
    do {
      key.push(a % 0x100000000);
      a = Math.floor(a / 0x100000000);
    } while (a > 0);
    r.#initByArray(key);
    return r;
  }

  #initGenrand(s: number): void {
    const mt = this.#mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.#idx = 624;
  }

  #initByArray(key: number[]): void {
    const mt = this.#mt;
    this.#initGenrand(19650218);
    let i = 1, j = 0;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++, j++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /** Next 32-bit output. */
  nextU32(): number {
    const mt = this.#mt;
    if (this.#idx >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#idx = 0;
    }
    let y = mt[this.#idx++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Python's `getrandbits(k)` for 1 ≤ k ≤ 32. */
  getrandbits(k: number): number {
    return this.nextU32() >>> (32 - k);
  }

  /** Python's `random.shuffle(x)` (in place). */
  pyShuffle(x: Int32Array): void {
    for (let i = x.length - 1; i >= 1; i--) {
      const n = i + 1;
      const k = 32 - Math.clz32(n);
      let r = this.getrandbits(k);
      while (r >= n) r = this.getrandbits(k);
      const t = x[i]!;
      x[i] = x[r]!;
      x[r] = t;
    }
  }

  /** numpy's legacy bounded draw in [0, max] by masked rejection (`randint`, `shuffle`). */
  #masked(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    while ((v = (this.nextU32() & mask) >>> 0) > max);
    return v;
  }

  /** numpy `RandomState.randint(low, high)`: one integer in [low, high). */
  randint(low: number, high: number): number {
    return low + this.#masked(high - low - 1);
  }

  /** numpy `RandomState.random_sample()`: a 53-bit double in [0, 1). */
  randomSample(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** numpy legacy `RandomState.choice(n, size, replace=False)` = `permutation(n)[:size]`. */
  choiceNoReplace(n: number, size: number): Int32Array {
    const arr = new Int32Array(n);
    for (let i = 0; i < n; i++) arr[i] = i;
    for (let i = n - 1; i >= 1; i--) {
      const j = this.#masked(i);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
    return arr.slice(0, size);
  }
}
