/**
 * Graph building blocks behind the proposal stage and the graph baselines (reference §2.3, §3.1–3.2, §9.2):
 * union-find, the original's `filter_knns` (undirected kNN pairs above a similarity threshold), constrained
 * connected components with a maximum size and the dynamic-threshold propagation of
 * `graph_clustering_dynamic_th` / CDP's `graph_propagation`, plus the `write_meta` relabelling of a clustering.
 *
 * Everything works on typed arrays (pairs as parallel `Int32Array`s, scores as `Float64Array`), never on per-node
 * objects, so part1 scale (584K nodes × 80 neighbours) takes seconds.
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import type { KnnGraph } from "../shared/knn_file.ts";

/** Disjoint sets over `0..n-1` with union by size and path halving. */
export class UnionFind {
  readonly parent: Int32Array;
  readonly size: Int32Array;

  /** @param n number of elements, each its own set */
  constructor(n: number) {
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }

  /** Representative of `x`'s set. */
  find(x: number): number {
    const p = this.parent;
    while (p[x]! !== x) {
      const g = p[p[x]!]!;
      p[x] = g;
      x = g;
    }
    return x;
  }

  /** Merge the sets of `a` and `b`; returns whether they were distinct. */
  union(a: number, b: number): boolean {
    let ra = this.find(a), rb = this.find(b);
    if (ra === rb) return false;
    if (this.size[ra]! < this.size[rb]!) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra]! += this.size[rb]!;
    return true;
  }

  /** Make `x` a singleton again (only valid when nothing else points at it, i.e. on a fresh round). */
  reset(x: number): void {
    this.parent[x] = x;
    this.size[x] = 1;
  }
}

/** Undirected weighted pairs `a[t] < b[t]` with `score[t]`. */
export interface ScoredPairs {
  a: Int32Array;
  b: Int32Array;
  score: Float64Array;
}

/** Options of {@linkcode filterKnns}. */
export interface FilterKnnsOptions {
  /** keep `sim > th` instead of `sim ≥ th` (CDP's `sample()` is strict; proposals are not) */
  strict?: boolean;
}

/**
 * The original's `filter_knns(knns, k, th)`: every kNN entry (i, j) with `j ≠ −1`, `j ≠ i` and similarity
 * `1 − dist ≥ th` (computed in float64 as the original does), made undirected (smaller id first) and de-duplicated.
 * A pair seen from both rows keeps the score of its first occurrence in row-major order — from the smaller row when
 * that row lists it above the threshold, else from the other row. Pairs come out grouped by their smaller id.
 * (A counting sort by smaller id; measured faster than looking pairs up in the neighbour's row, whose random
 * row accesses dominate when neighbour ids are scattered.)
 */
export function filterKnns(knn: KnnGraph, th: number, options: FilterKnnsOptions = {}): ScoredPairs {
  const { n, k, nbrs, dists } = knn;
  const strict = options.strict ?? false;
  // Pass 1: flag passing entries and count them per smaller endpoint (similarity first: most entries fail it).
  const keep = new Uint8Array(n * k);
  const start = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const row = i * k;
    for (let t = row; t < row + k; t++) {
      const s = 1 - dists[t]!;
      if (strict ? !(s > th) : !(s >= th)) continue;
      const j = nbrs[t]!;
      if (j < 0 || j === i) continue;
      keep[t] = 1;
      start[(j < i ? j : i) + 1]!++;
      total++;
    }
  }
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  // Pass 2: bucket by smaller endpoint, stable in row-major order (so the first occurrence comes first).
  const hi = new Int32Array(total);
  const dist = new Float32Array(total);
  const fill = start.slice(0, n);
  for (let i = 0; i < n; i++) {
    const row = i * k;
    for (let t = row; t < row + k; t++) {
      if (!keep[t]) continue;
      const j = nbrs[t]!;
      const at = j < i ? fill[j]!++ : fill[i]!++;
      hi[at] = j < i ? i : j;
      dist[at] = dists[t]!;
    }
  }
  // Pass 3: keep the first occurrence of each pair.
  const stamp = new Int32Array(n).fill(-1);
  const a = new Int32Array(total), b = new Int32Array(total), score = new Float64Array(total);
  let m = 0;
  for (let lo = 0; lo < n; lo++) {
    for (let t = start[lo]!; t < start[lo + 1]!; t++) {
      const h = hi[t]!;
      if (stamp[h] === lo) continue;
      stamp[h] = lo;
      a[m] = lo;
      b[m] = h;
      score[m] = 1 - dist[t]!;
      m++;
    }
  }
  return { a: a.slice(0, m), b: b.slice(0, m), score: score.slice(0, m) };
}

