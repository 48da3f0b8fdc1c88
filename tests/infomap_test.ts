/**
 * cluster/infomap.ts: the map equation against a direct edge-list computation, the optimiser against exhaustive
 * search on tiny graphs, determinism, the kNN graph builder, bad input; and against the reference Infomap (npm
 * `@mapequation/infomap`, a devDependency run as a black box) on the ref_synth kNN and on centred CelebA embeddings:
 * codelength within 1 %, pairwise F within 0.01, and each side's formula scoring the other's partition identically.
 */
import assert from "node:assert/strict";
import { infomap, knnSimilarityGraph, mapEquation, type WeightedGraph } from "../cluster/infomap.ts";
import { LtcError } from "../shared/errors.ts";
import { readFeatures } from "../shared/features.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import { readKnn } from "../shared/knn_file.ts";
import { readLabels } from "../shared/meta.ts";
import { pairwise } from "../cluster/metrics.ts";
import { Rng } from "../shared/random.ts";
import { exactKnn } from "../gpu/knn/mod.ts";
import { HAS_REFERENCE, runReference, writeGraphLinkList, writeKnnLinkList } from "../bench/infomap_reference.ts";
import { HAS_SHARED, REF, SHARED, throwsWith } from "./_helpers.ts";

type Edge = [number, number, number];

/** CSR of an undirected edge list (each link once; both rows get it). */
function csr(n: number, edges: Edge[]): WeightedGraph {
  const rows: Array<Array<[number, number]>> = Array.from({ length: n }, () => []);
  for (const [u, v, w] of edges) rows[u]!.push([v, w]), rows[v]!.push([u, w]);
  const indptr = new Int32Array(n + 1);
  const indices: number[] = [], weights: number[] = [];
  rows.forEach((r, i) => {
    for (const [j, w] of r) indices.push(j), weights.push(w);
    indptr[i + 1] = indices.length;
  });
  return { n, indptr, indices: Int32Array.from(indices), weights: Float64Array.from(weights) };
}

/**
 * The map equation straight from its definition on an edge list, with Maps and normalised flows: p_α = s_α / 2W,
 * q_i = Σ of w / 2W over links leaving module i.
 */
function mapEquationDirect(edges: Edge[], labels: ArrayLike<number>): number {
  const h = (x: number) => (x > 0 ? x * Math.log2(x) : 0);
  let total = 0;
  const strength = new Map<number, number>();
  for (const [u, v, w] of edges) {
    total += 2 * w;
    strength.set(u, (strength.get(u) ?? 0) + w);
    strength.set(v, (strength.get(v) ?? 0) + w);
  }
  const exit = new Map<number, number>(), flow = new Map<number, number>();
  for (const [u, v, w] of edges) {
    const a = labels[u]!, b = labels[v]!;
    if (a === b) continue;
    exit.set(a, (exit.get(a) ?? 0) + w / total);
    exit.set(b, (exit.get(b) ?? 0) + w / total);
  }
  let nodeTerm = 0;
  for (const [node, s] of strength) {
    const a = labels[node]!;
    flow.set(a, (flow.get(a) ?? 0) + s / total);
    nodeTerm += h(s / total);
  }
  let q = 0, exitTerm = 0, flowTerm = 0;
  for (const [a, p] of flow) {
    const e = exit.get(a) ?? 0;
    q += e;
    exitTerm += h(e);
    flowTerm += h(e + p);
  }
  return h(q) - 2 * exitTerm - nodeTerm + flowTerm;
}

/** Every partition of 0..n−1 (restricted growth strings). */
function* allPartitions(n: number): Generator<Int32Array> {
  const a = new Int32Array(n);
  function* rec(i: number, max: number): Generator<Int32Array> {
    if (i === n) return yield a;
    for (let v = 0; v <= max + 1; v++) {
      a[i] = v;
      yield* rec(i + 1, Math.max(max, v));
    }
  }
  yield* rec(0, -1);
}

