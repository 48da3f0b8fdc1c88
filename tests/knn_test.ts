/**
 * kNN stage: exact search on the CPU twin and in WGSL against the original's faiss IndexFlatIP file
 * (../shared/fixtures/ref_synth), WGSL against the CPU twin on awkward shapes, HNSW recall, all-pairs similarity
 * search against brute force, the per-row top-k order, the stage CLI (artifact, sidecar, reuse, wasm fallback) and
 * bad input.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LtcError } from "../shared/errors.ts";
import { type Features, readFeatures, writeFeatures } from "../shared/features.ts";
import { type KnnGraph, knnToArray, readKnn, writeKnn } from "../shared/knn_file.ts";
import { writeNpz } from "../shared/npy.ts";
import { buildKnn, recallAtK, recallCounts, runKnnStage, sampleRows } from "../cluster/knn_source.ts";
import { getGpu } from "../gpu/device.ts";
import { knnJs, pairsJs } from "../gpu/knn/cpu_js.ts";
import { hnswKnn } from "../gpu/knn/hnsw.ts";
import { euclid64, exactKnn, pairsWithinDistance, similarityPairs } from "../gpu/knn/mod.ts";
import { RowTopK } from "../gpu/knn/topk.ts";
import { knnWebGpu, pairsWebGpu } from "../gpu/knn/webgpu.ts";
import { HAS_SHARED, REF, tempDir } from "./_helpers.ts";

const FEAT = `${REF}/features/sref.bin`;
const REF_KNN = `${REF}/knns/sref/faiss_k_80.npz`;
const gpu = await getGpu();
if (!gpu) console.error("note: no WebGPU adapter; WGSL tests are skipped");

/** Deterministic pseudo-random rows (LCG), optionally L2-normalised. */
function randomRows(n: number, dim: number, seed: number, normalize = true): Features {
  let s = seed >>> 0;
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n * dim; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296 - 0.5;
  }
  if (normalize) {
    for (let i = 0; i < n; i++) {
      let ss = 0;
      for (let t = 0; t < dim; t++) ss += data[i * dim + t]! ** 2;
      const norm = Math.fround(Math.sqrt(ss));
      for (let t = 0; t < dim; t++) data[i * dim + t] = data[i * dim + t]! / norm;
    }
  }
  return { data, n, dim };
}

/** The first `n` rows of `f`. */
function head(f: Features, n: number): Features {
  return { data: f.data.slice(0, n * f.dim), n, dim: f.dim };
}

/**
 * Two kNN graphs agree: at every position the distances agree within `tol` (so the sorted similarity profiles are
 * the same), and any neighbour in one row but not the other sits within `tol` of the row's k-th distance (an exact
 * or float-rounding tie at the cut). Returns how many rows needed the tie allowance.
 */
function assertSameNeighbours(got: KnnGraph, want: KnnGraph, tol: number, what: string): number {
  assert.equal(got.n, want.n, `${what}: rows`);
  assert.equal(got.k, want.k, `${what}: k`);
  const k = want.k;
  let tieRows = 0;
  for (let i = 0; i < want.n; i++) {
    const g = new Set<number>(), w = new Set<number>();
    for (let t = 0; t < k; t++) {
      const dg = got.dists[i * k + t]!, dw = want.dists[i * k + t]!;
      if (!(Math.abs(dg - dw) <= tol)) assert.fail(`${what}: row ${i} pos ${t}: distance ${dg} vs ${dw}`);
      g.add(got.nbrs[i * k + t]!);
      w.add(want.nbrs[i * k + t]!);
    }
    const kth = want.dists[i * k + k - 1]!;
    let tie = false;
    for (let t = 0; t < k; t++) {
      const id = got.nbrs[i * k + t]!;
      if (!w.has(id)) {
        tie = true;
        assert.ok(Math.abs(got.dists[i * k + t]! - kth) <= tol, `${what}: row ${i} has extra neighbour ${id}`);
      }
      const wid = want.nbrs[i * k + t]!;
      if (!g.has(wid)) {
        assert.ok(Math.abs(want.dists[i * k + t]! - kth) <= tol, `${what}: row ${i} misses neighbour ${wid}`);
      }
    }
    if (tie) tieRows++;
  }
  return tieRows;
}