/** How duplicate pairs combine their scores (the original's `pool`): last wins, running mean, or maximum. */
export type ScorePool = "last" | "avg" | "max";

/**
 * Make arbitrary scored edges undirected and unique, combining duplicates like the original's `score_dict`
 * (`pool=None` → the last assignment wins; `'avg'`; `'max'`). Self loops are an error (the original never feeds
 * them). Output pairs are grouped by their smaller id, in order of first occurrence within a group.
 */
export function uniquePairs(
  e1: ArrayLike<number>,
  e2: ArrayLike<number>,
  options: { score: ArrayLike<number>; pool?: ScorePool; n?: number },
): ScoredPairs {
  const len = e1.length;
  const { score } = options;
  if (e2.length !== len || score.length !== len) {
    throw new LtcError(`edge lists differ in length: ${len}, ${e2.length} endpoints and ${score.length} scores`);
  }
  let n = options.n ?? 0;
  for (let t = 0; t < len; t++) {
    const u = e1[t]!, v = e2[t]!;
    if (!Number.isInteger(u) || !Number.isInteger(v) || u < 0 || v < 0) {
      throw new LtcError(`edge ${t} has a bad endpoint (${u}, ${v})`);
    }
    if (u === v) throw new LtcError(`edge ${t} is a self loop on node ${u}`);
    if (Number.isNaN(score[t]!)) throw new LtcError(`edge ${t} has a NaN score`);
    n = Math.max(n, u + 1, v + 1);
  }
  const start = new Int32Array(n + 1);
  for (let t = 0; t < len; t++) start[Math.min(e1[t]!, e2[t]!) + 1]!++;
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  const order = new Int32Array(len);
  const fill = start.slice(0, n);
  for (let t = 0; t < len; t++) order[fill[Math.min(e1[t]!, e2[t]!)]!++] = t;
  const pool = options.pool ?? "last";
  const slot = new Int32Array(n).fill(-1);
  const stampLo = new Int32Array(n).fill(-1);
  const a = new Int32Array(len), b = new Int32Array(len), out = new Float64Array(len);
  const count = new Float64Array(pool === "avg" ? len : 0);
  let m = 0;
  for (let lo = 0; lo < n; lo++) {
    for (let p = start[lo]!; p < start[lo + 1]!; p++) {
      const t = order[p]!;
      const h = Math.max(e1[t]!, e2[t]!);
      const s = score[t]!;
      if (stampLo[h] !== lo) {
        stampLo[h] = lo;
        slot[h] = m;
        a[m] = lo;
        b[m] = h;
        out[m] = s;
        if (pool === "avg") count[m] = 1;
        m++;
        continue;
      }
      const q = slot[h]!;
      if (pool === "last") out[q] = s;
      else if (pool === "max") out[q] = Math.max(out[q]!, s);
      else {
        // The original's running mean: (old * cnt + new) / (cnt + 1).
        out[q] = (out[q]! * count[q]! + s) / (count[q]! + 1);
        count[q]!++;
      }
    }
  }
  return { a: a.slice(0, m), b: b.slice(0, m), score: out.slice(0, m) };
}

/**
 * A clustering of some of the nodes `0..n-1`: `label[i]` is node i's cluster (−1 = in no cluster), and clusters
 * are numbered 0..count-1 by their smallest member — the order `write_meta` would give them.
 */
export interface Clustering {
  n: number;
  label: Int32Array;
  count: number;
}

