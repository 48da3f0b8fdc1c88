/**
 * shared/graph.ts: union-find, filter_knns, unique pairs, the dynamic-threshold constrained components — against
 * straightforward re-implementations of the original's Python algorithms on random graphs, and against the
 * original's partitions of the ref_synth fixture.
 */
import assert from "node:assert/strict";
import { type KnnGraph, readKnn } from "../shared/knn_file.ts";
import { clustersToIdx2lb, relabelLikeWriteMeta } from "../shared/meta.ts";
import { Rng } from "../shared/random.ts";
import {
  clusteringToLabels,
  clusterMembers,
  clusterSizes,
  connectedComponents,
  filterKnns,
  graphPropagation,
  labelsToClustering,
  type ScoredPairs,
  superVertex,
  UnionFind,
  uniquePairs,
} from "../cluster/graph.ts";
import { HAS_SHARED, REF } from "./_helpers.ts";

/** A random kNN graph with −1 padding, repeated neighbours, self entries and asymmetric distances. */
function randomKnn(rng: Rng, n: number, k: number): KnnGraph {
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  const group = (i: number) => Math.floor(i / 7);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const r = rng.random();
      let j: number;
      if (t === 0) j = i;
      else if (r < 0.05) j = -1;
      else if (r < 0.6) j = Math.min(n - 1, group(i) * 7 + Math.floor((rng.random()) * 7));
      else j = Math.floor((rng.random()) * n);
      nbrs[i * k + t] = j;
      // Similar pairs get similar, nearly symmetric distances; the rounding makes some exactly symmetric.
      const base = group(i) === group(Math.max(j, 0)) ? 0.15 : 0.45;
      dists[i * k + t] = j === i ? 0 : Math.round((base + (rng.random()) * 0.3) * 64) / 64;
    }
  }
  return { n, k, nbrs, dists };
}

/** The original's filter_knns written the obvious way: all entries, then np.unique(axis=0, return_index=True). */
function filterKnnsReference(knn: KnnGraph, th: number): Map<string, number> {
  const first = new Map<string, number>();
  for (let i = 0; i < knn.n; i++) {
    for (let t = 0; t < knn.k; t++) {
      const j = knn.nbrs[i * knn.k + t]!;
      const sim = 1 - knn.dists[i * knn.k + t]!;
      if (j === -1 || j === i || !(sim >= th)) continue;
      const key = `${Math.min(i, j)}-${Math.max(i, j)}`;
      if (!first.has(key)) first.set(key, sim);
    }
  }
  return first;
}

/**
 * The original's graph_clustering_dynamic_th, transcribed from the reference description: BFS over node sets that
 * gives up on a component once it exceeds max_sz or touches `remain`, rounds with a rising threshold, force stop.
 */
function propagationReference(pairs: ScoredPairs, maxSz: number, step: number, maxIter: number): number[][] {
  const links = new Map<number, Set<number>>();
  const score = new Map<string, number>();
  let th = Infinity;
  for (let t = 0; t < pairs.a.length; t++) {
    const a = pairs.a[t]!, b = pairs.b[t]!;
    if (!links.has(a)) links.set(a, new Set());
    if (!links.has(b)) links.set(b, new Set());
    links.get(a)!.add(b);
    links.get(b)!.add(a);
    score.set(`${a}-${b}`, pairs.score[t]!);
    th = Math.min(th, pairs.score[t]!);
  }
  const ccc = (nodesIn: Iterable<number>, useTh: boolean, cut: number) => {
    const result: number[][] = [];
    const remain = new Set<number>();
    const nodes = new Set(nodesIn);
    while (nodes.size) {
      const seed = nodes.values().next().value!;
      nodes.delete(seed);
      const group = new Set([seed]);
      const queue = [seed];
      let valid = true;
      while (queue.length) {
        const u = queue.shift()!;
        const nb = [...links.get(u)!].filter((v) =>
          !group.has(v) && (!useTh || score.get(`${Math.min(u, v)}-${Math.max(u, v)}`)! >= cut)
        );
        for (const v of nb) {
          nodes.delete(v);
          group.add(v);
          queue.push(v);
        }
        if (group.size > maxSz || nb.some((v) => remain.has(v))) {
          valid = false;
          for (const v of group) remain.add(v);
          break;
        }
      }
      if (valid) result.push([...group].sort((x, y) => x - y));
    }
    return { result, remain };
  };
  let { result: comps, remain } = ccc(links.keys(), false, 0);
  const components = [...comps];
  let iter = 0;
  while (remain.size) {
    th = th + (1 - th) * step;
    ({ result: comps, remain } = ccc(remain, true, th));
    components.push(...comps);
    iter++;
    if (iter >= maxIter) {
      components.push([...remain].sort((x, y) => x - y));
      remain = new Set();
    }
  }
  return components;
}

/** Canonical form of a list of clusters: members sorted, clusters sorted by smallest member. */
function canon(clusters: ArrayLike<number>[]): string {
  return JSON.stringify(
    clusters.map((c) => Array.from(c).sort((a, b) => a - b)).filter((c) => c.length > 0).sort((a, b) => a[0]! - b[0]!),
  );
}

function clustersOf(labels: Int32Array, count: number): number[][] {
  const out: number[][] = Array.from({ length: count }, () => []);
  labels.forEach((l, i) => {
    if (l >= 0) out[l]!.push(i);
  });
  return out;
}

Deno.test("UnionFind merges and reports set sizes", () => {
  const uf = new UnionFind(6);
  assert.ok(uf.union(0, 1));
  assert.ok(uf.union(2, 3));
  assert.ok(uf.union(1, 3));
  assert.ok(!uf.union(0, 2));
  assert.deepEqual(uf.find(0), uf.find(3));
  assert.deepEqual(uf.size[uf.find(2)], 4);
  assert.ok(uf.find(4) !== uf.find(5));
});