/**
 * Rows sorted by ascending distance with distinct ids. (Equal distances may still hold different similarities —
 * `1 − sim` rounds — so id order on ties is checked where sims are exactly equal, in the duplicate-row test.)
 */
function assertRowOrder(g: KnnGraph, what: string): void {
  for (let i = 0; i < g.n; i++) {
    const seen = new Set<number>();
    for (let t = 0; t < g.k; t++) {
      const id = g.nbrs[i * g.k + t]!;
      assert.ok(id === -1 || !seen.has(id), `${what}: row ${i} repeats ${id}`);
      seen.add(id);
      if (t > 0) {
        assert.ok(g.dists[i * g.k + t - 1]! <= g.dists[i * g.k + t]!, `${what}: row ${i} out of order at ${t}`);
      }
    }
  }
}

Deno.test({
  name: "exact kNN on the CPU twin matches the original's faiss IndexFlatIP file",
  ignore: !HAS_SHARED,
  async fn() {
    const f = readFeatures(FEAT, { dim: 256 });
    const ref = readKnn(REF_KNN);
    const r = await exactKnn(f, { k: 80, backend: "cpu", progress: false });
    assert.match(r.backend, /^cpu \(onnxruntime/);
    const ties = assertSameNeighbours(r.graph, ref, 1e-5, "cpu vs faiss");
    assert.ok(ties <= f.n / 100, `too many tie rows (${ties})`);
    assertRowOrder(r.graph, "cpu");
    for (let i = 0; i < f.n; i++) assert.equal(r.graph.nbrs[i * 80], i, `row ${i}: self first`);
  },
});

Deno.test({
  name: "exact kNN in WGSL matches the original on the first 600 rows (vs TypeScript brute force)",
  ignore: !HAS_SHARED || !gpu,
  async fn() {
    const f = head(readFeatures(FEAT, { dim: 256 }), 600);
    const r = await exactKnn(f, { k: 80, backend: "webgpu", progress: false });
    assert.match(r.backend, /^webgpu/);
    const brute = knnJs(f, f, 80);
    assertSameNeighbours(r.graph, { n: f.n, k: 80, ...brute }, 1e-5, "wgsl vs brute force");
    assertRowOrder(r.graph, "wgsl");
    // the original's rows restricted to these 600 rows: the first neighbours of each row lie inside the subset
    const ref = readKnn(REF_KNN);
    for (let i = 0; i < f.n; i++) {
      for (let t = 0; t < 80; t++) {
        const id = ref.nbrs[i * 80 + t]!;
        if (id >= 600) break; // subset rows only see subset neighbours
        assert.ok(Math.abs(r.graph.dists[i * 80 + t]! - ref.dists[i * 80 + t]!) <= 1e-5, `row ${i} pos ${t}`);
      }
    }
  },
});

Deno.test({
  name: "WGSL equals the CPU twin on awkward shapes (N not a tile multiple, k > tile width, dim 128 and 512)",
  ignore: !gpu,
  async fn() {
    for (const [n, dim, k] of [[201, 128, 100], [333, 512, 70], [70, 60, 69]] as const) {
      const f = randomRows(n, dim, n * 7 + dim);
      const g = await exactKnn(f, { k, backend: "webgpu", progress: false });
      const c = await exactKnn(f, { k, backend: "cpu", progress: false });
      assertSameNeighbours(g.graph, c.graph, 2e-6, `n ${n} dim ${dim} k ${k}`);
      assertRowOrder(g.graph, "wgsl");
    }
  },
});

Deno.test({
  name: "WGSL over many dispatches and binding-sized buffer parts equals the CPU twin",
  ignore: !gpu,
  async fn() {
    const base = randomRows(20000, 16, 8);
    const queries = randomRows(150, 16, 9);
    const want = await exactKnn(base, { k: 90, backend: "cpu", queries, progress: false });
    // 20000 base rows: two dispatch ranges (16384 + 3616); then 4096-row buffer parts (a 256 KiB binding cap)
    for (const maxBindingBytes of [undefined, 16 * 4 * 4096]) {
      const got = await knnWebGpu(gpu!, base, queries, 90, { maxBindingBytes });
      assertSameNeighbours({ n: 150, k: 90, ...got }, want.graph, 2e-6, `cap ${maxBindingBytes}`);
    }
    const small = randomRows(700, 16, 10);
    const pairs = await pairsWebGpu(gpu!, small, 0.5, { maxBindingBytes: 16 * 4 * 128 });
    const brute = pairsJs(small, 0.5);
    assert.deepEqual(Array.from(pairs.i), Array.from(brute.i));
    assert.deepEqual(Array.from(pairs.j), Array.from(brute.j));
  },
});

Deno.test({
  name:
    "WGSL kNN, both tile kernels: the GPU merge equals brute force exactly (ties, splits, batches, buffer parts); one host wait",
  ignore: !gpu,
  async fn() {
    // values on a 1/8 grid: every inner product is exact in float32 and exact ties are everywhere
    const grid = (n: number, dim: number, seed: number): Features => {
      const f = randomRows(n, dim, seed, false);
      for (let i = 0; i < f.data.length; i++) f.data[i] = Math.round(f.data[i]! * 8) / 8;
      return f;
    };
    const base = grid(700, 16, 21);
    const queries = grid(130, 16, 22);
    const waits = { map: 0, done: 0 };
    const map = GPUBuffer.prototype.mapAsync, done = GPUQueue.prototype.onSubmittedWorkDone;
    GPUBuffer.prototype.mapAsync = function (...a) {
      waits.map++;
      return map.apply(this, a);
    };
    GPUQueue.prototype.onSubmittedWorkDone = function () {
      waits.done++;
      return done.apply(this);
    };
    try {
      // 128-row buffer parts: 6 base parts (6 dispatches per batch) and query batches of one tile (64 or 128 rows)
      // with several splits; 50-row read-back buffers: batches straddle them
      const want = knnJs(base, queries, 90);
      for (const [kernel, batches] of [["tile64", 3], ["tile128", 2]] as const) {
        waits.map = 0;
        const got = await knnWebGpu(gpu!, base, queries, 90, {
          maxBindingBytes: 16 * 4 * 128,
          maxReadBytes: 50 * 90 * 4,
          kernel,
        });
        assert.deepEqual(got.nbrs, want.nbrs, kernel);
        assert.deepEqual(got.dists, want.dists, kernel);
        assert.deepEqual(got.stats, { hostRoundTrips: 1, submits: batches, kernel, batches, dispatches: 6 * batches });
        assert.deepEqual(waits, { map: 2 * 3, done: 0 }, "three read-back buffers, mapped together; no other wait");
      }
      // k above the base rows: the rows end in −1 / distance 1, as the CPU twin pads them
      const small = grid(40, 16, 23);
      const padded = await knnWebGpu(gpu!, small, small, 45);
      const top = knnJs(small, small, 40);
      for (let i = 0; i < 40; i++) {
        assert.deepEqual(padded.nbrs.subarray(i * 45, i * 45 + 40), top.nbrs.subarray(i * 40, i * 40 + 40));
        assert.deepEqual(padded.dists.subarray(i * 45, i * 45 + 40), top.dists.subarray(i * 40, i * 40 + 40));
        assert.deepEqual(Array.from(padded.nbrs.subarray(i * 45 + 40, i * 45 + 45)), [-1, -1, -1, -1, -1]);
        assert.deepEqual(Array.from(padded.dists.subarray(i * 45 + 40, i * 45 + 45)), [1, 1, 1, 1, 1]);
      }
      // progress comes from completion callbacks and reaches 1
      const seen: number[] = [];
      await knnWebGpu(gpu!, base, queries, 90, { maxBindingBytes: 16 * 4 * 128, onProgress: (f) => seen.push(f) });
      assert.ok(seen.length === 3 && seen.every((f, i) => i === 0 || f > seen[i - 1]!) && seen[2] === 1, `${seen}`);
    } finally {
      GPUBuffer.prototype.mapAsync = map;
      GPUQueue.prototype.onSubmittedWorkDone = done;
    }
  },
});

Deno.test({
  name: "exact ties (duplicate rows) come out by ascending id on every backend, with external queries",
  async fn() {
    const base = randomRows(150, 64, 5);
    // rows 10, 40, 77 and 149 are copies of row 3
    for (const i of [10, 40, 77, 149]) base.data.copyWithin(i * 64, 3 * 64, 4 * 64);
    const queries = head(base, 20);
    const backends = gpu ? ["cpu", "webgpu"] as const : ["cpu"] as const;
    const want = knnJs(base, queries, 12);
    for (const b of backends) {
      const r = await exactKnn(base, { k: 12, backend: b, queries, progress: false });
      assert.equal(r.graph.n, 20);
      assert.deepEqual(Array.from(r.graph.nbrs.subarray(3 * 12, 3 * 12 + 5)), [3, 10, 40, 77, 149], b);
      assertSameNeighbours(r.graph, { n: 20, k: 12, ...want }, 2e-6, b);
      assertRowOrder(r.graph, b);
    }
  },
});

Deno.test("RowTopK keeps the k best by (similarity desc, id asc) whatever the arrival order", () => {
  let s = 99;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  for (const k of [1, 5, 80]) {
    const n = 300;
    // coarse values so exact ties are common
    const sims = Float32Array.from({ length: n }, () => Math.round(rnd() * 20) / 20);
    const order = Array.from({ length: n }, (_, i) => i).sort(() => rnd() - 0.5);
    const top = new RowTopK(1, k);
    for (const i of order) {
      top.offer(0, sims[i]!, i);
      assert.equal(top.threshold(0), top.sims[0], "the threshold is the heap root"); // its compact copy kept up
    }
    const nbrs = new Int32Array(k), dists = new Float32Array(k);
    top.finishInto(nbrs, dists);
    const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => sims[b]! - sims[a]! || a - b).slice(0, k);
    assert.deepEqual(Array.from(nbrs), want, `k ${k}`);
    assert.deepEqual(Array.from(dists), want.map((i) => Math.fround(1 - sims[i]!)));
  }
  // finishInPlace (packed float64 keys; comparator for ids ≥ 2^21) agrees with finishInto, empties and ±0 included
  for (const idBase of [0, 3_000_000]) {
    const rows = 50, k = 12;
    const a = new RowTopK(rows, k), b = new RowTopK(rows, k);
    for (let r = 0; r < rows; r++) {
      const cands = r % 7 === 0 ? 5 : 40; // some rows stay partly empty
      for (let c = 0; c < cands; c++) {
        const sim = c % 5 === 0 ? (c % 10 === 0 ? -0 : 0) : Math.fround(Math.round((rnd() - 0.5) * 8) / 4);
        a.offer(r, sim, idBase + c * 3);
        b.offer(r, sim, idBase + c * 3);
      }
    }
    for (let r = 0; r < rows; r++) assert.equal(a.threshold(r), a.sims[r * k], `row ${r}: threshold = heap root`);
    const want = { nbrs: new Int32Array(rows * k), dists: new Float32Array(rows * k) };
    b.finishInto(want.nbrs, want.dists);
    const got = a.finishInPlace();
    assert.deepEqual(Array.from(got.dists), Array.from(want.dists), `dists, ids from ${idBase}`);
    assert.deepEqual(Array.from(got.nbrs), Array.from(want.nbrs), `ids from ${idBase}`);
  }
  // fewer candidates than k: padding −1 / distance 1
  const top = new RowTopK(1, 4);
  top.offer(0, 0.5, 7);
  const nbrs = new Int32Array(4), dists = new Float32Array(4);
  top.finishInto(nbrs, dists);
  assert.deepEqual(Array.from(nbrs), [7, -1, -1, -1]);
  assert.deepEqual(Array.from(dists), [0.5, 1, 1, 1]);
});