function randomEdges(rng: Rng, n: number, p: number): Edge[] {
  const edges: Edge[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) if (rng.random() < p) edges.push([i, j, 0.1 + rng.random()]);
  }
  return edges;
}

const TWO_TRIANGLES: Edge[] = [[0, 1, 1], [0, 2, 1], [1, 2, 1], [3, 4, 1], [3, 5, 1], [4, 5, 1], [2, 3, 0.1]];

Deno.test("mapEquation: the definition evaluated directly, on random graphs and partitions", () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 40; trial++) {
    const n = 3 + rng.int(20);
    const edges = randomEdges(rng, n, 0.3);
    const m = 1 + rng.int(n);
    const labels = Array.from({ length: n }, () => 7 * rng.int(m) - 3); // arbitrary integers, not dense
    const want = mapEquationDirect(edges, labels);
    assert.ok(Math.abs(mapEquation(csr(n, edges), labels) - want) < 1e-12, `trial ${trial}`);
  }
  // Two triangles joined by a weak link: the reference CLI prints 1.72204 bits for the two-module partition.
  const g = csr(6, TWO_TRIANGLES);
  assert.ok(Math.abs(mapEquation(g, [0, 0, 0, 1, 1, 1]) - 1.72204) < 5e-6);
  // One module: the entropy of the node flows (2.1/12.2 twice, 2/12.2 four times).
  const p = [2.1, 2, 2, 2.1, 2, 2].map((s) => s / 12.2);
  assert.ok(Math.abs(mapEquation(g, [0, 0, 0, 0, 0, 0]) + p.reduce((s, x) => s + x * Math.log2(x), 0)) < 1e-12);
});

Deno.test("infomap: two cliques joined by a weak link are two modules", () => {
  const edges: Edge[] = [];
  for (const base of [0, 5]) {
    for (let i = 0; i < 5; i++) for (let j = i + 1; j < 5; j++) edges.push([base + i, base + j, 1]);
  }
  edges.push([4, 5, 0.05]);
  const r = infomap(csr(10, edges));
  assert.deepEqual([...r.labels], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.equal(r.modules, 2);
  assert.ok(Math.abs(r.codelength - mapEquationDirect(edges, r.labels)) < 1e-12);
  assert.ok(r.codelength < r.oneModuleCodelength);
  const t = infomap(csr(6, TWO_TRIANGLES));
  assert.deepEqual([...t.labels], [0, 0, 0, 1, 1, 1]);
  assert.ok(Math.abs(t.codelength - 1.72204) < 5e-6);
});

Deno.test("infomap: finds the optimum of exhaustive search on tiny random graphs", () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 12; trial++) {
    const n = 7;
    const edges = randomEdges(rng, n, 0.45);
    if (edges.length === 0) continue;
    let best = Infinity;
    for (const part of allPartitions(n)) best = Math.min(best, mapEquationDirect(edges, part));
    const r = infomap(csr(n, edges), { trials: 3, seed: trial });
    assert.ok(Math.abs(r.codelength - best) < 1e-9, `trial ${trial}: ${r.codelength} vs optimum ${best}`);
    assert.ok(Math.abs(r.codelength - mapEquationDirect(edges, r.labels)) < 1e-12);
  }
});

Deno.test("infomap: nodes without links stay alone; a graph without links is all singletons", () => {
  const r = infomap(csr(8, [[1, 2, 1], [2, 3, 1], [1, 3, 1], [5, 6, 1], [6, 7, 1], [5, 7, 1], [3, 5, 0.01]]));
  assert.deepEqual([...r.labels], [0, 1, 1, 1, 2, 3, 3, 3]);
  const empty = infomap(csr(3, []));
  assert.deepEqual([...empty.labels], [0, 1, 2]);
  assert.equal(empty.codelength, 0);
});