Deno.test("filterKnns equals np.unique over sorted pairs, first occurrence keeps the score", () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 20; trial++) {
    const knn = randomKnn(rng, 60 + trial * 5, 6 + (trial % 5));
    for (const th of [0.4, 0.6, 0.7]) {
      const got = filterKnns(knn, th);
      const want = filterKnnsReference(knn, th);
      assert.deepEqual(got.a.length, want.size);
      for (let t = 0; t < got.a.length; t++) {
        assert.ok(got.a[t]! < got.b[t]!);
        assert.deepEqual(got.score[t], want.get(`${got.a[t]}-${got.b[t]}`));
      }
      // Strict mode (CDP) drops exactly the pairs at the threshold.
      const strict = filterKnns(knn, th, { strict: true });
      for (let t = 0; t < strict.a.length; t++) assert.ok(strict.score[t]! > th);
    }
  }
});

Deno.test("uniquePairs pools duplicates like the original's score_dict (last, avg, max)", () => {
  const e1 = [3, 1, 4, 1, 3], e2 = [1, 3, 1, 4, 1], score = [0.5, 0.7, 0.2, 0.9, 0.6];
  const last = uniquePairs(e1, e2, { score });
  assert.deepEqual([...last.a], [1, 1]);
  assert.deepEqual([...last.b], [3, 4]);
  assert.deepEqual([...last.score], [0.6, 0.9]);
  assert.deepEqual([...uniquePairs(e1, e2, { score, pool: "max" }).score], [0.7, 0.9]);
  const avg = uniquePairs(e1, e2, { score, pool: "avg" }).score;
  assert.ok(Math.abs(avg[0]! - 0.6) < 1e-12 && Math.abs(avg[1]! - 0.55) < 1e-12);
  let threw = false;
  try {
    uniquePairs([2], [2], { score: [1] });
  } catch (e) {
    threw = (e as Error).message.includes("self loop");
  }
  assert.ok(threw);
});

Deno.test("graphPropagation equals the original's BFS algorithm on random graphs (rounds and force stop)", () => {
  const rng = new Rng(11);
  let sawRounds = false, sawForced = false;
  for (let trial = 0; trial < 60; trial++) {
    const knn = randomKnn(rng, 80 + (trial % 7) * 20, 8);
    const pairs = filterKnns(knn, 0.35 + (trial % 4) * 0.1);
    const maxSz = 2 + (trial % 9) * 3;
    const maxIter = trial % 3 === 0 ? 2 : 100;
    const step = trial % 2 ? 0.05 : 0.3;
    const { clustering, info } = graphPropagation(pairs, { maxSz, step, maxIter, n: knn.n });
    const ref = propagationReference(pairs, maxSz, step, maxIter);
    assert.deepEqual(canon(clustersOf(clustering.label, clustering.count)), canon(ref));
    sawRounds ||= info.rounds > 0;
    sawForced ||= info.forced > 0;
    // Properties: every cluster within maxSz (except the forced remainder), every node in at most one.
    const sizes = clusterSizes(clustering);
    let over = 0;
    for (const s of sizes) if (s > maxSz) over++;
    assert.ok(over <= (info.forced > 0 ? 1 : 0), `${over} clusters above ${maxSz}`);
    const seen = new Set<number>();
    for (const c of clustersOf(clustering.label, clustering.count)) {
      for (const v of c) {
        assert.ok(!seen.has(v));
        seen.add(v);
      }
    }
  }
  assert.ok(sawRounds && sawForced, "random graphs should exercise threshold rounds and the force stop");
});

Deno.test("clusteringToLabels is write_meta(clusters2labels(clusters)) and round-trips labelsToClustering", () => {
  const rng = new Rng(3);
  const knn = randomKnn(rng, 200, 6);
  const { clustering } = graphPropagation(filterKnns(knn, 0.6), { maxSz: 10, n: 200 });
  const members = clusterMembers(clustering);
  const clusters = Array.from(
    { length: clustering.count },
    (_, c) => members.members.subarray(members.offsets[c], members.offsets[c + 1]),
  );
  assert.deepEqual(clusteringToLabels(clustering), relabelLikeWriteMeta(clustersToIdx2lb(clusters), 200));
  const back = labelsToClustering(clusteringToLabels(clustering));
  assert.deepEqual(
    canon(clustersOf(back.label, back.count).filter((c) => c.length > 1)),
    canon(
      clusters.map((c) => Array.from(c)).filter((c) => c.length > 1),
    ),
  );
});

Deno.test("connectedComponents numbers components by smallest member, isolated nodes included", () => {
  const c = connectedComponents(6, [4, 1], [2, 5]);
  assert.deepEqual([...c.label], [0, 1, 2, 3, 2, 1]);
  assert.deepEqual(c.count, 4);
});

Deno.test({
  name: "superVertex reproduces the original's pred_labels.txt byte for byte (th 0.6 / 0.65 / 0.7 / 0.75)",
  ignore: !HAS_SHARED,
  fn() {
    const knn = readKnn(`${REF}/knns/sref/faiss_k_80.npz`);
    for (const th of ["0.6", "0.65", "0.7", "0.75"]) {
      const { clustering } = superVertex(knn, { th: Number(th), step: 0.05, maxSz: 300 });
      const text = Array.from(clusteringToLabels(clustering)).join("\n") + "\n";
      const want = Deno.readTextFileSync(
        `${REF}/cluster_proposals/sref/faiss_k_80_th_${th}_step_0.05_minsz_3_maxsz_300_iter_0/pred_labels.txt`,
      );
      assert.deepEqual(text, want, `th ${th}`);
    }
  },
});