Deno.test({
  name: "similarityPairs equals brute force over all pairs; pairsWithinDistance decides the cut in float64",
  ignore: !HAS_SHARED,
  async fn() {
    const f = readFeatures(FEAT, { dim: 256 });
    for (const minSim of [0.82, 0.5]) {
      const got = await similarityPairs(f, { minSim, backend: "cpu" });
      const want = pairsJs(f, minSim);
      // float rounding may move pairs within 1e-6 of the cut; everything else must agree exactly
      const key = (i: number, j: number) => i * f.n + j;
      const wantMap = new Map<number, number>();
      for (let t = 0; t < want.i.length; t++) wantMap.set(key(want.i[t]!, want.j[t]!), want.sim[t]!);
      const gotKeys = new Set<number>();
      for (let t = 0; t < got.i.length; t++) {
        assert.ok(got.i[t]! < got.j[t]!, "i < j");
        if (t > 0) assert.ok(got.i[t - 1]! < got.i[t]! || got.j[t - 1]! < got.j[t]!, "sorted by i, then j");
        const k = key(got.i[t]!, got.j[t]!);
        gotKeys.add(k);
        const s = wantMap.get(k);
        if (s === undefined) assert.ok(Math.abs(got.sim[t]! - minSim) < 1e-6, "extra pair far from the cut");
        else assert.ok(Math.abs(s - got.sim[t]!) < 1e-5);
      }
      for (const [k, s] of wantMap) if (!gotKeys.has(k)) assert.ok(Math.abs(s - minSim) < 1e-6, "missing pair");
      assert.ok(got.i.length > f.n, `${minSim}: a real number of pairs (${got.i.length})`);
    }
    // Euclidean cut on a 500-row subset against float64 brute force
    const sub = head(f, 500);
    for (const maxDist of [0.6, 0.72]) {
      const p = await pairsWithinDistance(sub, { maxDist, backend: "cpu" });
      const want: string[] = [];
      for (let i = 0; i < sub.n; i++) {
        for (let j = i + 1; j < sub.n; j++) if (euclid64(sub, i, j) <= maxDist) want.push(`${i}-${j}`);
      }
      const got = Array.from(p.i, (i, t) => `${i}-${p.j[t]}`);
      assert.deepEqual(got, want, `maxDist ${maxDist}`);
      for (let t = 0; t < p.i.length; t++) assert.equal(p.dist[t], euclid64(sub, p.i[t]!, p.j[t]!));
    }
  },
});

