/**
 * Stage `proposals`: cluster proposals from super vertices (reference §3), in the original's folder layout.
 *
 *     deno task proposals --prefix DIR --name NAME [--k 80] [--th-knn 0.7] [--th-step 0.05] [--minsz 3] [--maxsz 300]
 *         [--knn-method faiss|hnsw] [--oprefix DIR/cluster_proposals] [--dim 256] [--no-normalize] [--center]
 *     deno task proposals --prefix DIR --name NAME --sv-labels <iter0 folder>/pred_labels.txt [--k 3] [--th-knn 0.6]
 *         [--maxsz 500] [--sv-minsz 2] [--sv-maxsz 5]
 *     deno task proposals --prefix DIR --name NAME --config configs/proposals/ms1m_8_prpsls.yaml
 *
 * Iteration 0 reads `DIR/knns/NAME/<method>_k_<k>.npz` (building it with the kNN stage when missing) and writes
 * `OPREFIX/NAME/<method>_k_<k>_th_<th>_step_<step>_minsz_<minsz>_maxsz_<maxsz>_iter_0/` with `pred_labels.txt` and
 * `proposals/<i>_node.npz`, `<i>_edge.npz`. Iteration 1 (`--sv-labels`) clusters the mean features of the iter-0
 * clusters and writes `<iter0 folder>/..._sv_minsz_<a>_maxsz_<b>_iter_1/` plus `<iter0 folder>/knns/`. `--config`
 * runs a list of parameter sets (the original's multi-scale `generate_proposals`) and prints the proposal folders.
 *
 * Differences from the original, all deliberate:
 * - `pred_labels.txt` always has N lines: the original's iter-0 file stops at the largest clustered index
 *   (`write_meta` without `inst_num`); ours continues the same singleton numbering to N, so its first lines are
 *   byte-identical and the file lines up with the ground truth.
 * - Proposal numbering: clusters are numbered by their smallest member (the order `pred_labels.txt` lists them),
 *   where the original's order follows Python object hashing; node files list nodes ascending (the original:
 *   `list(set(nodes))`); edges follow from that order. The contents are the same sets.
 * - Outputs are reused only when the sidecar shows the same parameters and input bytes; the original reuses any
 *   existing `pred_labels.txt`.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { isUpToDate, sidecarPath, Timings, writeSidecar } from "../shared/artifact.ts";
import { type CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { checkKeys, type ConfigObject, loadYaml } from "../shared/config.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { type Features, l2NormalizeRows, readFeatures } from "../shared/features.ts";
import {
  type Clustering,
  clusteringToLabels,
  type ClusterMembers,
  clusterMembers,
  labelsToClustering,
  superVertex,
} from "../shared/graph.ts";
import { knnFileName, type KnnGraph, readKnn, writeKnn } from "../shared/knn_file.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { log, Progress } from "../shared/progress.ts";
import { type ProposalEdges, writeProposal } from "../shared/proposal_io.ts";
import type { BackendChoice } from "../gpu/device.ts";
import { buildKnn } from "./knn.ts";

/** kNN methods the proposal stage accepts (the original's choices). */
export const KNN_METHODS = ["faiss", "hnsw"] as const;
/** One of {@linkcode KNN_METHODS}. */
export type KnnMethod = typeof KNN_METHODS[number];

/**
 * Python's `str(float)`: shortest round-trip digits, always with a decimal point or exponent (`0.7`, `1.0`, `-1.0`,
 * `1e-05`, `1e+16`). The original puts floats into folder and file names this way.
 */
export function pyFloatStr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, expStr] = x.toExponential().split("e") as [string, string];
  const exp = Number(expStr);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let body: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  } else if (exp < 0) {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = `${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${body}` : body;
}

/** Parameters of one iteration-0 proposal set. */
export interface BasicProposalParams {
  knnMethod: KnnMethod;
  k: number;
  thKnn: number;
  thStep: number;
  minsz: number;
  maxsz: number;
}

/** Parameters of one iteration-1 proposal set (clustering super vertices). */
export interface IterProposalParams extends BasicProposalParams {
  /** keep clusters of at least this many super vertices (≥ 2) */
  svMinsz: number;
  /** at most this many super vertices per cluster */
  svMaxsz: number;
}

/** One parameter set of the multi-scale driver: an iter-0 set and the iter-1 sets built on it. */
export interface ProposalParamSet extends BasicProposalParams {
  /** whether the iter-0 folder itself is one of the outputs (the original's `iter0`) */
  iter0: boolean;
  iter1: IterProposalParams[];
}

/** `<method>_k_<k>_th_<th>_step_<step>_minsz_<minsz>_maxsz_<maxsz>` */
function paramStem(p: BasicProposalParams): string {
  return `${p.knnMethod}_k_${p.k}_th_${pyFloatStr(p.thKnn)}_step_${
    pyFloatStr(p.thStep)
  }_minsz_${p.minsz}_maxsz_${p.maxsz}`;
}