/** Options of {@linkcode graphPropagation}. */
export interface GraphPropagationOptions {
  /** components larger than this are split by raising the threshold */
  maxSz: number;
  /** threshold increment factor: th ← th + (1 − th)·step (default 0.05) */
  step?: number;
  /** rounds after the first before force-stopping (default 100) */
  maxIter?: number;
  /** number of nodes (default: largest endpoint + 1) */
  n?: number;
  /** called once per round with the number of nodes still unresolved */
  onRound?: (round: number, remain: number, th: number) => void;
}

/** What {@linkcode graphPropagation} did, for logs and sidecars. */
export interface PropagationInfo {
  /** threshold rounds run after the unthresholded first pass */
  rounds: number;
  /** nodes put into the force-stopped remainder (0 when none) */
  forced: number;
  /** threshold of the last round */
  lastTh: number;
}

/**
 * `graph_clustering_dynamic_th(edges, score, max_sz, step, max_iter)` — identical to CDP's `graph_propagation`
 * (reference §3.2): connected components over all given edges; components of at most `maxSz` nodes are final, the
 * nodes of larger ones are re-clustered using only edges with score ≥ th, where th starts at the minimum edge score
 * and rises by (1 − th)·step each round. After `maxIter` rounds the nodes still unresolved form one last cluster
 * ("force stopping"). Nodes on no edge are in no cluster (label −1); nodes left without edges inside an oversized
 * component become singleton clusters, as in the original. Pairs must be unique (see {@linkcode uniquePairs}).
 *
 * The original finds components by BFS over Python sets and may discard a component part-way; the outcome as a set
 * partition is the same as here (every node of an oversized component ends in the remainder), only the cluster order
 * differs, which this function fixes to smallest-member order.
 */
export function graphPropagation(
  pairs: ScoredPairs,
  options: GraphPropagationOptions,
): { clustering: Clustering; info: PropagationInfo } {
  const { a, b, score } = pairs;
  const m = a.length;
  const step = options.step ?? 0.05;
  const maxIter = options.maxIter ?? 100;
  const { maxSz } = options;
  if (!(maxSz >= 1)) throw new LtcError(`graph propagation: max size must be ≥ 1, got ${maxSz}`);
  let n = options.n ?? 0;
  for (let t = 0; t < m; t++) n = Math.max(n, a[t]! + 1, b[t]! + 1);
  const label = new Int32Array(n).fill(-1);
  const info: PropagationInfo = { rounds: 0, forced: 0, lastTh: NaN };
  if (m === 0) return { clustering: { n, label, count: 0 }, info };

  let th = Infinity;
  for (let t = 0; t < m; t++) if (score[t]! < th) th = score[t]!;
  // Final cluster ids are provisional (assigned as components are finalised) and renumbered at the end.
  const compOf = new Int32Array(n).fill(-1);
  let nextComp = 0;
  const uf = new UnionFind(n);
  const inRemain = new Uint8Array(n);
  const root2comp = new Int32Array(n).fill(-1);

  // Round 0: every node on an edge takes part; all edges count.
  let nodes: Int32Array;
  {
    const seen = new Uint8Array(n);
    let cnt = 0;
    for (let t = 0; t < m; t++) {
      seen[a[t]!] = 1;
      seen[b[t]!] = 1;
    }
    for (let i = 0; i < n; i++) cnt += seen[i]!;
    nodes = new Int32Array(cnt);
    let p = 0;
    for (let i = 0; i < n; i++) if (seen[i]) nodes[p++] = i;
  }
  let ea = a, eb = b, es = score;
  let useTh = false;
  let round = 0;
  for (;;) {
    for (let p = 0; p < nodes.length; p++) uf.reset(nodes[p]!);
    for (let t = 0; t < ea.length; t++) {
      if (!useTh || es[t]! >= th) uf.union(ea[t]!, eb[t]!);
    }
    // Finalise components of size ≤ maxSz; the rest go on to the next round.
    let remainCount = 0;
    for (let p = 0; p < nodes.length; p++) {
      const v = nodes[p]!;
      const r = uf.find(v);
      if (uf.size[r]! <= maxSz) {
        if (root2comp[r] === -1) root2comp[r] = nextComp++;
        compOf[v] = root2comp[r]!;
        inRemain[v] = 0;
      } else {
        inRemain[v] = 1;
        remainCount++;
      }
    }
    for (let p = 0; p < nodes.length; p++) root2comp[nodes[p]!] = -1;
    if (remainCount === 0) break;
    // Keep only the nodes and edges of the remainder, and only edges that can pass a higher threshold.
    const rn = new Int32Array(remainCount);
    let q = 0;
    for (let p = 0; p < nodes.length; p++) if (inRemain[nodes[p]!]) rn[q++] = nodes[p]!;
    nodes = rn;
    // The original checks its iteration count only after a thresholded round.
    if (round >= 1 && round >= maxIter) {
      const c = nextComp++;
      for (let p = 0; p < nodes.length; p++) compOf[nodes[p]!] = c;
      info.forced = nodes.length;
      break;
    }
    round++;
    th = th + (1 - th) * step;
    let keep = 0;
    for (let t = 0; t < ea.length; t++) if (inRemain[ea[t]!] && es[t]! >= th) keep++;
    const na = new Int32Array(keep), nb = new Int32Array(keep), ns = new Float64Array(keep);
    keep = 0;
    for (let t = 0; t < ea.length; t++) {
      if (inRemain[ea[t]!] && es[t]! >= th) {
        na[keep] = ea[t]!;
        nb[keep] = eb[t]!;
        ns[keep] = es[t]!;
        keep++;
      }
    }
    ea = na, eb = nb, es = ns;
    useTh = true;
    info.rounds = round;
    info.lastTh = th;
    options.onRound?.(round, nodes.length, th);
  }
  // Renumber clusters by smallest member.
  const renum = new Int32Array(nextComp).fill(-1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const c = compOf[i]!;
    if (c < 0) continue;
    if (renum[c] === -1) renum[c] = count++;
    label[i] = renum[c]!;
  }
  return { clustering: { n, label, count }, info };
}

