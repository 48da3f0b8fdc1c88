/**
 * The embedded benchmark generator: an MS-Celeb-1M-like set of face embeddings with ground truth (identities with
 * modes, look-alikes, per-sample quality, label noise; reference §12 for the real benchmark's sizes), deterministic
 * given its seeds, and the similarity statistics of what it produced.
 * @module
 */
import { join } from "node:path";
import { ensureWritable, tempPath, Timings, writeSidecar } from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { writeFeatures } from "../shared/features.ts";
import { writeLabels } from "../shared/meta.ts";
import { log, Progress } from "../shared/progress.ts";
import { Rng } from "../shared/random.ts";

/** Knobs of the generator. */
export interface SynthParams {
  ids: number;
  dim: number;
  meanSize: number;
  sizeSigma: number;
  minSize: number;
  maxSize: number;
  confusable: number;
  confusableCosMin: number;
  confusableCosMax: number;
  modesMax: number;
  modeCos: number;
  quality: number;
  qualitySigma: number;
  qualityMin: number;
  mislabel: number;
  /** share of unrecognisable samples (blur, occlusion, non-faces) */
  uiShare: number;
  /** mean cosine of an unrecognisable sample to its mode */
  uiQuality: number;
  /** cosine of an unrecognisable sample's residual to the world's shared "unrecognisable" direction */
  uiCos: number;
  /** dimension of the nuisance subspace shared by all identities */
  nuisanceDim: number;
  /** seed of the split (identities, samples) */
  seed: number;
  /** seed of what both splits share (the nuisance subspace); default: `seed` */
  worldSeed?: number;
}

/** Defaults: tuned so that k=80 super-vertex proposals at th 0.7 behave like MS1M's (see README). */
export const DEFAULT_SYNTH: Omit<SynthParams, "ids" | "seed" | "worldSeed"> = {
  dim: 256,
  meanSize: 68,
  sizeSigma: 0.5,
  minSize: 4,
  maxSize: 600,
  confusable: 0.5,
  confusableCosMin: 0.4,
  confusableCosMax: 0.8,
  modesMax: 4,
  modeCos: 0.84,
  quality: 0.9,
  qualitySigma: 0.05,
  qualityMin: 0.4,
  mislabel: 0.01,
  uiShare: 0,
  uiQuality: 0.5,
  uiCos: 0.95,
  nuisanceDim: 24,
};

/**
 * Benchmark scales: identities per split. `part1` matches MS1M part1 (8,573 identities ≈ 584K samples); `mid` has
 * enough training identities for GCN-D to beat CDP and the single proposal sets (measured; `default` does not).
 */
export const SCALES: Record<string, { train: number; test: number; testParts?: number }> = {
  /** the pipeline test's world: every stage runs, nothing is learnt */
  tiny: { train: 60, test: 60 },
  /** too few training identities for GCN-D to learn an IoU that carries over to unseen people */
  small: { train: 300, test: 300 },
  /** the smallest world where the seed's ordering shows (GCN-D above CDP and the single proposal sets) */
  default: { train: 1000, test: 1000 },
  /** MS1M part1_test / part0_train size */
  part1: { train: 8573, test: 8573 },
  /** the seed's scale table: test splits `part<n>_test` of n part1-sized parts (≈ 1.74M, 2.89M, 4.05M, 5.21M) */
  "3": { train: 8573, test: 8573, testParts: 3 },
  "5": { train: 8573, test: 8573, testParts: 5 },
  "7": { train: 8573, test: 8573, testParts: 7 },
  "9": { train: 8573, test: 8573, testParts: 9 },
};

/**
 * Seed of part `j` (0-based) of a multi-part split whose first part has seed `seed`: part 0 is the single-part
 * split itself (so `part<n>_test` starts with `part1_test`'s rows), the others are new people of the same world.
 */
export function partSeed(seed: number, j: number): number {
  return seed + 1_000_003 * j;
}

/** A generated split. */
export interface SynthSet {
  features: Float32Array;
  labels: Int32Array;
  n: number;
  dim: number;
}