/** A kNN whose rows are a planted partition: groups of 8 with similarities 0.6–0.9 inside, 0.2–0.5 across. */
function plantedKnn(rng: Rng, n: number, k: number): KnnGraph {
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    nbrs[i * k] = i; // self, as faiss lists it
    for (let t = 1; t < k; t++) {
      const same = rng.random() < 0.7;
      const j = same ? Math.floor(i / 8) * 8 + rng.int(8) : rng.int(n);
      nbrs[i * k + t] = Math.min(j, n - 1);
      dists[i * k + t] = 1 - (Math.floor(j / 8) === Math.floor(i / 8) ? 0.6 : 0.2) - 0.3 * rng.random();
    }
  }
  return { n, k, nbrs, dists };
}

Deno.test("infomap: same graph and seed give identical results; trials keep the best", () => {
  const g = knnSimilarityGraph(plantedKnn(new Rng(3), 400, 12), { thSim: 0.3 });
  const a = infomap(g, { trials: 3, seed: 9 }), b = infomap(g, { trials: 3, seed: 9 });
  assert.deepEqual(a, b);
  assert.equal(a.trialCodelengths.length, 3);
  assert.ok(Math.abs(a.codelength - Math.min(...a.trialCodelengths)) < 1e-12);
  assert.ok(Math.abs(a.codelength - mapEquation(g, a.labels)) < 1e-12);
  // Labels are numbered by first member.
  let next = 0;
  for (const l of a.labels) {
    assert.ok(l <= next);
    if (l === next) next++;
  }
  assert.equal(next, a.modules);
});

Deno.test("knnSimilarityGraph: strict threshold, self and padding dropped, both directions summed, symmetric", () => {
  // Row 0 lists 1 (0.9) and 2 (0.4); row 1 lists 0 (0.8) and 2 twice (0.7, 0.6); row 2 lists 0 at exactly th.
  const knn: KnnGraph = {
    n: 4,
    k: 4,
    nbrs: Int32Array.from([0, 1, 2, -1, 1, 0, 2, 2, 2, 0, 1, -1, 3, -1, -1, -1]),
    dists: Float32Array.from([0, 0.1, 0.6, 1, 0, 0.2, 0.3, 0.4, 0, 0.5, 0.3, 1, 0, 1, 1, 1]),
  };
  const g = knnSimilarityGraph(knn, { thSim: 0.5 });
  const w = (i: number, j: number) => {
    for (let p = g.indptr[i]!; p < g.indptr[i + 1]!; p++) if (g.indices[p] === j) return g.weights[p]!;
    return 0;
  };
  const s = (d: number) => 1 - Math.fround(d);
  assert.equal(w(0, 1), s(0.1) + s(0.2));
  assert.equal(w(1, 0), s(0.2) + s(0.1));
  assert.equal(w(1, 2), s(0.3) + s(0.4) + s(0.3));
  assert.ok(Math.abs(w(2, 1) - w(1, 2)) < 1e-15); // the same three terms, added in another order
  assert.equal(w(0, 2), 0); // 0.4 from row 0 and exactly 0.5 from row 2: neither is above 0.5
  assert.deepEqual([...g.indptr], [0, 1, 3, 4, 4]);
  assert.deepEqual(infomap(g).labels.length, 4);
});