/** The original's `super_vertex(knns, k, th, th_step, max_sz)`: {@linkcode filterKnns} then propagation. */
export function superVertex(
  knn: KnnGraph,
  options: { th: number; step: number; maxSz: number; maxIter?: number },
): { clustering: Clustering; info: PropagationInfo; pairs: number } {
  const pairs = filterKnns(knn, options.th);
  const out = graphPropagation(pairs, { maxSz: options.maxSz, step: options.step, maxIter: options.maxIter, n: knn.n });
  return { ...out, pairs: pairs.a.length };
}

/** Cluster members as CSR: cluster c holds `members[offsets[c] .. offsets[c+1])`, ascending. */
export interface ClusterMembers {
  offsets: Int32Array;
  members: Int32Array;
}

/** Members of every cluster of a {@linkcode Clustering}, each list ascending. */
export function clusterMembers(c: Clustering): ClusterMembers {
  const offsets = new Int32Array(c.count + 1);
  for (let i = 0; i < c.n; i++) if (c.label[i]! >= 0) offsets[c.label[i]! + 1]!++;
  for (let t = 0; t < c.count; t++) offsets[t + 1]! += offsets[t]!;
  const members = new Int32Array(offsets[c.count]!);
  const fill = offsets.slice(0, c.count);
  for (let i = 0; i < c.n; i++) if (c.label[i]! >= 0) members[fill[c.label[i]!]!++] = i;
  return { offsets, members };
}

/** Sizes of the clusters of a {@linkcode Clustering}. */
export function clusterSizes(c: Clustering): Int32Array {
  const sizes = new Int32Array(c.count);
  for (let i = 0; i < c.n; i++) if (c.label[i]! >= 0) sizes[c.label[i]!]!++;
  return sizes;
}