Deno.test({
  name: "similarityPairs (backend auto) agrees with brute force on random data",
  async fn() {
    const f = randomRows(257, 32, 11);
    const got = await similarityPairs(f, { minSim: 0.3 });
    const want = pairsJs(f, 0.3);
    assert.deepEqual(Array.from(got.i), Array.from(want.i));
    assert.deepEqual(Array.from(got.j), Array.from(want.j));
  },
});

Deno.test({
  name: "similarityPairs in WGSL equals brute force, including a run that outgrows the output lists",
  ignore: !gpu,
  async fn() {
    const f = randomRows(333, 128, 21);
    const got = await similarityPairs(f, { minSim: 0.1, backend: "webgpu" });
    assert.match(got.backend, /^webgpu/);
    const want = pairsJs(f, 0.1);
    assert.deepEqual(Array.from(got.i), Array.from(want.i));
    assert.deepEqual(Array.from(got.j), Array.from(want.j));
    for (let t = 0; t < got.sim.length; t++) assert.ok(Math.abs(got.sim[t]! - want.sim[t]!) < 1e-6);
    // every pair of 1500 rows: 1,124,250 > the first list capacity (2^20)
    const all = await similarityPairs(randomRows(1500, 8, 4), { minSim: -2, backend: "webgpu" });
    assert.equal(all.i.length, (1500 * 1499) / 2);
    let t = 0;
    for (let i = 0; i < 1500; i++) {
      for (let j = i + 1; j < 1500; j++, t++) {
        if (all.i[t] !== i || all.j[t] !== j) assert.fail(`pair ${t}: (${all.i[t]}, ${all.j[t]}) ≠ (${i}, ${j})`);
      }
    }
  },
});

