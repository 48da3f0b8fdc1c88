/**
 * Infomap: clustering by minimising the two-level map equation (Rosvall & Bergstrom, PNAS 2008; Rosvall, Axelsson &
 * Bergstrom, EPJ ST 2009) on an undirected weighted graph, written from those published descriptions.
 *
 * Flow: a random walker on an undirected graph visits node α with probability p_α = s_α / S (s_α its strength, S the
 * sum of all strengths) and crosses each link in each direction with probability w / S. For a partition M, the exit
 * flow q_i of module i is the flow on its links leaving it, q = Σ q_i, and the codelength is
 *
 *     L(M) = q log q − 2 Σ_i q_i log q_i − Σ_α p_α log p_α + Σ_i (q_i + p_i) log(q_i + p_i)     (bits, p_i = Σ_{α∈i} p_α)
 *
 * Optimisation (one trial): (1) the core algorithm — visit nodes in random order and move each to the neighbouring
 * module (or a new empty one) that lowers L most, repeated until no move helps (at most `coreLoopLimit` sweeps; after
 * the first sweep only nodes next to a moved node are visited again), then aggregate the modules into nodes and
 * repeat until nothing merges; (2) tuning, alternated until neither step gains
 * more than `tuneThreshold` × the one-module codelength: fine-tuning restarts the core algorithm from the single nodes
 * placed in their current modules (single-node movements); coarse-tuning partitions each module on its own into
 * submodules and restarts the core algorithm from those submodules placed in their current modules (submodule
 * movements). Several trials keep the lowest codelength (first on ties).
 *
 * Everything runs on typed arrays (CSR rows, no per-edge objects) in raw weight units: L scales linearly when all
 * flows are multiplied by a constant, so dividing by S happens only when a codelength is reported.
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import { Rng } from "../shared/random.ts";

/**
 * A symmetric undirected weighted graph in CSR form: row i lists i's neighbours `indices[indptr[i] .. indptr[i+1])`
 * with link weights `weights[…]`. Every link {i, j} appears in both rows with the same weight; no self loops; weights
 * finite and ≥ 0; at most 2³¹ − 1 stored entries. Nodes without links are allowed (they stay singletons).
 */
export interface WeightedGraph {
  /** number of nodes */
  n: number;
  /** row offsets, length n + 1, `indptr[0] = 0`, non-decreasing */
  indptr: Int32Array;
  /** neighbour ids, 0..n−1 */
  indices: Int32Array;
  /** link weights, one per stored entry */
  weights: Float64Array;
}

/** Options of {@linkcode infomap}. */
export interface InfomapOptions {
  /** independent trials; the lowest codelength wins (default 1) */
  trials?: number;
  /** seed of the node-order shuffles (default 123) */
  seed?: number;
  /** most sweeps of the core algorithm over the nodes of one level (default 10) */
  coreLoopLimit?: number;
  /** a move, a core sweep or a trial must lower L by more than this many bits to count (default 1e-10) */
  minImprovement?: number;
  /** each tuning step must gain this fraction of the one-module codelength to go on (default 1e-5) */
  tuneThreshold?: number;
  /** most tuning steps per trial; 0 = until they stop gaining (default 0) */
  tuneIterationLimit?: number;
}

/** Result of {@linkcode infomap}. */
export interface InfomapResult {
  /** module of each node, dense 0..modules−1 numbered by each module's smallest node id */
  labels: Int32Array;
  /** number of modules (isolated nodes count as singleton modules) */
  modules: number;
  /** two-level codelength of `labels`, in bits */
  codelength: number;
  /** codelength of putting every node in one module (the flow entropy), in bits */
  oneModuleCodelength: number;
  /** best codelength of each trial, in bits */
  trialCodelengths: number[];
}

/** The network one level of the optimisation works on: nodes are leaves, submodules or modules. */
interface Net {
  n: number;
  indptr: Int32Array;
  indices: Int32Array;
  /** flow on each stored link, per direction (raw units) */
  w: Float64Array;
  /** node flow */
  flow: Float64Array;
  /** node exit flow: the sum of its row */
  exit: Float64Array;
  /** connected part the node belongs to: coarse-tuning optimises each module's sub-network on its own */
  comp: Int32Array;
  ncomp: number;
}

