/**
 * MiniBatchKMeans baseline: sklearn 0.22 `MiniBatchKMeans(n_clusters, batch_size, random_state=0)` (k-means++ with
 * 2 + ln k local trials, n_init 3 on a 3·batch validation sample, per-centre count-weighted updates, low-count
 * reassignment, EWA-inertia early stop after 10 batches without improvement, max_iter 100), drawing from numpy's
 * legacy MT19937 stream. Distances are computed in float64 rather than by float32 BLAS, so near-ties can go the
 * other way and the result is not bit-identical to sklearn's. At scale an onnxruntime float32 SGEMM screens the
 * row–centre pairs and only the pairs its error bound leaves open are computed in float64, which gives exactly
 * the scalar loops' labels (part1 scale, k = 8573: ≈ 4.5 min on 2 shared cores; scalar loops alone ≈ 2 h).
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { relabelDense } from "../../shared/meta.ts";
import { log, Progress } from "../../shared/progress.ts";
import { Mt19937 } from "../../shared/random.ts";
import type { Baseline } from "./baseline.ts";
import { dotAt, gemmErrorBound, RowMinCandidatesOrt, ScaledGemmOrt } from "../../gpu/knn/mod.ts";

/**
 * Where MiniBatchKMeans computes its distances. `js`: scalar float64 loops. `ort`: an onnxruntime float32 SGEMM
 * screens every row–centre pair, and the pairs its error bound ({@linkcode gemmErrorBound}) cannot decide are
 * recomputed by the scalar formula, so the labels, distances and random draws equal the scalar path's. `auto`
 * (default): `ort` for the calls large enough to pay for an onnxruntime run, `js` when onnxruntime cannot load.
 */
export type KmeansEngine = "auto" | "js" | "ort";

/** Multiply-adds below which `auto` keeps a distance call on the scalar loops (an onnxruntime run costs ~0.1 ms). */
const ORT_MIN_WORK = 1 << 21;
/** Product entries of one onnxruntime run (16 MiB of float32 held inside onnxruntime). */
const ORT_BLOCK_ENTRIES = 1 << 22;
/** Query rows of one nearest-centre run: the SGEMM's best M on this 2-core machine (≈ 110 GFLOP/s at k = 8573). */
const ORT_MAX_BLOCK_ROWS = 256;

/** The distance engine of one MiniBatchKMeans call: the onnxruntime sessions (null: scalar only), their threshold. */
interface KmeansDistances {
  ort: { gemm: ScaledGemmOrt; near: RowMinCandidatesOrt } | null;
  minWork: number;
}

async function kmeansDistances(
  engine: KmeansEngine,
  options: { x: Float32Array; dim: number; work: number },
): Promise<KmeansDistances> {
  const scalar = { ort: null, minWork: Infinity };
  if (engine === "js" || (engine === "auto" && options.work < ORT_MIN_WORK)) return scalar;
  // the float32 products must not overflow for the error bounds to hold (features are finite, centres are means
  // or copies of rows)
  let maxAbs = 0;
  for (const v of options.x) maxAbs = Math.max(maxAbs, Math.abs(v));
  if (maxAbs > 1e15) {
    if (engine === "ort") throw new LtcError(`mini_batch_kmeans: feature values up to ${maxAbs} overflow float32`);
    return scalar;
  }
  try {
    const gemm = await ScaledGemmOrt.create(options.dim, { alpha: -2 });
    const near = await RowMinCandidatesOrt.create(options.dim, { alpha: -2 });
    return { ort: { gemm, near }, minWork: engine === "ort" ? 0 : ORT_MIN_WORK };
  } catch (err) {
    if (engine === "ort") throw err;
    log(`mini_batch_kmeans: ${(err as Error).message}; computing distances on the scalar path (slow at scale)`);
    return scalar;
  }
}

/** The onnxruntime sessions to use for a call of `work` multiply-adds, or null for the scalar loops. */
function ortFor(engine: KmeansDistances, work: number): { gemm: ScaledGemmOrt; near: RowMinCandidatesOrt } | null {
  return work >= engine.minWork ? engine.ort : null;
}