/** A random unit vector. */
function unitVector(rng: Rng, dim: number): Float64Array {
  const v = new Float64Array(dim);
  let ss = 0;
  for (let j = 0; j < dim; j++) ss += (v[j] = rng.normal()) ** 2;
  const inv = 1 / Math.sqrt(ss);
  for (let j = 0; j < dim; j++) v[j]! *= inv;
  return v;
}

/** A unit vector at cosine ≈ `cos` to unit vector `base` (a random direction mixed in; exact in high dimension). */
function around(rng: Rng, base: Float64Array, cos: number): Float64Array {
  const dim = base.length;
  const u = unitVector(rng, dim);
  const s = Math.sqrt(Math.max(0, 1 - cos * cos));
  const v = new Float64Array(dim);
  let ss = 0;
  for (let j = 0; j < dim; j++) ss += (v[j] = cos * base[j]! + s * u[j]!) ** 2;
  const inv = 1 / Math.sqrt(ss);
  for (let j = 0; j < dim; j++) v[j]! *= inv;
  return v;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]! * b[j]!;
  return s;
}

function normalize(v: Float64Array): Float64Array {
  const inv = 1 / Math.sqrt(dot(v, v));
  for (let j = 0; j < v.length; j++) v[j]! *= inv;
  return v;
}

/** Remove the components along an orthonormal basis, then normalise. */
function projectOut(v: Float64Array, basis: Float64Array[]): Float64Array {
  for (const b of basis) {
    const d = dot(v, b);
    for (let j = 0; j < v.length; j++) v[j]! -= d * b[j]!;
  }
  return normalize(v);
}

/** An orthonormal basis of a random `k`-dimensional subspace (Gram–Schmidt), from its own seed. */
function nuisanceBasis(seed: number, dim: number, k: number): Float64Array[] {
  const rng = new Rng(seed, 0x5eed); // its own stream of the world seed
  const basis: Float64Array[] = [];
  for (let i = 0; i < Math.min(k, dim - 1); i++) basis.push(projectOut(unitVector(rng, dim), basis));
  return basis;
}