/** Settings and scratch space shared by every level of one run. */
interface Ctx {
  rng: Rng;
  coreLoopLimit: number;
  /** minimum improvement in raw units (bits × S) */
  minRaw: number;
  /** per-module link flow from the node being moved */
  acc: Float64Array;
  seen: Uint8Array;
  touched: Int32Array;
}

function plogp(x: number): number {
  return x > 0 ? x * Math.log2(x) : 0;
}

/**
 * Cluster `graph` by the two-level map equation. Deterministic for a given graph, options and seed.
 * @throws {LtcError} on a malformed graph or bad options
 */
export function infomap(graph: WeightedGraph, options: InfomapOptions = {}): InfomapResult {
  checkGraph(graph);
  const trials = options.trials ?? 1;
  const seed = options.seed ?? 123;
  const coreLoopLimit = options.coreLoopLimit ?? 10;
  const minImprovement = options.minImprovement ?? 1e-10;
  const tuneThreshold = options.tuneThreshold ?? 1e-5;
  const tuneIterationLimit = options.tuneIterationLimit ?? 0;
  checkOption(Number.isInteger(trials) && trials >= 1, "trials", trials, "a positive integer");
  checkOption(Number.isInteger(seed), "seed", seed, "an integer");
  checkOption(Number.isInteger(coreLoopLimit) && coreLoopLimit >= 1, "coreLoopLimit", coreLoopLimit, "≥ 1");
  checkOption(minImprovement >= 0 && Number.isFinite(minImprovement), "minImprovement", minImprovement, "≥ 0");
  checkOption(tuneThreshold >= 0 && Number.isFinite(tuneThreshold), "tuneThreshold", tuneThreshold, "≥ 0");
  checkOption(
    Number.isInteger(tuneIterationLimit) && tuneIterationLimit >= 0,
    "tuneIterationLimit",
    tuneIterationLimit,
    "a non-negative integer",
  );

  const leaf = leafNet(graph);
  const total = sum(leaf.flow);
  const nodeTerm = sumPlogp(leaf.flow);
  const oneRaw = plogp(total) - nodeTerm;
  const toBits = (raw: number) => (total > 0 ? raw / total : 0);
  if (!(total > 0)) {
    // No flow at all: every node is its own module and nothing is coded.
    const labels = new Int32Array(graph.n);
    for (let i = 0; i < graph.n; i++) labels[i] = i;
    return { labels, modules: graph.n, codelength: 0, oneModuleCodelength: 0, trialCodelengths: [0] };
  }
  const minRaw = minImprovement * total;
  const tuneRaw = tuneThreshold * oneRaw;
  let best: Int32Array | undefined;
  let bestRaw = Infinity;
  const trialCodelengths: number[] = [];
  for (let t = 0; t < trials; t++) {
    const ctx: Ctx = {
      rng: new Rng(seed, 0x1f0a9, t),
      coreLoopLimit,
      minRaw,
      acc: new Float64Array(leaf.n),
      seen: new Uint8Array(leaf.n),
      touched: new Int32Array(leaf.n),
    };
    const { labels, raw } = runTrial(leaf, ctx, { tuneRaw, tuneIterationLimit, nodeTerm });
    trialCodelengths.push(toBits(raw));
    if (raw < bestRaw - minRaw) best = labels, bestRaw = raw;
  }
  let labels = best!;
  // The one-module solution (nodes with flow together, the rest alone) wins when it codes shorter.
  if (oneRaw < bestRaw - minRaw) {
    labels = new Int32Array(leaf.n);
    for (let i = 0, next = 1; i < leaf.n; i++) labels[i] = leaf.flow[i]! > 0 ? 0 : next++;
    bestRaw = oneRaw;
  }
  const dense = denseByFirst(labels);
  return {
    labels: dense.labels,
    modules: dense.count,
    codelength: toBits(bestRaw),
    oneModuleCodelength: toBits(oneRaw),
    trialCodelengths,
  };
}

/**
 * The two-level codelength, in bits, of partition `labels` (any integers, one per node) of `graph` — the map
 * equation above evaluated directly, without optimising.
 * @throws {LtcError} on a malformed graph or a label vector of the wrong length
 */