/**
 * The scalar path's squared distances between feature rows and k centres: float64 sums of the float32 products
 * (four interleaved partial sums), `‖x‖² − 2x·c + ‖c‖²` clamped at 0. Both engines decide with these values.
 */
class CentreDistances {
  readonly cnorm: Float64Array;
  readonly #x: Float32Array;
  readonly #centers: Float32Array;
  readonly #dim: number;

  constructor(x: Float32Array, centers: Float32Array, options: { dim: number; k: number }) {
    const { dim, k } = options;
    this.#x = x;
    this.#centers = centers;
    this.#dim = dim;
    this.cnorm = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += centers[c * dim + t]! * centers[c * dim + t]!;
      this.cnorm[c] = s;
    }
  }

  /** ‖x‖² of the row starting at offset `o`. */
  rowNorm(o: number): number {
    const x = this.#x, dim = this.#dim;
    let xn = 0;
    for (let t = 0; t < dim; t++) xn += x[o + t]! * x[o + t]!;
    return xn;
  }

  /** Squared distance of the row at offset `o` (with ‖x‖² = `xn`) to centre `c`. */
  dist(o: number, xn: number, c: number): number {
    const dim = this.#dim;
    return Math.max(0, xn - 2 * dotAt(this.#x, o, this.#centers, c * dim, dim) + this.cnorm[c]!);
  }
}

/** Squared Euclidean distances in float64 and the nearest centre of each row (first on ties). */
async function nearest(
  x: Float32Array,
  rows: ArrayLike<number>,
  centers: Float32Array,
  options: { dim: number; k: number; engine: KmeansDistances; progress?: Progress },
): Promise<{ label: Int32Array; dist: Float64Array }> {
  const { dim, k } = options;
  const out = new NearestCentres(x, rows, { centers, dim, k });
  const ort = ortFor(options.engine, rows.length * k * dim);
  if (ort === null) {
    for (let r0 = 0; r0 < rows.length; r0 += 1024) {
      const r1 = Math.min(rows.length, r0 + 1024);
      for (let r = r0; r < r1; r++) out.scan(r);
      options.progress?.tick(r1 - r0);
    }
    return out;
  }
  const bias = Float32Array.from(out.geo.cnorm);
  const blockRows = Math.max(1, Math.min(ORT_MAX_BLOCK_ROWS, Math.floor(ORT_BLOCK_ENTRIES / k)));
  const block = new Float32Array(blockRows * dim), margin = new Float32Array(blockRows);
  for (let r0 = 0; r0 < rows.length; r0 += blockRows) {
    const r1 = Math.min(rows.length, r0 + blockRows);
    for (let r = r0; r < r1; r++) {
      block.set(x.subarray(rows[r]! * dim, rows[r]! * dim + dim), (r - r0) * dim);
      margin[r - r0] = out.margin(r);
    }
    const near = await ort.near.run(block.subarray(0, (r1 - r0) * dim), {
      b: centers,
      bias,
      margin: margin.subarray(0, r1 - r0),
    });
    out.decide(near, { r0, r1 });
    options.progress?.tick(r1 - r0);
  }
  return out;
}

/** The nearest centre and its scalar distance for each of `rows`, filled row by row. */
class NearestCentres {
  readonly label: Int32Array;
  readonly dist: Float64Array;
  readonly geo: CentreDistances;
  readonly #rows: ArrayLike<number>;
  readonly #dim: number;
  readonly #k: number;
  /** error bound per unit magnitude of a float32 product entry */
  readonly #unit: number;
  readonly #cmax2: number;

  constructor(x: Float32Array, rows: ArrayLike<number>, options: { centers: Float32Array; dim: number; k: number }) {
    const { dim, k } = options;
    this.geo = new CentreDistances(x, options.centers, { dim, k });
    this.label = new Int32Array(rows.length);
    this.dist = new Float64Array(rows.length);
    this.#rows = rows;
    this.#dim = dim;
    this.#k = k;
    this.#unit = gemmErrorBound(dim, 1, 0);
    let cmax2 = 0;
    for (const cn of this.geo.cnorm) cmax2 = Math.max(cmax2, cn);
    this.#cmax2 = cmax2;
  }

  /** Row `r` by the scalar scan over all centres. */
  scan(r: number): void {
    const geo = this.geo, k = this.#k;
    const o = this.#rows[r]! * this.#dim, xn = geo.rowNorm(o);
    let best = 0, bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const d = geo.dist(o, xn, c);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    this.label[r] = best;
    this.dist[r] = bestD;
  }

  /**
   * The screening margin of row `r` for `S = ‖c‖² − 2x·c` in float32. An entry is off by at most err (its bound at
   * the largest centre norm) and the scalar values by far less than 1e-12 of their scale, so only the centres whose
   * entry is within 2·err + that slack of the row's smallest entry can hold the scalar minimum. Widened for the
   * float32 rounding of the margin and of `min + margin` in the graph.
   */
  margin(r: number): number {
    const xn = this.geo.rowNorm(this.#rows[r]! * this.#dim), cmax2 = this.#cmax2;
    const scale = cmax2 + 2 * Math.sqrt(xn * cmax2);
    return (1 + 2 ** -20) * ((2 * this.#unit + 2 ** -21) * scale + 1e-12 * (1 + xn + cmax2));
  }

  /**
   * Rows r0..r1 from their screened centres (positions relative to r0, row-major): the scalar distances of those
   * alone decide, in index order (first wins on ties, as in the scan). A row without any (a NaN minimum) is scanned.
   */
  decide(near: { rows: Int32Array; cols: Int32Array }, range: { r0: number; r1: number }): void {
    const geo = this.geo, rows = this.#rows, dim = this.#dim;
    const nr = near.rows, nc = near.cols;
    let t = 0;
    for (let r = range.r0; r < range.r1; r++) {
      const o = rows[r]! * dim, xn = geo.rowNorm(o), local = r - range.r0;
      let best = -1, bestD = Infinity;
      for (; t < nr.length && nr[t] === local; t++) {
        const d = geo.dist(o, xn, nc[t]!);
        if (d < bestD || best < 0) {
          bestD = d;
          best = nc[t]!;
        }
      }
      if (best < 0 || !(bestD < Infinity)) this.scan(r);
      else {
        this.label[r] = best;
        this.dist[r] = bestD;
      }
    }
    if (t !== nr.length) throw new LtcError("mini_batch_kmeans: onnxruntime returned positions out of row order");
  }
}

async function kmeansPlusPlus(
  x: Float32Array,
  rows: Int32Array,
  options: { dim: number; k: number; rng: Mt19937; engine: KmeansDistances; progress?: Progress },
): Promise<Float32Array> {
  const { dim, k, rng } = options;
  const m = rows.length;
  const centers = new Float32Array(k * dim);
  const sq = (a: number, b: number) => {
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const d = x[rows[a]! * dim + t]! - x[rows[b]! * dim + t]!;
      s += d * d;
    }
    return s;
  };
  const trials = 2 + Math.floor(Math.log(k));
  const gemm = ortFor(options.engine, trials * m * dim)?.gemm ?? null;
  const screen = gemm ? new KppScreen(x, rows, { dim, trials }) : null;
  const first = rng.randint(0, m);
  centers.set(x.subarray(rows[first]! * dim, rows[first]! * dim + dim), 0);
  let closest = new Float64Array(m);
  let pot = 0;
  for (let r = 0; r < m; r++) pot += closest[r] = sq(first, r);
  const cum = new Float64Array(m);
  const cands = new Int32Array(trials);
  const pots = new Float64Array(trials);
  // per-trial minimum distances; the winner's array becomes `closest` and `closest`'s takes its place
  const trialDist = Array.from({ length: trials }, () => new Float64Array(m));
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let r = 0; r < m; r++) cum[r] = acc += closest[r]!;
    for (let t = 0; t < trials; t++) {
      const target = rng.randomSample() * pot;
      // np.searchsorted (left): first index with cum ≥ target, clipped to m − 1.
      let lo = 0, hi = m;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cum[mid]! < target) lo = mid + 1;
        else hi = mid;
      }
      cands[t] = Math.min(lo, m - 1);
    }
    if (gemm && screen) await screen.potentials(gemm, { cands, closest, trialDist, pots, sq });
    else {
      for (let t = 0; t < trials; t++) {
        const cand = cands[t]!, d = trialDist[t]!;
        let p = 0;
        for (let r = 0; r < m; r++) p += d[r] = Math.min(closest[r]!, sq(cand, r));
        pots[t] = p;
      }
    }
    let bestPot = Infinity, bestTrial = -1;
    for (let t = 0; t < trials; t++) {
      if (pots[t]! < bestPot) {
        bestPot = pots[t]!;
        bestTrial = t;
      }
    }
    const bestCand = bestTrial < 0 ? 0 : cands[bestTrial]!;
    pot = bestPot;
    if (bestTrial >= 0) [closest, trialDist[bestTrial]] = [trialDist[bestTrial]!, closest];
    centers.set(x.subarray(rows[bestCand]! * dim, rows[bestCand]! * dim + dim), c * dim);
    options.progress?.tick();
  }
  return centers;
}