/** Generate one split of `p.ids` identities. Deterministic in `p.seed` and `p.worldSeed`. */
export function generateSynth(p: SynthParams): SynthSet {
  if (!(p.ids >= 2)) throw new LtcError(`synth: --ids must be at least 2, got ${p.ids}`);
  const rng = new Rng(p.seed);
  const { dim } = p;
  // identity sizes: log-normal with the requested mean
  const mu = Math.log(p.meanSize) - (p.sizeSigma * p.sizeSigma) / 2;
  const sizes = new Int32Array(p.ids);
  for (let i = 0; i < p.ids; i++) {
    const s = Math.round(Math.exp(mu + p.sizeSigma * rng.normal()));
    sizes[i] = Math.min(p.maxSize, Math.max(p.minSize, s));
  }
  // The nuisance subspace (pose, illumination, age: directions along which every person varies) belongs to the
  // "world", so it comes from `worldSeed` and is shared by the training and test splits. Identity centres live in
  // its orthogonal complement; each mode is the centre tilted by a random nuisance direction.
  const basis = nuisanceBasis(p.worldSeed ?? p.seed, dim, p.nuisanceDim);
  const nuisance = () => {
    const u = new Float64Array(dim);
    for (const b of basis) {
      const g = rng.normal();
      for (let j = 0; j < dim; j++) u[j]! += g * b[j]!;
    }
    return normalize(u);
  };
  const tilt = (centre: Float64Array, u: Float64Array) => {
    const s = Math.sqrt(1 - p.modeCos * p.modeCos);
    return normalize(centre.map((c, j) => p.modeCos * c + s * u[j]!));
  };
  // A look-alike's centre sits at cosine c ∈ [confusableCosMin, confusableCosMax] to an earlier identity's centre
  // (the difference lies in identity space) and it shares that identity's nuisance offsets (same poses), so its
  // samples can be closer to the other identity's than to its own samples in another pose.
  const centres: Float64Array[] = [];
  const offsets: Float64Array[][] = [];
  for (let i = 0; i < p.ids; i++) {
    if (i > 0 && rng.random() < p.confusable) {
      const other = rng.int(i);
      const cos = p.confusableCosMin + (p.confusableCosMax - p.confusableCosMin) * rng.random();
      const dir = projectOut(unitVector(rng, dim), basis);
      const c = centres[other]!;
      const perp = normalize(dir.map((v, j) => v - dot(dir, c) * c[j]!));
      centres.push(normalize(c.map((v, j) => cos * v + Math.sqrt(1 - cos * cos) * perp[j]!)));
      offsets.push(offsets[other]!);
    } else {
      centres.push(projectOut(unitVector(rng, dim), basis));
      offsets.push(Array.from({ length: 1 + rng.int(p.modesMax) }, nuisance));
    }
  }
  const modes = centres.map((c, i) => offsets[i]!.map((u) => tilt(c, u)));
  // Unrecognisable faces of every identity drift towards one shared direction of the world (the embedding network
  // maps blur, occlusion and non-faces to similar points), so they link across identities.
  const uiDirection = projectOut(unitVector(new Rng(p.worldSeed ?? p.seed, 0x0b1a), dim), basis);
  const n = sizes.reduce((a, b) => a + b, 0);
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const order = rng.permutation(n); // shuffled sample order
  const progress = new Progress(`synth ${p.ids} identities`, n);
  let row = 0;
  for (let id = 0; id < p.ids; id++) {
    const idModes = modes[id]!;
    // mode weights: a dominant mode and minor ones
    const w = idModes.map(() => rng.random() + 0.2);
    const wsum = w.reduce((a, b) => a + b, 0);
    for (let s = 0; s < sizes[id]!; s++) {
      let source = id;
      if (rng.random() < p.mislabel) source = (id + 1 + rng.int(p.ids - 1)) % p.ids;
      let r = rng.random() * wsum, mi = 0;
      const srcModes = modes[source]!;
      if (source === id) {
        while (mi < idModes.length - 1 && r >= w[mi]!) r -= w[mi++]!;
      } else mi = rng.int(srcModes.length);
      const q = Math.min(0.99, Math.max(p.qualityMin, p.quality + p.qualitySigma * rng.normal()));
      // q is drawn for every sample, so turning unrecognisable faces on or off leaves the other draws in place
      let x: Float64Array;
      if (p.uiShare > 0 && rng.random() < p.uiShare) {
        const qu = Math.min(0.99, Math.max(0.05, p.uiQuality + p.qualitySigma * rng.normal()));
        const residual = around(rng, uiDirection, p.uiCos);
        const m = srcModes[mi]!;
        x = normalize(m.map((v, j) => qu * v + Math.sqrt(1 - qu * qu) * residual[j]!));
      } else x = around(rng, srcModes[mi]!, q);
      const dst = order[row++]!;
      labels[dst] = id;
      features.set(x, dst * dim);
      progress.tick();
    }
  }
  progress.done();
  return { features, labels, n, dim };
}

/** Similarity statistics of a split, from a fixed random sample of pairs (recorded in the sidecar and README). */
export function similarityStats(
  set: SynthSet,
  options: { pairs?: number; seed?: number } = {},
): Record<string, number> {
  const rng = new Rng(options.seed ?? 7);
  const pairs = options.pairs ?? 200_000;
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < set.n; i++) {
    const l = set.labels[i]!;
    const list = byLabel.get(l);
    if (list) list.push(i);
    else byLabel.set(l, [i]);
  }
  const dot = (a: number, b: number) => {
    let s = 0;
    for (let j = 0; j < set.dim; j++) s += set.features[a * set.dim + j]! * set.features[b * set.dim + j]!;
    return s;
  };
  const same: number[] = [], diff: number[] = [];
  const groups = [...byLabel.values()].filter((g) => g.length > 1);
  for (let t = 0; t < pairs; t++) {
    const g = groups[rng.int(groups.length)]!;
    const a = g[rng.int(g.length)]!;
    let b = g[rng.int(g.length)]!;
    if (a === b) b = g[(g.indexOf(a) + 1) % g.length]!;
    same.push(dot(a, b));
    diff.push(dot(rng.int(set.n), rng.int(set.n)));
  }
  const q = (arr: number[], f: number) => arr[Math.min(arr.length - 1, Math.floor(f * arr.length))]!;
  same.sort((a, b) => a - b);
  diff.sort((a, b) => a - b);
  const share = (arr: number[], th: number) => arr.filter((v) => v >= th).length / arr.length;
  return {
    same_identity_cos_median: q(same, 0.5),
    same_identity_cos_p10: q(same, 0.1),
    same_identity_cos_p90: q(same, 0.9),
    same_identity_share_ge_0_7: share(same, 0.7),
    random_pair_cos_median: q(diff, 0.5),
    random_pair_cos_p99: q(diff, 0.99),
    random_pair_cos_p9999: q(diff, 0.9999),
  };
}