Deno.test({
  name: "HNSW (hnswlib-wasm) reaches recall@80 ≥ 0.95 on the reference set, deterministically",
  ignore: !HAS_SHARED,
  async fn() {
    const f = readFeatures(FEAT, { dim: 256 });
    const ref = readKnn(REF_KNN);
    const a = await hnswKnn(f, { k: 80, shards: 2 });
    const rows = sampleRows(f.n, f.n);
    const recall = recallAtK({ n: f.n, k: 80, nbrs: a.nbrs, dists: a.dists }, ref, rows);
    assert.ok(recall >= 0.95, `recall@80 ${recall}`);
    assertRowOrder({ n: f.n, k: 80, nbrs: a.nbrs, dists: a.dists }, "hnsw");
    // same inputs, same graph
    const b = await hnswKnn(head(f, 1000), { k: 10, m: 8, efConstruction: 40 });
    const c = await hnswKnn(head(f, 1000), { k: 10, m: 8, efConstruction: 40 });
    assert.deepEqual(b.nbrs, c.nbrs);
  },
});

Deno.test({
  name: "knn stage: writes the original's layout + sidecar, reuses an up-to-date file, --force rebuilds",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    try {
      Deno.mkdirSync(join(dir, "features"));
      Deno.copyFileSync(FEAT, join(dir, "features", "sref.bin"));
      const first = await runKnnStage({ prefix: dir, name: "sref", k: 80, backend: "cpu", progress: false });
      assert.equal(first.path, join(dir, "knns", "sref", "faiss_k_80.npz"));
      assert.equal(first.skipped, false);
      const g = readKnn(first.path);
      assertSameNeighbours(g, readKnn(REF_KNN), 1e-5, "stage vs faiss");
      const side = JSON.parse(Deno.readTextFileSync(`${first.path}.meta.json`));
      assert.equal(side.stage, "knn");
      assert.match(side.backend, /onnxruntime/);
      assert.ok(side.timings_s.exact_knn > 0);
      const bytes = Deno.readFileSync(first.path);
      const again = await runKnnStage({ prefix: dir, name: "sref", k: 80, backend: "cpu", progress: false });
      assert.equal(again.skipped, true);
      const forced = await runKnnStage({ prefix: dir, name: "sref", k: 80, force: true, progress: false });
      assert.equal(forced.skipped, false);
      assert.deepEqual(Deno.readFileSync(first.path), bytes, "deterministic bytes");
      // a different k is a different artifact; hnsw writes hnsw_k_<k>.npz with its recall in the sidecar
      const h = await runKnnStage({
        prefix: dir,
        name: "sref",
        k: 10,
        method: "hnsw",
        hnsw: { m: 8, efConstruction: 60 },
        recallSample: 200,
        progress: false,
      });
      assert.equal(h.path, join(dir, "knns", "sref", "hnsw_k_10.npz"));
      const hs = JSON.parse(Deno.readTextFileSync(`${h.path}.meta.json`));
      assert.equal(hs.recall.sample, 200);
      assert.ok(hs.recall.recallAtK > 0.9, `recall ${hs.recall.recallAtK}`);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "writeKnn writes the same bytes as the generic npz encoder (padding rows included)",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    try {
      const g = readKnn(REF_KNN);
      g.nbrs[5] = -1;
      g.dists[5] = 1;
      writeNpz(join(dir, "a.npz"), { data: knnToArray(g) });
      await writeKnn(join(dir, "b.npz"), g);
      assert.deepEqual(Deno.readFileSync(join(dir, "b.npz")), Deno.readFileSync(join(dir, "a.npz")));
      const back = readKnn(join(dir, "b.npz"));
      assert.deepEqual(back.nbrs, g.nbrs);
      assert.deepEqual(back.dists, g.dists);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "knn CLI on the onnxruntime-web (wasm) fallback gives the same graph",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    try {
      Deno.mkdirSync(join(dir, "features"));
      const f = head(readFeatures(FEAT, { dim: 256, normalize: false }), 700);
      writeFeatures(join(dir, "features", "s.bin"), f.data);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "stages/knn.ts", "--prefix", dir, "--name", "s", "--k", "30", "--backend", "cpu"],
        env: { LTC_ORT: "web", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const path = join(dir, "knns", "s", "faiss_k_30.npz");
      const side = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
      assert.match(side.backend, /onnxruntime-web/);
      const normed = readFeatures(join(dir, "features", "s.bin"), { dim: 256 });
      const want = await exactKnn(normed, { k: 30, backend: "cpu", progress: false });
      assertSameNeighbours(readKnn(path), want.graph, 2e-6, "wasm vs native");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("knn: bad input ends in one clear error", async () => {
  const dir = tempDir();
  try {
    Deno.mkdirSync(join(dir, "features"));
    const f = randomRows(50, 16, 3, false);
    writeFeatures(join(dir, "features", "small.bin"), f.data);
    const run = (name: string, extra: Record<string, unknown> = {}) =>
      runKnnStage({ prefix: dir, name, k: 80, dim: 16, progress: false, ...extra });
    await assert.rejects(run("small"), (e) => e instanceof LtcError && /k = 80 must be smaller.*50/.test(e.message));
    await assert.rejects(run("small", { dim: 256 }), (e) => e instanceof LtcError && /not a multiple/.test(e.message));
    Deno.writeFileSync(join(dir, "features", "empty.bin"), new Uint8Array(0));
    await assert.rejects(run("empty"), (e) => e instanceof LtcError && /empty/.test(e.message));
    await assert.rejects(run("missing"), (e) => e instanceof LtcError && /missing\.bin: no such file/.test(e.message));
    const nan = f.data.slice();
    nan[17] = NaN;
    writeFeatures(join(dir, "features", "nan.bin"), nan);
    await assert.rejects(run("nan", { k: 5 }), (e) => e instanceof LtcError && /NaN/.test(e.message));
    await assert.rejects(
      buildKnn(f, { k: 0 }),
      (e) => e instanceof LtcError && /positive integer/.test(e.message),
    );
    await assert.rejects(
      exactKnn(f, { k: 3, queries: randomRows(4, 8, 1) }),
      (e) => e instanceof LtcError && /dim 8.*dim 16/.test(e.message),
    );
    const cli = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "stages/knn.ts", "--prefix", dir, "--name", "small", "--dim", "16"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(cli.code, 2);
    const err = new TextDecoder().decode(cli.stderr).trim();
    assert.equal(err.split("\n").length, 1, err);
    assert.match(err, /^error: \S+\/features\/small\.bin: k = 80 must be smaller than its 50 rows/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("recall counts: recall@k hits, and the exact neighbours above each similarity cut and how many were found", () => {
  // 3 rows, k 4; exact rows of sampled rows 0 and 2 (similarities 0.9, 0.65, 0.55, 0.3 and 0.8, 0.72, 0.61, 0.4)
  const exact: KnnGraph = {
    n: 2,
    k: 4,
    nbrs: Int32Array.of(0, 1, 2, 9, 2, 5, 6, 7),
    dists: Float32Array.from([0.9, 0.65, 0.55, 0.3, 0.8, 0.72, 0.61, 0.4], (s) => 1 - s),
  };
  // approximate rows: row 0 misses 2 (0.55) and 9 (0.3); row 1 is not sampled; row 2 misses 5 (0.72), pads with −1
  const approx: KnnGraph = {
    n: 3,
    k: 4,
    nbrs: Int32Array.of(0, 1, 4, 3, 0, 1, 2, 3, 2, 7, 6, -1),
    dists: new Float32Array(12),
  };
  const c = recallCounts(approx, exact, Int32Array.of(0, 2));
  assert.equal(c.hits, 5);
  assert.equal(recallAtK(approx, exact, Int32Array.of(0, 2)), 5 / 8);
  assert.deepEqual(c.above, [
    // ≥ 0.5: 0.9 0.65 0.55 | 0.8 0.72 0.61 → found 0.9 0.65 | 0.8 0.61
    { similarity: 0.5, neighbours: 6, found: 4 },
    // ≥ 0.6: 0.9 0.65 | 0.8 0.72 0.61 → found 0.9 0.65 | 0.8 0.61 (no similarity sits on a cut: 1 − d rounds)
    { similarity: 0.6, neighbours: 5, found: 4 },
    // ≥ 0.7: 0.9 | 0.8 0.72 → found 0.9 | 0.8
    { similarity: 0.7, neighbours: 3, found: 2 },
  ]);
});