/** The original's iter-0 folder name, e.g. `faiss_k_80_th_0.7_step_0.05_minsz_3_maxsz_300_iter_0`. */
export function basicFolderName(p: BasicProposalParams): string {
  return `${paramStem(p)}_iter_0`;
}

/** The original's iter-n folder name (`..._sv_minsz_<a>_maxsz_<b>_iter_<n>`). */
export function iterFolderName(p: IterProposalParams, iter: number): string {
  return `${paramStem(p)}_sv_minsz_${p.svMinsz}_maxsz_${p.svMaxsz}_iter_${iter}`;
}

/** What a proposal folder name says: kNN method, k and iteration. */
export function parseProposalFolderName(folder: string): { knnMethod: KnnMethod; k: number; iter: number } {
  const name = basename(folder.replace(/[/\\]+$/, ""));
  const m = /^([a-z_]+?)_k_(\d+)_th_.*_iter_(\d+)$/.exec(name);
  if (!m || !(KNN_METHODS as readonly string[]).includes(m[1]!)) {
    throw new LtcError(`${folder}: not a proposal folder name (<method>_k_<k>_th_…_iter_<n>)`);
  }
  return { knnMethod: m[1] as KnnMethod, k: Number(m[2]), iter: Number(m[3]) };
}

function checkParams(p: BasicProposalParams, where: string): void {
  const ok = (c: boolean, what: string) => {
    if (!c) throw new LtcError(`${where}: ${what}`);
  };
  ok((KNN_METHODS as readonly string[]).includes(p.knnMethod), `knn_method must be faiss or hnsw, got ${p.knnMethod}`);
  ok(Number.isInteger(p.k) && p.k >= 1, `k must be a positive integer, got ${p.k}`);
  ok(Number.isFinite(p.thKnn) && p.thKnn <= 1, `th_knn must be a number ≤ 1, got ${p.thKnn}`);
  ok(Number.isFinite(p.thStep) && p.thStep > 0 && p.thStep <= 1, `th_step must be in (0, 1], got ${p.thStep}`);
  ok(Number.isInteger(p.minsz) && p.minsz >= 1, `minsz must be a positive integer, got ${p.minsz}`);
  ok(Number.isInteger(p.maxsz) && p.maxsz >= p.minsz, `maxsz must be an integer ≥ minsz, got ${p.maxsz}`);
}