export function mapEquation(graph: WeightedGraph, labels: ArrayLike<number>): number {
  checkGraph(graph);
  if (labels.length !== graph.n) {
    throw new LtcError(`mapEquation: ${labels.length} labels for a graph of ${graph.n} nodes`);
  }
  const leaf = leafNet(graph);
  const total = sum(leaf.flow);
  if (!(total > 0)) return 0;
  const ids = new Map<number, number>();
  const dense = new Int32Array(graph.n);
  for (let i = 0; i < graph.n; i++) {
    let id = ids.get(labels[i]!);
    if (id === undefined) ids.set(labels[i]!, id = ids.size);
    dense[i] = id;
  }
  return rawCodelength(leaf, dense, sumPlogp(leaf.flow)) / total;
}

/** Options of {@linkcode knnSimilarityGraph}. */
export interface KnnSimilarityGraphOptions {
  /** keep kNN entries with similarity 1 − dist strictly above this */
  thSim: number;
}

/**
 * The undirected graph of a kNN list: every entry i → j (j ≠ −1, j ≠ i) with similarity `1 − dist > thSim` becomes
 * a link {i, j} weighted by that similarity, and a pair listed from both sides (or twice in a row) gets the sum of its
 * entries — exactly how the reference Infomap reads an undirected link list holding both directions (measured: it
 * sums duplicate links). Row i lists its own kNN entries in kNN order, then those pointing at it by source row.
 * @throws {LtcError} on a bad threshold or when the graph would exceed 2³¹ − 1 stored entries
 */
export function knnSimilarityGraph(knn: KnnGraph, options: KnnSimilarityGraphOptions): WeightedGraph {
  const { n, k, nbrs, dists } = knn;
  const th = options.thSim;
  if (!Number.isFinite(th)) throw new LtcError(`knnSimilarityGraph: thSim must be a finite number, got ${th}`);
  // Pass 1: count kept entries pointing at each node, to lay the reversed entries out in CSR.
  const inPtr = new Int32Array(n + 1);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    for (let t = i * k; t < i * k + k; t++) {
      const j = nbrs[t]!;
      if (j < 0 || j === i || !(1 - dists[t]! > th)) continue;
      inPtr[j + 1]!++;
      kept++;
    }
  }
  if (2 * kept > 0x7fffffff) throw new LtcError(`knnSimilarityGraph: ${kept} links exceed the CSR's int32 offsets`);
  for (let i = 0; i < n; i++) inPtr[i + 1]! += inPtr[i]!;
  // Reversed entries keep the float32 distance, so their similarity is recomputed exactly as for the forward ones.
  const inSrc = new Int32Array(kept);
  const inDist = new Float32Array(kept);
  const fill = inPtr.slice(0, n);
  for (let i = 0; i < n; i++) {
    for (let t = i * k; t < i * k + k; t++) {
      const j = nbrs[t]!;
      if (j < 0 || j === i || !(1 - dists[t]! > th)) continue;
      const at = fill[j]!++;
      inSrc[at] = i;
      inDist[at] = dists[t]!;
    }
  }
  // Pass 2 counts each row's distinct neighbours, pass 3 writes them summing duplicates.
  const slot = new Int32Array(n).fill(-1);
  const indptr = new Int32Array(n + 1);
  let indices = new Int32Array(0), weights = new Float64Array(0);
  for (const write of [false, true]) {
    slot.fill(-1);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const start = m; // a neighbour whose slot lies at or after `start` was met before in this row
      for (let t = i * k; t < i * k + k; t++) {
        const j = nbrs[t]!, s = 1 - dists[t]!;
        if (j < 0 || j === i || !(s > th)) continue;
        if (slot[j]! >= start) {
          if (write) weights[slot[j]!]! += s;
          continue;
        }
        slot[j] = m;
        if (write) indices[m] = j, weights[m] = s;
        m++;
      }
      for (let p = inPtr[i]!; p < inPtr[i + 1]!; p++) {
        const j = inSrc[p]!, s = 1 - inDist[p]!;
        if (slot[j]! >= start) {
          if (write) weights[slot[j]!]! += s;
          continue;
        }
        slot[j] = m;
        if (write) indices[m] = j, weights[m] = s;
        m++;
      }
      indptr[i + 1] = m;
    }
    if (!write) indices = new Int32Array(m), weights = new Float64Array(m);
  }
  return { n, indptr, indices, weights };
}

// ---------------------------------------------------------------------------------------------------------------
// Checks

function checkOption(ok: boolean, name: string, value: unknown, what: string): void {
  if (!ok) throw new LtcError(`infomap: option ${name} must be ${what}, got ${value}`);
}