/**
 * k-means++ candidate potentials through onnxruntime: `S = ‖x‖² − 2q·x` for the candidates q against the sample
 * rows x (float32), `+ ‖q‖²` in float64. Where S minus its error bound is still ≥ the row's current closest
 * distance, the scalar `min(closest, sq)` is `closest`; elsewhere `sq` is computed. Potentials sum in row order as
 * on the scalar path.
 */
class KppScreen {
  readonly #sample: Float32Array;
  readonly #xn: Float64Array;
  readonly #bias: Float32Array;
  /** bound of row r against a candidate of norm ‖q‖ and squared norm cn: errConst[r] + ‖q‖·errSlope[r] + 1e-12·cn
   * (the 1e-12 terms cover the scalar sums' float64 rounding) */
  readonly #errConst: Float64Array;
  readonly #errSlope: Float64Array;
  readonly #queries: Float32Array;
  readonly #dim: number;
  readonly #chunkRows: number;

  constructor(x: Float32Array, rows: Int32Array, options: { dim: number; trials: number }) {
    const { dim, trials } = options;
    const m = rows.length;
    this.#dim = dim;
    this.#sample = new Float32Array(m * dim);
    for (let r = 0; r < m; r++) this.#sample.set(x.subarray(rows[r]! * dim, rows[r]! * dim + dim), r * dim);
    this.#xn = new Float64Array(m);
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += this.#sample[r * dim + t]! * this.#sample[r * dim + t]!;
      this.#xn[r] = s;
    }
    this.#bias = Float32Array.from(this.#xn);
    const unit = gemmErrorBound(dim, 1, 0);
    this.#errConst = this.#xn.map((v) => unit * v + 1e-12 * (1 + v));
    this.#errSlope = this.#xn.map((v) => 2 * unit * Math.sqrt(v));
    this.#queries = new Float32Array(trials * dim);
    this.#chunkRows = Math.max(1, Math.floor(ORT_BLOCK_ENTRIES / trials));
  }

  /** Fill `trialDist[t]` with min(closest, sq(cands[t], ·)) and `pots[t]` with its sum, for every trial t. */
  async potentials(gemm: ScaledGemmOrt, step: KppStep): Promise<void> {
    const dim = this.#dim, m = this.#xn.length;
    step.cands.forEach((cand, t) => this.#queries.set(this.#sample.subarray(cand * dim, cand * dim + dim), t * dim));
    step.pots.fill(0);
    for (let r0 = 0; r0 < m; r0 += this.#chunkRows) {
      const r1 = Math.min(m, r0 + this.#chunkRows);
      const s = await gemm.run(this.#queries, this.#sample.subarray(r0 * dim, r1 * dim), this.#bias.subarray(r0, r1));
      for (let t = 0; t < step.cands.length; t++) this.#trial(s, step, { t, r0, r1 });
    }
  }

  #trial(s: Float32Array, step: KppStep, at: { t: number; r0: number; r1: number }): void {
    const { t, r0, r1 } = at;
    const { closest, sq } = step;
    const errConst = this.#errConst, errSlope = this.#errSlope;
    const cand = step.cands[t]!, d = step.trialDist[t]!;
    const cn = this.#xn[cand]!, qn = Math.sqrt(cn), shift = cn - 1e-12 * cn;
    let p = step.pots[t]!;
    for (let r = r0, so = t * (r1 - r0) - r0; r < r1; r++) {
      const cl = closest[r]!;
      const lower = s[so + r]! + shift - (errConst[r]! + qn * errSlope[r]!);
      p += d[r] = lower >= cl ? cl : Math.min(cl, sq(cand, r));
    }
    step.pots[t] = p;
  }
}

/** One k-means++ step's candidates and the arrays its potentials are written to. */
interface KppStep {
  cands: Int32Array;
  closest: Float64Array;
  trialDist: Float64Array[];
  pots: Float64Array;
  sq: (a: number, b: number) => number;
}

/** One sklearn 0.22 `_mini_batch_step` on `rows`; returns the batch inertia. */
async function miniBatchStep(
  x: Float32Array,
  rows: Int32Array,
  state: {
    centers: Float32Array;
    counts: Float64Array;
    dim: number;
    k: number;
    engine: KmeansDistances;
    sums?: Float64Array;
  },
  reassign: { rng: Mt19937; ratio: number } | null,
): Promise<number> {
  const { centers, counts, dim, k } = state;
  const { label, dist } = await nearest(x, rows, centers, { dim, k, engine: state.engine });
  let inertia = 0;
  for (const d of dist) inertia += d;
  if (reassign && reassign.ratio > 0) {
    let max = 0;
    for (const c of counts) max = Math.max(max, c);
    const to = new Uint8Array(k);
    let nre = 0;
    for (let c = 0; c < k; c++) {
      if (counts[c]! < reassign.ratio * max) {
        to[c] = 1;
        nre++;
      }
    }
    if (nre > 0.5 * rows.length) {
      const order = Array.from({ length: k }, (_, c) => c).sort((a, b) => counts[a]! - counts[b]! || a - b);
      for (const c of order.slice(Math.floor(0.5 * rows.length))) {
        if (to[c]) {
          to[c] = 0;
          nre--;
        }
      }
    }
    if (nre > 0) {
      const picks = reassign.rng.choiceNoReplace(rows.length, nre);
      let t = 0;
      for (let c = 0; c < k; c++) {
        if (!to[c]) continue;
        const r = rows[picks[t++]!]!;
        centers.set(x.subarray(r * dim, r * dim + dim), c * dim);
      }
    }
    let minKeep = Infinity;
    for (let c = 0; c < k; c++) if (!to[c]) minKeep = Math.min(minKeep, counts[c]!);
    for (let c = 0; c < k; c++) if (to[c]) counts[c] = minKeep;
  }
  // per-centre sums of the batch rows, in a zeroed buffer kept across steps (only touched centres are cleared)
  const sums = state.sums ??= new Float64Array(k * dim);
  const w = new Float64Array(k);
  for (let r = 0; r < rows.length; r++) {
    const c = label[r]!, o = rows[r]! * dim;
    w[c]!++;
    for (let t = 0; t < dim; t++) sums[c * dim + t]! += x[o + t]!;
  }
  for (let c = 0; c < k; c++) {
    if (w[c] === 0) continue;
    const total = counts[c]! + w[c]!;
    for (let t = 0; t < dim; t++) {
      centers[c * dim + t] = (centers[c * dim + t]! * counts[c]! + sums[c * dim + t]!) / total;
    }
    sums.fill(0, c * dim, c * dim + dim);
    counts[c] = total;
  }
  return inertia;
}

/**
 * sklearn 0.22 `MiniBatchKMeans(n_clusters, batch_size, random_state=seed).fit(X).labels_` (see module doc).
 * `engine` picks how distances are computed ({@linkcode KmeansEngine}); every engine gives the same labels.
 */
export async function miniBatchKmeans(
  features: Features,
  options: {
    nClusters: number;
    batchSize: number;
    seed?: number;
    maxIter?: number;
    nInit?: number;
    engine?: KmeansEngine;
  },
): Promise<Int32Array> {
  const { n, dim, data: x } = features;
  const k = options.nClusters, bs = options.batchSize;
  if (!(Number.isInteger(k) && k >= 1 && k <= n)) {
    throw new LtcError(`mini_batch_kmeans: n_clusters must be an integer in 1..${n}, got ${k}`);
  }
  if (!(Number.isInteger(bs) && bs >= 1)) throw new LtcError(`mini_batch_kmeans: batch_size must be ≥ 1, got ${bs}`);
  const engine = await kmeansDistances(options.engine ?? "auto", { x, dim, work: n * k * dim });
  try {
    return await miniBatchKmeansRun(x, { ...options, n, dim, k, bs, engine });
  } finally {
    await engine.ort?.gemm.release();
    await engine.ort?.near.release();
  }
}

async function miniBatchKmeansRun(
  x: Float32Array,
  options: {
    n: number;
    dim: number;
    k: number;
    bs: number;
    engine: KmeansDistances;
    seed?: number;
    maxIter?: number;
    nInit?: number;
  },
): Promise<Int32Array> {
  const { n, dim, k, bs, engine } = options;
  const rng = Mt19937.numpy(options.seed ?? 0);
  const maxIter = options.maxIter ?? 100, nInit = options.nInit ?? 3;
  const nIter = Math.floor(maxIter * Math.ceil(n / bs));
  const initSize = Math.min(3 * bs, n);
  const draw = (size: number) => {
    const out = new Int32Array(size);
    for (let t = 0; t < size; t++) out[t] = rng.randint(0, n);
    return out;
  };
  const valid = draw(initSize);
  let best: { centers: Float32Array; counts: Float64Array } | null = null;
  let bestInertia = Infinity;
  for (let run = 0; run < nInit; run++) {
    let initRows: Int32Array;
    if (initSize < n) initRows = draw(initSize < k ? 3 * k : initSize);
    else initRows = Int32Array.from({ length: n }, (_, i) => i);
    const progress = new Progress(`mini_batch_kmeans k-means++ ${run + 1}/${nInit}`, k - 1);
    const centers = await kmeansPlusPlus(x, initRows, { dim, k, rng, engine, progress });
    progress.done();
    const counts = new Float64Array(k);
    await miniBatchStep(x, valid, { centers, counts, dim, k, engine }, null);
    let inertia = 0;
    for (const d of (await nearest(x, valid, centers, { dim, k, engine })).dist) inertia += d;
    if (best === null || inertia < bestInertia) {
      best = { centers, counts };
      bestInertia = inertia;
    }
  }
  const state = { ...best!, dim, k, engine };
  let ewa: number | null = null, ewaMin: number | null = null, noImprovement = 0;
  const alpha = Math.min(1, (bs * 2) / (n + 1));
  const progress = new Progress("mini_batch_kmeans steps", nIter);
  for (let it = 0; it < nIter; it++) {
    const rows = draw(bs);
    let minCount = Infinity;
    for (const c of state.counts) minCount = Math.min(minCount, c);
    const doReassign = (it + 1) % (10 + Math.trunc(minCount)) === 0;
    const inertia = (await miniBatchStep(x, rows, state, doReassign ? { rng, ratio: 0.01 } : null)) / bs;
    ewa = ewa === null ? inertia : ewa * (1 - alpha) + inertia * alpha;
    if (ewaMin === null || ewa < ewaMin) {
      noImprovement = 0;
      ewaMin = ewa;
    } else noImprovement++;
    progress.tick(1, `ewa inertia ${ewa.toPrecision(6)}`);
    if (noImprovement >= 10) break;
  }
  progress.done();
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const assign = new Progress("mini_batch_kmeans labels", n);
  const { label } = await nearest(x, all, state.centers, { dim, k, engine, progress: assign });
  assign.done();
  return label;
}

/** `mini_batch_kmeans`: sklearn 0.22's MiniBatchKMeans on the features. */
export const MINI_BATCH_KMEANS: Baseline = {
  name: "mini_batch_kmeans",
  input: "features",
  defaultSeed: 0,
  paramString: (p) => `n_${p.n_clusters}_bs_${p.batch_size}`,
  run: async (p, data) => ({
    labels: relabelDense(
      await miniBatchKmeans(data.features(), { nClusters: p.n_clusters, batchSize: p.batch_size, seed: p.seed }),
    ),
  }),
};