/**
 * Generate and write a split made of several parts (the seed's scales: n part1-sized parts with disjoint
 * identities), one part at a time: each part's rows are appended to the feature file as soon as they exist, so
 * the whole N × dim matrix is never held (5.21M × 256 would be 5.3 GB). Labels are numbered on from part to part.
 * The files are written under temp names and renamed when complete; the sidecars record every part's parameters
 * and the similarity statistics of the first part.
 */
export function writeSynthParts(
  prefix: string,
  name: string,
  parts: SynthParams[],
  timings: Timings,
): { n: number; ids: number } {
  if (parts.length === 0) throw new LtcError(`synth: ${name} needs at least one part`);
  const featPath = join(prefix, "features", `${name}.bin`);
  const labelPath = join(prefix, "labels", `${name}.meta`);
  ensureWritable(featPath);
  ensureWritable(labelPath);
  const tmp = tempPath(featPath);
  const labels: number[] = [];
  let ids = 0, dim = 0, stats: Record<string, number> = {};
  const file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
  try {
    parts.forEach((params, j) => {
      const set = timings.step("generate", () => generateSynth(params));
      if (j === 0) stats = similarityStats(set);
      dim = set.dim;
      timings.step("write", () => {
        const bytes = new Uint8Array(set.features.buffer, set.features.byteOffset, set.features.byteLength);
        for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
      });
      for (const l of set.labels) labels.push(l + ids);
      ids += params.ids;
      log(`synth: ${name} part ${j + 1}/${parts.length}: ${set.n} rows, ${params.ids} identities`);
    });
  } catch (err) {
    file.close();
    Deno.removeSync(tmp);
    throw err;
  }
  file.close();
  Deno.renameSync(tmp, featPath);
  timings.step("write", () => writeLabels(labelPath, labels));
  const extra = { n: labels.length, dim, identities: ids, parts: parts.length, similarity_part1: stats };
  const params = { parts: parts.map((p) => ({ ...p })) };
  writeSidecar(featPath, { stage: "synth", params, inputs: [], timings, extra });
  writeSidecar(labelPath, { stage: "synth", params, inputs: [], timings, extra });
  return { n: labels.length, ids };
}

/** Write one split in the original layout with its sidecars. */
export function writeSynthSet(
  prefix: string,
  name: string,
  set: SynthSet,
  params: SynthParams,
  timings: Timings,
): void {
  const featPath = join(prefix, "features", `${name}.bin`);
  const labelPath = join(prefix, "labels", `${name}.meta`);
  writeFeatures(featPath, set.features);
  writeLabels(labelPath, set.labels);
  const stats = similarityStats(set);
  const extra = { n: set.n, dim: set.dim, identities: params.ids, similarity: stats };
  writeSidecar(featPath, { stage: "synth", params: { ...params }, inputs: [], timings, extra });
  writeSidecar(labelPath, { stage: "synth", params: { ...params }, inputs: [], timings, extra });
  log(
    `synth: ${featPath} (${set.n} × ${set.dim}, ${params.ids} identities) same-id cos median ` +
      `${stats.same_identity_cos_median!.toFixed(3)}, random-pair median ${stats.random_pair_cos_median!.toFixed(3)}`,
  );
}