/**
 * The labels `write_meta(clusters2labels(clusters), inst_num)` writes for a {@linkcode Clustering}: clustered nodes
 * keep their (smallest-member ordered) cluster number, every other node gets the next "discard" label in index
 * order. `instNum` defaults to `n`.
 */
export function clusteringToLabels(c: Clustering, instNum = c.n): Int32Array {
  if (instNum < c.n) {
    for (let i = instNum; i < c.n; i++) {
      if (c.label[i]! >= 0) throw new LtcError(`node ${i} is clustered but only ${instNum} instances were given`);
    }
  }
  const out = new Int32Array(instNum);
  let discard = c.count;
  for (let i = 0; i < instNum; i++) {
    const l = i < c.n ? c.label[i]! : -1;
    out[i] = l >= 0 ? l : discard++;
  }
  return out;
}

/**
 * A {@linkcode Clustering} from a label vector: labels equal to `ignore` (if given) are unclustered, the others
 * are renumbered by first appearance (smallest member).
 */
export function labelsToClustering(labels: ArrayLike<number>, ignore?: number): Clustering {
  const n = labels.length;
  const label = new Int32Array(n).fill(-1);
  const map = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const v = labels[i]!;
    if (v === ignore) continue;
    let c = map.get(v);
    if (c === undefined) map.set(v, c = map.size);
    label[i] = c;
  }
  return { n, label, count: map.size };
}

/**
 * Connected components of an undirected graph given as pairs over `0..n-1` (every node, isolated ones as
 * singletons), numbered by smallest member.
 */
export function connectedComponents(n: number, e1: ArrayLike<number>, e2: ArrayLike<number>): Clustering {
  const uf = new UnionFind(n);
  for (let t = 0; t < e1.length; t++) uf.union(e1[t]!, e2[t]!);
  const label = new Int32Array(n);
  const root2c = new Int32Array(n).fill(-1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    if (root2c[r] === -1) root2c[r] = count++;
    label[i] = root2c[r]!;
  }
  return { n, label, count };
}

/**
 * The original's sparse kNN matrix (`fast_knns2spmat`) as CSR rows with sorted columns: entries (i, j), j ≠ i,
 * j ≠ −1, whose weight w (= similarity `1 − dist` when `useSim`, else the distance) is ≥ `th`; a neighbour listed
 * twice in a row is summed, as scipy does when building the matrix.
 */
export function knnToCsr(
  knn: KnnGraph,
  options: { th: number; useSim: boolean },
): { indptr: Int32Array; indices: Int32Array; data: Float64Array } {
  const { n, k, nbrs, dists } = knn;
  const indptr = new Int32Array(n + 1);
  const slot = new Int32Array(n).fill(-1);
  let indices = new Int32Array(0), data = new Float64Array(0);
  // Two passes over the same entries: the first only counts each row's distinct kept columns, so the second writes
  // into arrays of their final size (an N × k float64 scratch would be 375 MB at MS1M part1 size).
  for (const fill of [false, true]) {
    slot.fill(-1);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const start = m;
      for (let t = 0; t < k; t++) {
        const j = nbrs[i * k + t]!;
        if (j < 0 || j === i) continue;
        const d = dists[i * k + t]!;
        const w = options.useSim ? 1 - d : d;
        if (!(w >= options.th)) continue;
        if (slot[j]! >= start) {
          if (fill) data[slot[j]!]! += w;
          continue;
        }
        slot[j] = m;
        if (fill) indices[m] = j, data[m] = w;
        m++;
      }
      if (!fill) continue;
      // Sort this row by column (rows are short).
      const len = m - start;
      if (len > 1) {
        const order = Array.from({ length: len }, (_, t) => start + t).sort((x, y) => indices[x]! - indices[y]!);
        const ci = order.map((p) => indices[p]!), cd = order.map((p) => data[p]!);
        for (let t = 0; t < len; t++) {
          indices[start + t] = ci[t]!;
          data[start + t] = cd[t]!;
        }
      }
      indptr[i + 1] = m;
    }
    if (!fill) indices = new Int32Array(m), data = new Float64Array(m);
  }
  return { indptr, indices, data };
}