Deno.test("infomap: bad graphs and options are one clear LtcError", () => {
  const g = csr(3, [[0, 1, 1], [1, 2, 2]]);
  const bad = (patch: Partial<WeightedGraph>, ...msg: string[]) => {
    throwsWith(() => infomap({ ...g, ...patch }), "infomap: graph", ...msg);
    assert.throws(() => infomap({ ...g, ...patch }), LtcError);
  };
  bad({ weights: Float64Array.from([1, 1, 2, 3]) }, "not symmetric");
  bad({ indices: Int32Array.from([0, 0, 2, 1]) }, "self loop");
  bad({ weights: Float64Array.from([-1, -1, 2, 2]) }, "weight -1");
  bad({ weights: Float64Array.from([NaN, NaN, 2, 2]) }, "weight NaN");
  bad({ indices: Int32Array.from([1, 0, 5, 1]) }, "neighbour 5");
  bad({ indptr: Int32Array.from([0, 1, 3]) }, "indptr");
  bad({ indptr: Int32Array.from([0, 3, 1, 4]) }, "decreases");
  bad({ n: 2.5 }, "node count");
  throwsWith(() => infomap(g, { trials: 0 }), "trials");
  throwsWith(() => infomap(g, { seed: 1.5 }), "seed");
  throwsWith(() => mapEquation(g, [0, 1]), "2 labels", "3 nodes");
  const knn: KnnGraph = { n: 1, k: 1, nbrs: Int32Array.of(0), dists: Float32Array.of(0) };
  throwsWith(() => knnSimilarityGraph(knn, { thSim: NaN }), "thSim");
});

/** Run ours and the reference on one kNN at one threshold and check the tolerances. */
async function compareWithReference(knn: KnnGraph, gt: Int32Array, th: number): Promise<void> {
  const graph = knnSimilarityGraph(knn, { thSim: th });
  const ours = infomap(graph);
  const file = Deno.makeTempFileSync({ suffix: ".txt" });
  try {
    writeKnnLinkList(knn, th, file);
    const ref = await runReference(file, { n: knn.n });
    const fOurs = pairwise(gt, ours.labels).fscore, fRef = pairwise(gt, ref.labels).fscore;
    const rel = Math.abs(ours.codelength - ref.codelength) / ref.codelength;
    console.log(
      `th ${th}: codelength ours ${ours.codelength.toFixed(5)} ref ${ref.codelength.toFixed(5)}; ` +
        `F ours ${fOurs.toFixed(4)} ref ${fRef.toFixed(4)}`,
    );
    assert.ok(rel <= 0.01, `codelength ours ${ours.codelength} vs reference ${ref.codelength}`);
    assert.ok(Math.abs(fOurs - fRef) <= 0.01, `pairwise F ours ${fOurs} vs reference ${fRef}`);
    // Same objective: each side scores the other's partition as that side itself reported it. The reference scores
    // ours on the graph written once per link, so this also checks that it sums a pair's two directions.
    assert.ok(Math.abs(mapEquation(graph, ref.labels) - ref.codelength) < 1e-9 * ref.codelength);
    writeGraphLinkList(graph, file);
    const cross = await runReference(file, { n: knn.n, evaluate: ours.labels });
    assert.ok(Math.abs(cross.codelength - ours.codelength) < 1e-9 * ours.codelength);
  } finally {
    Deno.removeSync(file);
  }
}

Deno.test({
  name: "infomap vs reference: ref_synth exact kNN (k 80), th 0.5 and 0.6",
  ignore: !HAS_SHARED || !HAS_REFERENCE,
  async fn() {
    const knn = readKnn(`${REF}/knns/sref/faiss_k_80.npz`);
    const gt = readLabels(`${REF}/labels/sref.meta`);
    for (const th of [0.5, 0.6]) await compareWithReference(knn, gt, th);
  },
});

Deno.test({
  name: "infomap vs reference: CelebA face-api embeddings (centred, all 6,126), exact kNN k 80, th 0.7",
  ignore: !HAS_SHARED || !HAS_REFERENCE,
  async fn() {
    const name = "celeba6300_faceapi128";
    const gt = readLabels(`${SHARED}/data/real/labels/${name}.meta`);
    const f = readFeatures(`${SHARED}/data/real/features/${name}.bin`, { dim: 128, center: true, count: gt.length });
    const { graph: knn } = await exactKnn(f, { k: 80, backend: "cpu", progress: false });
    await compareWithReference(knn, gt, 0.7);
  },
});