/** One clear error for a malformed graph; symmetry is checked through equal row and column sums. */
function checkGraph(g: WeightedGraph): void {
  const bad = (problem: string) => new LtcError(`infomap: graph ${problem}`);
  const { n, indptr, indices, weights } = g;
  if (!(Number.isInteger(n) && n >= 0)) throw bad(`has node count ${n}, expected a non-negative integer`);
  if (!(indptr instanceof Int32Array) || indptr.length !== n + 1) {
    throw bad(`indptr must be an Int32Array of length n + 1 = ${n + 1}`);
  }
  if (!(indices instanceof Int32Array)) throw bad("indices must be an Int32Array");
  if (!(weights instanceof Float64Array)) throw bad("weights must be a Float64Array");
  if (indptr[0] !== 0) throw bad(`indptr[0] is ${indptr[0]}, expected 0`);
  if (indices.length !== weights.length || indptr[n] !== indices.length) {
    throw bad(`has indptr[n] = ${indptr[n]}, ${indices.length} indices and ${weights.length} weights; all must agree`);
  }
  const rowSum = new Float64Array(n), colSum = new Float64Array(n);
  let maxSum = 0;
  for (let i = 0; i < n; i++) if (indptr[i + 1]! < indptr[i]!) throw bad(`indptr decreases at row ${i}`);
  for (let i = 0; i < n; i++) {
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
      const j = indices[p]!, w = weights[p]!;
      if (!(j >= 0 && j < n)) throw bad(`row ${i} lists neighbour ${j}, outside 0..${n - 1}`);
      if (j === i) throw bad(`row ${i} lists a self loop`);
      if (!(w >= 0 && w < Infinity)) throw bad(`row ${i} has link weight ${w} (must be finite and ≥ 0)`);
      rowSum[i]! += w;
      colSum[j]! += w;
    }
    maxSum = Math.max(maxSum, rowSum[i]!);
  }
  for (let i = 0; i < n; i++) {
    if (Math.abs(rowSum[i]! - colSum[i]!) > 1e-9 * maxSum) {
      throw bad(`is not symmetric: row ${i} sums to ${rowSum[i]} but column ${i} to ${colSum[i]}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The optimiser

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

function sumPlogp(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += plogp(a[i]!);
  return s;
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** The input graph as the bottom level: its arrays are used in place; flow = exit = strength. */
function leafNet(g: WeightedGraph): Net {
  const flow = new Float64Array(g.n);
  for (let i = 0; i < g.n; i++) {
    let s = 0;
    for (let p = g.indptr[i]!; p < g.indptr[i + 1]!; p++) s += g.weights[p]!;
    flow[i] = s;
  }
  return {
    n: g.n,
    indptr: g.indptr,
    indices: g.indices,
    w: g.weights,
    flow,
    exit: flow,
    comp: new Int32Array(g.n),
    ncomp: 1,
  };
}

/** Codelength in raw units of a dense partition of the leaf net (all one component). */
function rawCodelength(net: Net, labels: Int32Array, nodeTerm: number): number {
  const n = net.n;
  let m = 0;
  for (let i = 0; i < n; i++) if (labels[i]! + 1 > m) m = labels[i]! + 1;
  const modFlow = new Float64Array(m), modExit = new Float64Array(m);
  for (let v = 0; v < n; v++) {
    const a = labels[v]!;
    modFlow[a]! += net.flow[v]!;
    modExit[a]! += net.exit[v]!;
    for (let p = net.indptr[v]!; p < net.indptr[v + 1]!; p++) {
      if (labels[net.indices[p]!] === a) modExit[a]! -= net.w[p]!;
    }
  }
  let q = 0, exitTerm = 0, flowTerm = 0;
  for (let a = 0; a < m; a++) {
    const e = Math.max(0, modExit[a]!);
    q += e;
    exitTerm += plogp(e);
    flowTerm += plogp(e + modFlow[a]!);
  }
  return plogp(q) - 2 * exitTerm - nodeTerm + flowTerm;
}

/** One trial: the core algorithm from single nodes, then fine- and coarse-tuning alternately. */
function runTrial(
  leaf: Net,
  ctx: Ctx,
  opts: { tuneRaw: number; tuneIterationLimit: number; nodeTerm: number },
): { labels: Int32Array; raw: number } {
  let labels = partitionLevels(leaf, undefined, ctx);
  let raw = rawCodelength(leaf, labels, opts.nodeTerm);
  let fine = true;
  let idle = 0; // consecutive tuning steps that gained too little
  for (let iter = 0; opts.tuneIterationLimit === 0 || iter < opts.tuneIterationLimit; iter++) {
    const cand = fine ? partitionLevels(leaf, labels, ctx) : coarseTune(leaf, labels, ctx);
    const candRaw = rawCodelength(leaf, cand, opts.nodeTerm);
    const gain = raw - candRaw;
    if (gain > ctx.minRaw) labels = cand, raw = candRaw;
    idle = gain > opts.tuneRaw ? 0 : idle + 1;
    if (idle >= 2) break; // neither kind of tuning helps any more
    fine = !fine;
  }
  return { labels, raw };
}

/**
 * Submodule movements: partition every module's own sub-network (its internal links only) into submodules, then run
 * the core algorithm on the submodules, each starting in the module it came from.
 */
function coarseTune(leaf: Net, labels: Int32Array, ctx: Ctx): Int32Array {
  const sub = partitionLevels(restrictToModules(leaf, labels), undefined, ctx);
  let count = 0;
  for (let v = 0; v < leaf.n; v++) if (sub[v]! + 1 > count) count = sub[v]! + 1;
  const parent = new Int32Array(count);
  for (let v = 0; v < leaf.n; v++) parent[sub[v]!] = labels[v]!;
  const subNet = aggregate(leaf, sub, count);
  const top = partitionLevels(subNet, parent, ctx);
  const out = new Int32Array(leaf.n);
  for (let v = 0; v < leaf.n; v++) out[v] = top[sub[v]!]!;
  return out;
}

/** The leaf net with only the links inside each module; each module is its own component with its own flow. */
function restrictToModules(leaf: Net, labels: Int32Array): Net {
  const n = leaf.n;
  let count = 0;
  const indptr = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) {
    const a = labels[v]!;
    for (let p = leaf.indptr[v]!; p < leaf.indptr[v + 1]!; p++) if (labels[leaf.indices[p]!] === a) count++;
    indptr[v + 1] = count;
  }
  const indices = new Int32Array(count), w = new Float64Array(count), flow = new Float64Array(n);
  let m = 0, ncomp = 0;
  for (let v = 0; v < n; v++) {
    const a = labels[v]!;
    if (a + 1 > ncomp) ncomp = a + 1;
    let s = 0;
    for (let p = leaf.indptr[v]!; p < leaf.indptr[v + 1]!; p++) {
      const u = leaf.indices[p]!;
      if (labels[u] !== a) continue;
      indices[m] = u;
      w[m++] = leaf.w[p]!;
      s += leaf.w[p]!;
    }
    flow[v] = s;
  }
  return { n, indptr, indices, w, flow, exit: flow, comp: labels, ncomp };
}

/**
 * The core algorithm with aggregation: move nodes between modules until no move helps, merge each module into one
 * node, and repeat on the merged network until nothing merges. `initial` places the nodes in modules to start from
 * (ids < net.n); default each alone. Returns each node's final module, dense.
 */
function partitionLevels(net: Net, initial: Int32Array | undefined, ctx: Ctx): Int32Array {
  let cur = net;
  const top = identity(net.n); // net node → node of `cur`
  let module = initial ? initial.slice() : identity(net.n);
  for (let level = 0;; level++) {
    const moves = coreLoops(cur, module, ctx);
    // A level that starts from single nodes and moves none has found the modules; a given start is always merged.
    if (moves === 0 && !(level === 0 && initial)) break;
    const { labels, count } = denseByFirst(module);
    for (let v = 0; v < net.n; v++) top[v] = labels[top[v]!]!;
    if (count === cur.n) break;
    cur = aggregate(cur, labels, count);
    module = identity(count);
  }
  return denseByFirst(top).labels;
}

/**
 * Up to `coreLoopLimit` sweeps over the nodes in fresh random orders, moving each to the module that lowers the
 * codelength most; stops early when a sweep moves nothing or gains too little. `module` is updated in place.
 */
function coreLoops(net: Net, module: Int32Array, ctx: Ctx): number {
  const { n, indptr, indices, w, flow, exit, comp } = net;
  const { acc, seen, touched, minRaw } = ctx;
  const modFlow = new Float64Array(n), modExit = new Float64Array(n), modSize = new Int32Array(n);
  for (let v = 0; v < n; v++) {
    const a = module[v]!;
    modFlow[a]! += flow[v]!;
    modExit[a]! += exit[v]!;
    modSize[a]!++;
    for (let p = indptr[v]!; p < indptr[v + 1]!; p++) if (module[indices[p]!] === a) modExit[a]! -= w[p]!;
  }
  const free = new Int32Array(n);
  let nFree = 0;
  for (let a = n - 1; a >= 0; a--) if (modSize[a] === 0) free[nFree++] = a;
  const compExit = new Float64Array(net.ncomp);
  let exitTerm = 0, flowTerm = 0;
  for (let a = 0; a < n; a++) {
    if (modSize[a] === 0) continue;
    if (modExit[a]! < 0) modExit[a] = 0; // rounding
    exitTerm += plogp(modExit[a]!);
    flowTerm += plogp(modExit[a]! + modFlow[a]!);
  }
  for (let v = 0; v < n; v++) {
    const a = module[v]!;
    // Each module's exit counted once, at its first member met here.
    if (seen[a] === 0) seen[a] = 1, compExit[comp[v]!]! += modExit[a]!;
  }
  for (let v = 0; v < n; v++) seen[module[v]!] = 0;
  const codelength = () => {
    let s = 0;
    for (let c = 0; c < compExit.length; c++) s += plogp(compExit[c]!);
    return s - 2 * exitTerm + flowTerm;
  };

  // plogp of each module's exit and of its exit + flow, kept current: most candidates need only the new values.
  const exitLog = new Float64Array(n), totalLog = new Float64Array(n);
  for (let a = 0; a < n; a++) exitLog[a] = plogp(modExit[a]!), totalLog[a] = plogp(modExit[a]! + modFlow[a]!);
  // After the first sweep only nodes next to a move are visited again: elsewhere the best move rarely changes.
  let dirty = new Uint8Array(n).fill(1), nextDirty = new Uint8Array(n);
  const order = identity(n);
  let totalMoves = 0;
  let before = codelength();
  for (let loop = 0; loop < ctx.coreLoopLimit; loop++) {
    ctx.rng.shuffle(order);
    let moves = 0;
    for (let o = 0; o < n; o++) {
      const v = order[o]!;
      const start = indptr[v]!, end = indptr[v + 1]!;
      if (start === end || dirty[v] === 0) continue;
      const a = module[v]!;
      // Link flow from v to each neighbouring module.
      let nTouched = 0;
      for (let p = start; p < end; p++) {
        const b = module[indices[p]!]!;
        if (seen[b] === 0) seen[b] = 1, acc[b] = 0, touched[nTouched++] = b;
        acc[b]! += w[p]!;
      }
      const fv = flow[v]!, ev = exit[v]!, c = comp[v]!;
      const q = compExit[c]!;
      const plogpQ = plogp(q);
      // Leaving a: the links from v into a become exits of a, v's other exits stop being a's.
      const toA = seen[a] === 1 ? acc[a]! : 0;
      const alone = modSize[a] === 1;
      const qA = modExit[a]!, pA = modFlow[a]!;
      const qA2 = alone ? 0 : Math.max(0, qA - ev + 2 * toA);
      const pA2 = alone ? 0 : pA - fv;
      const exitLogA2 = plogp(qA2), totalLogA2 = plogp(qA2 + pA2);
      const dExitA = exitLogA2 - exitLog[a]!;
      const dTotalA = totalLogA2 - totalLog[a]!;
      const qRest = q + qA2 - qA;
      let bestDelta = 0, bestB = a, bestQB2 = 0;
      for (let t = 0; t < nTouched; t++) {
        const b = touched[t]!;
        if (b === a) continue;
        const qB = modExit[b]!;
        const qB2 = Math.max(0, qB + ev - 2 * acc[b]!);
        const delta = plogp(qRest + qB2 - qB) - plogpQ -
          2 * (dExitA + plogp(qB2) - exitLog[b]!) +
          dTotalA + plogp(qB2 + modFlow[b]! + fv) - totalLog[b]!;
        if (delta < bestDelta) bestDelta = delta, bestB = b, bestQB2 = qB2;
      }
      if (!alone) {
        // A module of its own (one is always free: fewer modules than nodes are in use).
        const delta = plogp(qRest + ev) - plogpQ - 2 * (dExitA + plogp(ev)) + dTotalA + plogp(ev + fv);
        if (delta < bestDelta) bestDelta = delta, bestB = -1, bestQB2 = ev;
      }
      for (let t = 0; t < nTouched; t++) seen[touched[t]!] = 0;
      if (!(bestDelta < -minRaw)) continue;
      if (bestB === -1) bestB = free[--nFree]!;
      const qB = modExit[bestB]!, pB2 = modFlow[bestB]! + fv;
      const exitLogB2 = plogp(bestQB2), totalLogB2 = plogp(bestQB2 + pB2);
      exitTerm += dExitA + exitLogB2 - exitLog[bestB]!;
      flowTerm += dTotalA + totalLogB2 - totalLog[bestB]!;
      compExit[c] = qRest + bestQB2 - qB;
      modExit[a] = qA2, modFlow[a] = pA2, modSize[a]!--, exitLog[a] = exitLogA2, totalLog[a] = totalLogA2;
      modExit[bestB] = bestQB2, modFlow[bestB] = pB2, modSize[bestB]!++;
      exitLog[bestB] = exitLogB2, totalLog[bestB] = totalLogB2;
      if (modSize[a] === 0) free[nFree++] = a;
      module[v] = bestB;
      moves++;
      nextDirty[v] = 1;
      for (let p = start; p < end; p++) nextDirty[indices[p]!] = 1;
    }
    [dirty, nextDirty] = [nextDirty, dirty];
    nextDirty.fill(0);
    totalMoves += moves;
    const after = codelength();
    if (moves === 0 || before - after <= minRaw) break;
    before = after;
  }
  return totalMoves;
}

/** Merge each module (`labels`, dense 0..count−1) of `net` into one node; links between modules are summed. */
function aggregate(net: Net, labels: Int32Array, count: number): Net {
  const n = net.n;
  const memberPtr = new Int32Array(count + 1);
  for (let v = 0; v < n; v++) memberPtr[labels[v]! + 1]!++;
  for (let a = 0; a < count; a++) memberPtr[a + 1]! += memberPtr[a]!;
  const members = new Int32Array(n);
  const fill = memberPtr.slice(0, count);
  for (let v = 0; v < n; v++) members[fill[labels[v]!]!++] = v;
  const flow = new Float64Array(count), exit = new Float64Array(count), comp = new Int32Array(count);
  const indptr = new Int32Array(count + 1);
  let indices = new Int32Array(net.indices.length), w = new Float64Array(net.indices.length);
  const rowOf = new Int32Array(count).fill(-1), slot = new Int32Array(count);
  let m = 0;
  for (let a = 0; a < count; a++) {
    comp[a] = net.comp[members[memberPtr[a]!]!]!;
    let f = 0;
    for (let t = memberPtr[a]!; t < memberPtr[a + 1]!; t++) {
      const v = members[t]!;
      f += net.flow[v]!;
      for (let p = net.indptr[v]!; p < net.indptr[v + 1]!; p++) {
        const b = labels[net.indices[p]!]!;
        if (b === a) continue;
        if (rowOf[b] !== a) {
          rowOf[b] = a, slot[b] = m, indices[m] = b, w[m] = net.w[p]!, m++;
        } else w[slot[b]!]! += net.w[p]!;
      }
    }
    flow[a] = f;
    let e = 0;
    for (let p = indptr[a]!; p < m; p++) e += w[p]!;
    exit[a] = e;
    indptr[a + 1] = m;
  }
  indices = indices.slice(0, m), w = w.slice(0, m);
  return { n: count, indptr, indices, w, flow, exit, comp, ncomp: net.ncomp };
}

/** Relabel to 0..count−1 in order of each label's first occurrence. */
function denseByFirst(labels: Int32Array): { labels: Int32Array; count: number } {
  let max = -1;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > max) max = labels[i]!;
  const map = new Int32Array(max + 1).fill(-1);
  const out = new Int32Array(labels.length);
  let count = 0;
  for (let i = 0; i < labels.length; i++) {
    const a = labels[i]!;
    if (map[a] === -1) map[a] = count++;
    out[i] = map[a]!;
  }
  return { labels: out, count };
}