function checkIterParams(p: IterProposalParams, where: string): void {
  checkParams(p, where);
  if (!(Number.isInteger(p.svMinsz) && p.svMinsz >= 2)) {
    throw new LtcError(`${where}: sv_minsz must be an integer ≥ 2 (a one-super-vertex proposal repeats iter 0)`);
  }
  if (!(Number.isInteger(p.svMaxsz) && p.svMaxsz >= p.svMinsz)) {
    throw new LtcError(`${where}: sv_maxsz must be an integer ≥ sv_minsz, got ${p.svMaxsz}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Proposal files

/**
 * Iteration order of CPython's `set` built by adding `keys` (non-negative ints, hash = value) one by one — what
 * the original's `list(set(nodes))` yields: open addressing with 9 linear probes then perturbed probing, and a
 * resize to the smallest power of two above 4·used once the table is 60 % full. Matches CPython 3.7–3.12.
 */
export function pySetOrder(keys: ArrayLike<number>): Int32Array {
  let mask = 7;
  let table = new Int32Array(8).fill(-1);
  let fill = 0;
  const insertClean = (tab: Int32Array, m: number, key: number) => {
    let i = key & m, perturb = key;
    for (;;) {
      if (tab[i] === -1) return void (tab[i] = key);
      if (i + 9 <= m) {
        for (let j = 1; j <= 9; j++) if (tab[i + j] === -1) return void (tab[i + j] = key);
      }
      perturb = Math.floor(perturb / 32);
      i = (i * 5 + 1 + perturb) & m;
    }
  };
  for (let t = 0; t < keys.length; t++) {
    const key = keys[t]!;
    let i = key & mask, perturb = key;
    let placed = false, present = false;
    while (!placed && !present) {
      const probes = i + 9 <= mask ? 9 : 0;
      for (let j = i; j <= i + probes; j++) {
        if (table[j] === -1) {
          table[j] = key;
          placed = true;
          break;
        }
        if (table[j] === key) {
          present = true;
          break;
        }
      }
      perturb = Math.floor(perturb / 32);
      i = (i * 5 + 1 + perturb) & mask;
    }
    if (present) continue;
    fill++;
    if (fill * 5 < mask * 3) continue;
    const minUsed = fill > 50000 ? fill * 2 : fill * 4;
    let size = 8;
    while (size <= minUsed) size *= 2;
    const old = table;
    table = new Int32Array(size).fill(-1);
    mask = size - 1;
    for (let j = 0; j < old.length; j++) if (old[j] !== -1) insertClean(table, mask, old[j]!);
  }
  const out = new Int32Array(fill);
  let p = 0;
  for (let j = 0; j < table.length; j++) if (table[j] !== -1) out[p++] = table[j]!;
  return out;
}

/**
 * The edge rows of a proposal as the original's `save_proposals` writes them from a dense (float64) kNN file
 * (reference §1.6): for each node in `nodes` order and each of its kNN neighbours in stored order that is another
 * member, a row `[min, max, dist]`. The original's de-duplication key mixes an int and a float (`"3545-4193.0"` from
 * one row, `"3545.0-4193"` from the other), so a pair met from both rows appears twice; only a neighbour repeated
 * within one row is dropped. `mark` is scratch of length N filled with −1 (restored on return).
 */
export function proposalEdges(nodes: ArrayLike<number>, knn: KnnGraph, mark: Int32Array): ProposalEdges {
  const s = nodes.length;
  const { k, nbrs, dists } = knn;
  for (let t = 0; t < s; t++) mark[nodes[t]!] = -2;
  let e = 0;
  let e1 = new Int32Array(Math.min(s * k, 1 << 16)), e2 = new Int32Array(e1.length);
  let dist = new Float64Array(e1.length);
  for (let t = 0; t < s; t++) {
    const u = nodes[t]!;
    const row = u * k;
    for (let c = 0; c < k; c++) {
      const v = nbrs[row + c]!;
      // mark[v]: −1 not a member, −2 member not yet met in this row, u: already met in this row.
      if (v < 0 || v === u || mark[v] === -1 || mark[v] === u) continue;
      mark[v] = u;
      if (e === e1.length) {
        const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
          const b = make(a.length * 2);
          b.set(a as never);
          return b;
        };
        e1 = grow(e1, (n) => new Int32Array(n));
        e2 = grow(e2, (n) => new Int32Array(n));
        dist = grow(dist, (n) => new Float64Array(n));
      }
      e1[e] = u < v ? u : v;
      e2[e] = u < v ? v : u;
      dist[e] = dists[row + c]!;
      e++;
    }
    // Back to "member, not met" for the next row.
    for (let c = 0; c < k; c++) {
      const v = nbrs[row + c]!;
      if (v >= 0 && mark[v] === u) mark[v] = -2;
    }
  }
  for (let t = 0; t < s; t++) mark[nodes[t]!] = -1;
  return { e1: e1.slice(0, e), e2: e2.slice(0, e), dist: dist.slice(0, e) };
}

/**
 * Write clusters as `<folder>/<i>_node.npz` / `<i>_edge.npz`, i = 0, 1, … in the given order, after removing
 * whatever the folder held. Each cluster's members are given in the order the original builds its node list from;
 * they are written in the order of `list(set(members))` ({@linkcode pySetOrder}). Returns the number written.
 */
export function writeProposalFolder(folder: string, clusters: ClusterMembers, knn: KnnGraph): number {
  try {
    Deno.removeSync(folder, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  Deno.mkdirSync(folder, { recursive: true });
  const count = clusters.offsets.length - 1;
  const pos = new Int32Array(knn.n).fill(-1);
  const progress = new Progress("proposals", count);
  for (let c = 0; c < count; c++) {
    const nodes = pySetOrder(clusters.members.subarray(clusters.offsets[c]!, clusters.offsets[c + 1]!));
    for (let t = 0; t < nodes.length; t++) {
      if (nodes[t]! >= knn.n) {
        throw new LtcError(`proposal ${c} holds node ${nodes[t]}, but the kNN graph has ${knn.n} rows`);
      }
    }
    writeProposal(folder, c, nodes, proposalEdges(nodes, knn, pos), { level: 1 });
    progress.tick();
  }
  progress.done();
  return count;
}

/** Keep the clusters whose size lies in [minsz, maxsz] (the original's `filter_clusters`), in order. */
export function filterClusters(clusters: ClusterMembers, minsz: number, maxsz = Infinity): ClusterMembers {
  const keep: number[] = [];
  for (let c = 0; c + 1 < clusters.offsets.length; c++) {
    const sz = clusters.offsets[c + 1]! - clusters.offsets[c]!;
    if (sz >= minsz && sz <= maxsz) keep.push(c);
  }
  const offsets = new Int32Array(keep.length + 1);
  keep.forEach((c, t) => offsets[t + 1] = offsets[t]! + clusters.offsets[c + 1]! - clusters.offsets[c]!);
  const members = new Int32Array(offsets[keep.length]!);
  keep.forEach((c, t) =>
    members.set(clusters.members.subarray(clusters.offsets[c]!, clusters.offsets[c + 1]!), offsets[t]!)
  );
  return { offsets, members };
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

/** Where the features of a dataset live and how to load them (the original's `BasicDataset`). */
export interface FeatureSource {
  /** `.bin` path */
  path: string;
  dim?: number;
  normalize?: boolean;
  center?: boolean;
}

/** Lazily loaded features and instance kNN graphs, shared by every parameter set of one run. */
export class FeatureCache {
  #features: Features | null = null;
  /** kNN graphs already read in this run, by path */
  readonly knns = new Map<string, KnnGraph>();
  /** @param source the features file; absent when only existing kNN files are used */
  constructor(readonly source?: FeatureSource) {}
  /** Row count from the file size alone (no read), or undefined when there is no features file. */
  rowCount(): number | undefined {
    if (this.#features) return this.#features.n;
    if (!this.source) return undefined;
    try {
      const size = Deno.statSync(this.source.path).size;
      const dim = this.source.dim ?? 256;
      if (size % (4 * dim) !== 0) return undefined;
      return size / (4 * dim);
    } catch {
      return undefined;
    }
  }
  /** The features (read once). */
  get(): Features {
    if (this.#features) return this.#features;
    if (!this.source) throw new LtcError("features are needed here but no features file was given");
    this.#features = readFeatures(this.source.path, {
      dim: this.source.dim,
      normalize: this.source.normalize,
      center: this.source.center,
    });
    return this.#features;
  }
}

/**
 * Load the kNN graph `path`, building it from `features` with exact kNN when the file is missing (the original's
 * `build_knns`). A graph whose N differs from the features' row count is an error naming both.
 */
export async function loadOrBuildKnn(
  path: string,
  options: { features: FeatureCache; k: number; knnMethod: KnnMethod; backend?: BackendChoice },
): Promise<KnnGraph> {
  const { features } = options;
  const cached = features.knns.get(path);
  if (cached && cached.k >= options.k) return cached;
  let exists = false;
  try {
    exists = Deno.statSync(path).isFile;
  } catch { /* missing */ }
  let graph: KnnGraph;
  if (exists) {
    graph = readKnn(path);
    if (graph.k < options.k) {
      throw new LtcError(`${path}: has ${graph.k} neighbours per row, fewer than k = ${options.k}`);
    }
  } else {
    const feats = features.get();
    log(`proposals: ${path} is missing, building it (${options.knnMethod}, k ${options.k}) over ${feats.n} rows`);
    const res = await buildKnn(feats, {
      k: options.k,
      method: options.knnMethod === "hnsw" ? "hnsw" : "exact",
      backend: options.backend,
    });
    graph = res.graph;
    writeKnn(path, graph);
    const src = features.source!;
    writeSidecar(path, {
      stage: "knn",
      params: {
        method: res.method,
        k: options.k,
        dim: src.dim ?? 256,
        normalize: src.normalize ?? true,
        center: src.center ?? false,
        ...(res.hnsw ? { hnsw: res.hnsw } : {}),
      },
      inputs: [src.path],
      backend: res.backend,
      timings: res.timings,
      extra: res.recall ? { recall: res.recall } : undefined,
    });
  }
  const n = features.rowCount();
  if (n !== undefined && n !== graph.n) {
    throw new LtcError(`${path}: kNN graph has ${graph.n} rows but ${features.source!.path} has ${n}`);
  }
  features.knns.set(path, graph);
  return graph;
}

// ---------------------------------------------------------------------------------------------------------------
// Iteration 0

/** Inputs of {@linkcode generateBasicProposals}. */
export interface BasicProposalOptions {
  /** folder that holds the parameter folders: the original's `oprefix/name` */
  oprefix: string;
  /** folder of the instance kNN files: `prefix/knns/name` */
  knnPrefix: string;
  /** features (needed only to build a missing kNN file) */
  features?: FeatureCache;
  params: BasicProposalParams;
  /** recompute even when the outputs are up to date */
  force?: boolean;
  backend?: BackendChoice;
}

/** What a proposal generation produced. */
export interface ProposalResult {
  /** the parameter folder (holds `pred_labels.txt`) */
  folder: string;
  /** `<folder>/proposals` — what GCN-D and de-overlap read */
  proposalsDir: string;
  predLabels: string;
  numProposals: number;
  /** outputs were up to date and left alone */
  reused: boolean;
}

function reuse(folder: string, params: Record<string, unknown>, inputs: string[]): ProposalResult | null {
  const predLabels = join(folder, "pred_labels.txt");
  if (!isUpToDate(predLabels, params, inputs)) return null;
  const side = JSON.parse(Deno.readTextFileSync(sidecarPath(predLabels)));
  const proposalsDir = join(folder, "proposals");
  let files = 0;
  try {
    for (const e of Deno.readDirSync(proposalsDir)) if (e.name.endsWith(".npz")) files++;
  } catch {
    return null;
  }
  if (files !== 2 * side.num_proposals) return null;
  return { folder, proposalsDir, predLabels, numProposals: side.num_proposals, reused: true };
}

function invalidate(folder: string): void {
  Deno.mkdirSync(folder, { recursive: true });
  try {
    Deno.removeSync(sidecarPath(join(folder, "pred_labels.txt")));
  } catch { /* none yet */ }
}

/**
 * The original's `generate_basic_proposals` (reference §3.3): super vertices on the instance kNN graph, the
 * partition written to `pred_labels.txt` (N lines), clusters of at least `minsz` nodes saved as proposals.
 */
export async function generateBasicProposals(options: BasicProposalOptions): Promise<ProposalResult> {
  const p = options.params;
  checkParams(p, "proposals");
  const folder = join(options.oprefix, basicFolderName(p));
  const knnPath = join(options.knnPrefix, knnFileName(p.knnMethod, p.k));
  const params = { ...p, iter: 0 };
  if (!options.force) {
    try {
      Deno.statSync(knnPath);
      const hit = reuse(folder, params, [knnPath]);
      if (hit) {
        log(`proposals: ${folder} is up to date`);
        return hit;
      }
    } catch { /* kNN missing: build below */ }
  }
  const timings = new Timings();
  const knn = await timings.stepAsync("load_knn", () =>
    loadOrBuildKnn(knnPath, {
      features: options.features ?? new FeatureCache(),
      k: p.k,
      knnMethod: p.knnMethod,
      backend: options.backend,
    }));
  invalidate(folder);
  const sv = timings.step("super_vertex", () => superVertex(knn, { th: p.thKnn, step: p.thStep, maxSz: p.maxsz }));
  const predLabels = join(folder, "pred_labels.txt");
  timings.step("write_labels", () => writeLabels(predLabels, clusteringToLabels(sv.clustering)));
  const kept = filterClusters(clusterMembers(sv.clustering), p.minsz);
  const proposalsDir = join(folder, "proposals");
  const numProposals = timings.step("write_proposals", () => writeProposalFolder(proposalsDir, kept, knn));
  writeSidecar(predLabels, {
    stage: "proposals",
    params,
    inputs: [knnPath],
    timings,
    extra: {
      num_proposals: numProposals,
      num_clusters: sv.clustering.count,
      num_pairs: sv.pairs,
      rounds: sv.info.rounds,
      force_stopped: sv.info.forced,
    },
  });
  log(
    `proposals: ${folder}: ${sv.pairs} pairs, ${sv.clustering.count} clusters, ${numProposals} proposals ` +
      `(${timings.total().toFixed(2)} s)`,
  );
  return { folder, proposalsDir, predLabels, numProposals, reused: false };
}

// ---------------------------------------------------------------------------------------------------------------
// Iteration 1

/**
 * Mean feature of every cluster of a partition, clusters in order of first appearance (the original's
 * `lb2idxs.values()`), computed as numpy's `feats[idxs].mean(axis=0)` on float32: rows summed one after another in
 * float32, then divided in float32. Not re-normalised.
 */
export function superVertexFeatures(features: Features, partition: Clustering): Features {
  const { dim } = features;
  const x = features.data;
  const sum = new Float32Array(partition.count * dim);
  const cnt = new Int32Array(partition.count);
  for (let i = 0; i < partition.n; i++) {
    const c = partition.label[i]!;
    if (c < 0) continue;
    const o = c * dim, r = i * dim;
    for (let t = 0; t < dim; t++) sum[o + t] = sum[o + t]! + x[r + t]!;
    cnt[c]!++;
  }
  for (let c = 0; c < partition.count; c++) {
    const o = c * dim;
    for (let t = 0; t < dim; t++) sum[o + t] = sum[o + t]! / cnt[c]!;
  }
  return { data: sum, n: partition.count, dim };
}

/**
 * Members of each instance cluster listed super vertex by super vertex (ascending super-vertex id, then ascending
 * instance) — the order the original concatenates them in before `set()`.
 */
function membersBySuperVertex(inst: Clustering, svPartition: Clustering): ClusterMembers {
  const sizes = new Int32Array(inst.count + 1);
  for (let i = 0; i < inst.n; i++) if (inst.label[i]! >= 0) sizes[inst.label[i]! + 1]!++;
  for (let c = 0; c < inst.count; c++) sizes[c + 1]! += sizes[c]!;
  const offsets = sizes;
  const fill = offsets.slice(0, inst.count);
  const members = new Int32Array(offsets[inst.count]!);
  const sv = clusterMembers(svPartition);
  for (let s = 0; s < svPartition.count; s++) {
    for (let t = sv.offsets[s]!; t < sv.offsets[s + 1]!; t++) {
      const i = sv.members[t]!;
      const c = inst.label[i]!;
      if (c >= 0) members[fill[c]!++] = i;
    }
  }
  return { offsets, members };
}

/** Inputs of {@linkcode generateIterProposals}. */
export interface IterProposalOptions {
  /** the iter-0 (or previous iteration's) `pred_labels.txt`: its clusters are the super vertices */
  svLabels: string;
  /** folder of the instance kNN files: `prefix/knns/name` (the original's `sv_knn_prefix`) */
  svKnnPrefix: string;
  features: FeatureCache;
  params: IterProposalParams;
  force?: boolean;
  backend?: BackendChoice;
}

/**
 * The original's `generate_iter_proposals` (reference §3.4): super vertices = all clusters of `svLabels`
 * (singletons included) with mean features; kNN over them in `<svLabels folder>/knns/`; super-vertex clustering
 * with `svMaxsz`; clusters of ≥ `svMinsz` super vertices expanded to instances and written to `pred_labels.txt`
 * (N lines); those with `minsz ≤ size ≤ maxsz` instances saved as proposals with edges from the instance kNN.
 */
export async function generateIterProposals(options: IterProposalOptions): Promise<ProposalResult> {
  const p = options.params;
  checkIterParams(p, "iter proposals");
  const prevFolder = dirname(options.svLabels);
  const prev = parseProposalFolderName(prevFolder);
  const iter = prev.iter + 1;
  const folder = join(prevFolder, iterFolderName(p, iter));
  const knnInstPath = join(options.svKnnPrefix, knnFileName(prev.knnMethod, prev.k));
  const svKnnPath = join(prevFolder, "knns", knnFileName(p.knnMethod, p.k));
  const featPath = options.features.source?.path;
  if (!featPath) throw new LtcError("iter proposals: a features file is needed for super-vertex features");
  const params = { ...p, iter, features: { ...options.features.source, path: undefined } };
  const inputs = [options.svLabels, knnInstPath, featPath];
  if (!options.force) {
    try {
      const hit = reuse(folder, params, inputs);
      if (hit) {
        log(`proposals: ${folder} is up to date`);
        return hit;
      }
    } catch { /* inputs missing: reported below */ }
  }
  const timings = new Timings();
  const svPartition = labelsToClustering(readLabels(options.svLabels));
  const n = svPartition.n;
  const features = options.features.get();
  if (features.n !== n) {
    throw new LtcError(`${options.svLabels}: has ${n} labels but ${featPath} has ${features.n} rows`);
  }
  const knnInst = await timings.stepAsync(
    "load_knn",
    () => loadOrBuildKnn(knnInstPath, { features: options.features, k: prev.k, knnMethod: prev.knnMethod }),
  );
  // kNN over the super vertices, reused only if built from the same labels and features.
  const svParams = { k: p.k, knn_method: p.knnMethod, super_vertex_features: "mean" };
  let svKnn: KnnGraph;
  if (!options.force && isUpToDate(svKnnPath, svParams, [options.svLabels, featPath])) {
    svKnn = readKnn(svKnnPath);
  } else {
    const svFeat = timings.step("sv_features", () => superVertexFeatures(features, svPartition));
    if (p.k >= svFeat.n) {
      throw new LtcError(`${options.svLabels}: only ${svFeat.n} super vertices, need more than k = ${p.k}`);
    }
    // faiss IndexFlatIP ranks the raw means by inner product; nmslib's 'cosinesimil' by cosine of the means.
    if (p.knnMethod === "hnsw") l2NormalizeRows(svFeat.data, svFeat.n, svFeat.dim, `${options.svLabels} (means)`);
    const res = await buildKnn(svFeat, {
      k: p.k,
      method: p.knnMethod === "hnsw" ? "hnsw" : "exact",
      backend: options.backend,
      recallSample: 0,
      progress: false,
    });
    svKnn = res.graph;
    writeKnn(svKnnPath, svKnn);
    writeSidecar(svKnnPath, {
      stage: "knn",
      params: svParams,
      inputs: [options.svLabels, featPath],
      backend: res.backend,
      timings: res.timings,
    });
  }
  if (svKnn.n !== svPartition.count) {
    throw new LtcError(`${svKnnPath}: has ${svKnn.n} rows but ${options.svLabels} has ${svPartition.count} clusters`);
  }
  invalidate(folder);
  const sv = timings.step("super_vertex", () => superVertex(svKnn, { th: p.thKnn, step: p.thStep, maxSz: p.svMaxsz }));
  // Expand clusters of ≥ svMinsz super vertices to their instances.
  const svSizes = new Int32Array(sv.clustering.count);
  for (let s = 0; s < sv.clustering.n; s++) if (sv.clustering.label[s]! >= 0) svSizes[sv.clustering.label[s]!]!++;
  const instLabel = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const c = sv.clustering.label[svPartition.label[i]!]!;
    if (c >= 0 && svSizes[c]! >= p.svMinsz) instLabel[i] = c;
  }
  const inst = labelsToClustering(instLabel, -1);
  const predLabels = join(folder, "pred_labels.txt");
  timings.step("write_labels", () => writeLabels(predLabels, clusteringToLabels(inst)));
  const kept = filterClusters(membersBySuperVertex(inst, svPartition), p.minsz, p.maxsz);
  const proposalsDir = join(folder, "proposals");
  const numProposals = timings.step("write_proposals", () => writeProposalFolder(proposalsDir, kept, knnInst));
  writeSidecar(predLabels, {
    stage: "proposals",
    params,
    inputs,
    timings,
    extra: { num_proposals: numProposals, num_clusters: inst.count, num_super_vertices: svPartition.count },
  });
  log(`proposals: ${folder}: ${svPartition.count} super vertices, ${numProposals} proposals`);
  return { folder, proposalsDir, predLabels, numProposals, reused: false };
}

// ---------------------------------------------------------------------------------------------------------------
// Multi-scale driver

const SET_KEYS = ["knn_method", "k", "th_knn", "th_step", "minsz", "maxsz", "iter0", "iter1_params"] as const;
const ITER_KEYS = ["knn_method", "k", "th_knn", "th_step", "minsz", "maxsz", "sv_minsz", "sv_maxsz"] as const;

function num(obj: ConfigObject, key: string, where: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new LtcError(`${where}: '${key}' must be a number`);
  return v;
}

/**
 * Parse the `proposal_params` list of a config (the original's `proposal_params`: dicts with `k`, `th_knn`,
 * `th_step`, `minsz`, `maxsz`, `knn_method`, `iter0`, `iter1_params`). Iter-1 entries inherit `knn_method` and
 * `th_step` from their set unless given, and default to the original's iter-1 values (th_knn 0.4, minsz 3,
 * maxsz 500, sv_minsz 2). Unknown keys are errors.
 */
export function parseProposalParams(list: unknown, where: string): ProposalParamSet[] {
  if (!Array.isArray(list) || list.length === 0) throw new LtcError(`${where}: must be a non-empty list`);
  return list.map((raw, i) => {
    const w = `${where}[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new LtcError(`${w}: must be a mapping`);
    const o = raw as ConfigObject;
    checkKeys(o, SET_KEYS, w);
    const knnMethod = String(o.knn_method ?? "faiss") as KnnMethod;
    const set: ProposalParamSet = {
      knnMethod,
      k: num(o, "k", w, 80),
      thKnn: num(o, "th_knn", w),
      thStep: num(o, "th_step", w, 0.05),
      minsz: num(o, "minsz", w, 3),
      maxsz: num(o, "maxsz", w, 300),
      iter0: o.iter0 === undefined ? true : o.iter0 === true,
      iter1: [],
    };
    if (o.iter0 !== undefined && typeof o.iter0 !== "boolean") throw new LtcError(`${w}: 'iter0' must be true/false`);
    checkParams(set, w);
    const it = o.iter1_params ?? [];
    if (!Array.isArray(it)) throw new LtcError(`${w}: 'iter1_params' must be a list`);
    set.iter1 = it.map((r, j) => {
      const wj = `${w}.iter1_params[${j}]`;
      if (typeof r !== "object" || r === null || Array.isArray(r)) throw new LtcError(`${wj}: must be a mapping`);
      const q = r as ConfigObject;
      checkKeys(q, ITER_KEYS, wj);
      const ip: IterProposalParams = {
        knnMethod: String(q.knn_method ?? knnMethod) as KnnMethod,
        k: num(q, "k", wj),
        thKnn: num(q, "th_knn", wj, 0.4),
        thStep: num(q, "th_step", wj, set.thStep),
        minsz: num(q, "minsz", wj, 3),
        maxsz: num(q, "maxsz", wj, 500),
        svMinsz: num(q, "sv_minsz", wj, 2),
        svMaxsz: num(q, "sv_maxsz", wj),
      };
      checkIterParams(ip, wj);
      return ip;
    });
    if (!set.iter0 && set.iter1.length === 0) {
      throw new LtcError(`${w}: iter0 is false and there are no iter1_params, so this set yields no proposals`);
    }
    return set;
  });
}

/** Read a proposal config file (top-level keys: `proposal_params`, optional `description`). */
export function loadProposalConfig(path: string): ProposalParamSet[] {
  const cfg = loadYaml(path);
  checkKeys(cfg, ["proposal_params", "description"], path);
  return parseProposalParams(cfg.proposal_params, `${path}: proposal_params`);
}

/** Dataset and output locations of {@linkcode generateProposals}. */
export interface GenerateProposalsOptions {
  /** data folder with `features/`, `knns/` */
  prefix: string;
  name: string;
  /** output root (default `<prefix>/cluster_proposals`) */
  oprefix?: string;
  dim?: number;
  normalize?: boolean;
  center?: boolean;
  force?: boolean;
  backend?: BackendChoice;
}

/**
 * The original's multi-scale `generate_proposals(params, prefix, oprefix, name, dim)` (reference §3.5): for each
 * parameter set, iter-0 proposals (listed when `iter0`) and every iter-1 set on top of them. Returns the list of
 * `proposals/` folders in config order — the order GCN-D scores and de-overlap use.
 */
export async function generateProposals(
  sets: ProposalParamSet[],
  options: GenerateProposalsOptions,
): Promise<string[]> {
  if (sets.length === 0) throw new LtcError("proposals: the parameter list is empty");
  const features = new FeatureCache({
    path: join(options.prefix, "features", `${options.name}.bin`),
    dim: options.dim,
    normalize: options.normalize,
    center: options.center,
  });
  const knnPrefix = join(options.prefix, "knns", options.name);
  const oprefix = join(options.oprefix ?? join(options.prefix, "cluster_proposals"), options.name);
  const folders: string[] = [];
  for (const set of sets) {
    const base = await generateBasicProposals({
      oprefix,
      knnPrefix,
      features,
      params: set,
      force: options.force,
      backend: options.backend,
    });
    if (set.iter0) folders.push(base.proposalsDir);
    for (const ip of set.iter1) {
      const r = await generateIterProposals({
        svLabels: base.predLabels,
        svKnnPrefix: knnPrefix,
        features,
        params: ip,
        force: options.force,
        backend: options.backend,
      });
      folders.push(r.proposalsDir);
    }
  }
  return folders;
}

// ---------------------------------------------------------------------------------------------------------------
// CLI

const spec: CliSpec = {
  name: "proposals",
  summary: "Super-vertex cluster proposals (iteration 0, iteration 1 with --sv-labels, or a multi-scale --config), " +
    "written in the original's folder layout. Prints the proposals/ folder(s) on stdout.",
  options: {
    prefix: { type: "string", required: true, help: "data folder with features/ and knns/" },
    name: { type: "string", required: true, help: "dataset name (features/<name>.bin)" },
    oprefix: { type: "string", help: "output root (default <prefix>/cluster_proposals)" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    "no-normalize": { type: "boolean", help: "do not L2-normalise features" },
    center: { type: "boolean", help: "subtract the dataset mean before normalising" },
    "knn-method": { type: "string", choices: KNN_METHODS, default: "faiss", help: "kNN method (file name)" },
    k: { type: "int", help: "neighbours (default 80; 3 with --sv-labels)" },
    "th-knn": { type: "number", help: "similarity threshold (default 0.7; 0.6 with --sv-labels)" },
    "th-step": { type: "number", default: 0.05, help: "threshold step" },
    minsz: { type: "int", default: 3, help: "smallest proposal" },
    maxsz: { type: "int", help: "largest component (default 300; 500 with --sv-labels)" },
    "sv-labels": { type: "string", help: "iteration n pred_labels.txt: run iteration n+1 on its clusters" },
    "sv-minsz": { type: "int", default: 2, help: "fewest super vertices per iter-1 proposal" },
    "sv-maxsz": { type: "int", default: 5, help: "most super vertices per iter-1 component" },
    config: { type: "string", help: "YAML with a proposal_params list (multi-scale driver)" },
    force: { type: "boolean", help: "recompute even if the outputs are up to date" },
    backend: { type: "string", choices: ["auto", "webgpu", "cpu"], default: "auto", help: "kNN backend if built" },
  },
};

async function main(args: CliArgs): Promise<void> {
  const prefix = args.reqStr("prefix");
  const name = args.reqStr("name");
  const common = {
    prefix,
    name,
    oprefix: args.str("oprefix"),
    dim: args.num("dim"),
    normalize: !args.bool("no-normalize"),
    center: args.bool("center"),
    force: args.bool("force"),
    backend: args.str("backend") as BackendChoice,
  };
  const config = args.str("config");
  if (config) {
    for (const o of ["k", "th-knn", "maxsz", "sv-labels"]) {
      if (args.given(o)) throw new LtcError(`proposals: --${o} cannot be combined with --config`);
    }
    for (const f of await generateProposals(loadProposalConfig(config), common)) console.log(f);
    return;
  }
  const svLabels = args.str("sv-labels");
  const knnMethod = args.str("knn-method") as KnnMethod;
  const base = {
    knnMethod,
    k: args.optNum("k") ?? (svLabels ? 3 : 80),
    thKnn: args.optNum("th-knn") ?? (svLabels ? 0.6 : 0.7),
    thStep: args.num("th-step"),
    minsz: args.num("minsz"),
    maxsz: args.optNum("maxsz") ?? (svLabels ? 500 : 300),
  };
  const features = new FeatureCache({
    path: join(prefix, "features", `${name}.bin`),
    dim: common.dim,
    normalize: common.normalize,
    center: common.center,
  });
  const knnPrefix = join(prefix, "knns", name);
  if (svLabels) {
    const r = await generateIterProposals({
      svLabels,
      svKnnPrefix: knnPrefix,
      features,
      params: { ...base, svMinsz: args.num("sv-minsz"), svMaxsz: args.num("sv-maxsz") },
      force: common.force,
      backend: common.backend,
    });
    console.log(r.proposalsDir);
    return;
  }
  const r = await generateBasicProposals({
    oprefix: join(common.oprefix ?? join(prefix, "cluster_proposals"), name),
    knnPrefix,
    features,
    params: base,
    force: common.force,
    backend: common.backend,
  });
  console.log(r.proposalsDir);
}

if (import.meta.main) {
  await runMain(() => main(parseCli(spec, Deno.args)));
}
