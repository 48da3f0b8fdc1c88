/**
 * Baselines against the original's results on ref_synth: KNN-DBSCAN and CDP metrics to 1e-9, FastHAC partitions
 * exactly, ARO within 0.005; the random streams against CPython / numpy; small hand-checked cases.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFeatures } from "../shared/features.ts";
import { type KnnGraph, readKnn } from "../shared/knn_file.ts";
import { readLabels, relabelDense } from "../shared/meta.ts";
import { Mt19937 } from "../shared/random.ts";
import { aro, knnAro } from "../cluster/baselines/aro.ts";
import { cdp } from "../cluster/baselines/cdp.ts";
import { chineseWhispers } from "../cluster/baselines/chinese_whispers.ts";
import { fastHac } from "../cluster/baselines/fast_hac.ts";
import { knnDbscan } from "../cluster/baselines/knn_dbscan.ts";
import { miniBatchKmeans } from "../cluster/baselines/mini_batch_kmeans.ts";
import { BASELINE_DEFAULTS, baselineParamString } from "../cluster/baselines/mod.ts";
import { clusteringToLabels, knnToCsr } from "../cluster/graph.ts";
import { type AllMetrics, evaluateAll } from "../cluster/metrics.ts";
import { knnSimilarityGraph, mapEquation } from "../cluster/infomap.ts";
import { gemmErrorBound, RowMinCandidatesOrt, ScaledGemmOrt } from "../gpu/knn/gemm_ort.ts";
import { expected, HAS_SHARED, REF, runStage, tempDir } from "./_helpers.ts";

type Expected = { pairwise: number[]; bcubed: number[]; nmi: number; clusters: number };

function close(m: AllMetrics, e: Expected, tol: number, what: string): void {
  const got = [
    m.pairwise.precision,
    m.pairwise.recall,
    m.pairwise.fscore,
    m.bcubed.precision,
    m.bcubed.recall,
    m.bcubed.fscore,
    m.nmi,
  ];
  const want = [...e.pairwise, ...e.bcubed, e.nmi];
  got.forEach((v, t) => assert.ok(Math.abs(v - want[t]!) <= tol, `${what}: metric ${t} is ${v}, expected ${want[t]}`));
}

let cache: { knn: KnnGraph; gt: Int32Array } | null = null;
function ref(): { knn: KnnGraph; gt: Int32Array } {
  cache ??= { knn: readKnn(`${REF}/knns/sref/faiss_k_80.npz`), gt: readLabels(`${REF}/labels/sref.meta`) };
  return cache;
}

Deno.test("Mt19937 reproduces CPython's random and numpy's legacy RandomState streams", () => {
  const py = Mt19937.python(42);
  assert.deepEqual([py.getrandbits(32), py.getrandbits(32), py.getrandbits(32)], [2746317213, 478163327, 107420369]);
  const sh = Int32Array.from({ length: 10 }, (_, i) => i);
  Mt19937.python(42).pyShuffle(sh);
  assert.deepEqual([...sh], [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]);
  const np = Mt19937.numpy(0);
  assert.deepEqual(Array.from({ length: 5 }, () => np.randint(0, 1000)), [684, 559, 629, 192, 835]);
  assert.deepEqual([np.randomSample(), np.randomSample()], [0.8579456176227568, 0.8472517387841254]);
  assert.deepEqual([...np.choiceNoReplace(10, 4)], [9, 1, 7, 6]);
  assert.equal(np.randint(0, 7), 6);
});

Deno.test({
  name: "KNN-DBSCAN (eps 0.25, min_samples 1) and CDP (sim > 0.7, max 600) equal expected.json to 1e-9",
  ignore: !HAS_SHARED,
  fn() {
    const { knn, gt } = ref();
    const db = relabelDense(knnDbscan(knn, { eps: 0.25, minSamples: 1, thSim: 0 }), -1);
    const eDb = expected()["knn_dbscan_eps0.25_min1"] as Expected;
    close(evaluateAll(gt, db), eDb, 1e-9, "knn_dbscan");
    assert.equal(new Set(db).size, eDb.clusters);
    const c = clusteringToLabels(cdp(knn, { th: 0.7, maxSz: 600, step: 0.05 }));
    const eCdp = expected()["cdp_th0.7_maxsz600"] as Expected;
    close(evaluateAll(gt, c), eCdp, 1e-9, "cdp");
    assert.equal(new Set(c).size, eCdp.clusters);
  },
});

Deno.test({
  name: "FastHAC single linkage (cut 0.6 and 0.72) gives the original's partitions exactly",
  ignore: !HAS_SHARED,
  async fn() {
    const features = readFeatures(`${REF}/features/sref.bin`);
    for (const d of ["0.6", "0.72"]) {
      const ours = clusteringToLabels(await fastHac(features, { distance: Number(d), backend: "cpu" }));
      const theirs = relabelDense(readLabels(`${REF}/baseline_pred/fast_hac_single_dist${d}.txt`));
      assert.deepEqual(ours, theirs, `cut ${d}`);
    }
    await assert.rejects(fastHac(features, { distance: 0.7, hmethod: "average" }), /only 'single'/);
  },
});

Deno.test({
  name: "ARO (kNN file in stored order, and exact kNN of the features) within 0.005 of the original",
  ignore: !HAS_SHARED,
  async fn() {
    const { knn, gt } = ref();
    const e = expected()["knn_aro_k80_th0"] as Expected;
    close(evaluateAll(gt, clusteringToLabels(knnAro(knn, { thSim: 0 }))), e, 0.005, "knn_aro");
    const features = readFeatures(`${REF}/features/sref.bin`);
    const viaFeatures = await aro(features, { knn: 80, thSim: 0, backend: "cpu" });
    close(evaluateAll(gt, clusteringToLabels(viaFeatures)), e, 0.005, "aro");
  },
});

Deno.test("KNN-DBSCAN follows sklearn: directed neighbourhoods with self, border points go to the first cluster", () => {
  // 0 → 1 (0.1), 1 → 2 (0.1), 3 → 2 (0.1), 4 → 3 (0.5: beyond eps); min_samples 2.
  const knn: KnnGraph = {
    n: 5,
    k: 2,
    nbrs: new Int32Array([0, 1, 1, 2, 2, -1, 3, 2, 4, 3]),
    dists: new Float32Array([0, 0.1, 0, 0.1, 0, 1, 0, 0.1, 0, 0.5]),
  };
  // Cores (≥ 2 incl. self): 0, 1, 3. Cluster 0 from seed 0: 0 → 1 → 2 (border). Seed 3: core, 2 is taken → {3}.
  assert.deepEqual([...knnDbscan(knn, { eps: 0.25, minSamples: 2 })], [0, 0, 0, 1, -1]);
  // min_samples 1: everyone is core; 4 alone (its only entry is beyond eps).
  assert.deepEqual([...knnDbscan(knn, { eps: 0.25, minSamples: 1 })], [0, 0, 0, 1, 2]);
});

Deno.test({
  name: "Chinese Whispers: deterministic from the seed, labels by node, sensible on ref_synth",
  ignore: !HAS_SHARED,
  fn() {
    const { knn, gt } = ref();
    const a = clusteringToLabels(chineseWhispers(knn, { thSim: 0.6, iters: 20, seed: 42 }));
    const b = clusteringToLabels(chineseWhispers(knn, { thSim: 0.6, iters: 20, seed: 42 }));
    assert.deepEqual(a, b);
    const m = evaluateAll(gt, a);
    assert.ok(m.pairwise.fscore > 0.7 && m.bcubed.fscore > 0.7, `CW F ${m.pairwise.fscore}`);
  },
});

Deno.test("Chinese Whispers on a tiny graph: nodes join the heaviest neighbouring cluster", () => {
  // Two triangles joined by one weak edge (sim 0.61 between 2 and 3).
  const s = (x: number) => 1 - x;
  const knn: KnnGraph = {
    n: 6,
    k: 3,
    nbrs: new Int32Array([1, 2, -1, 0, 2, -1, 0, 1, 3, 4, 5, 2, 3, 5, -1, 3, 4, -1]),
    dists: new Float32Array([s(0.9), s(0.9), 1, s(0.9), s(0.9), 1, s(0.9), s(0.9), s(0.61), s(0.9), s(0.9), s(0.61)]
      .concat([s(0.9), s(0.9), 1, s(0.9), s(0.9), 1])),
  };
  const labels = clusteringToLabels(chineseWhispers(knn, { thSim: 0.6, iters: 10 }));
  assert.deepEqual([...labels], [0, 0, 0, 1, 1, 1]);
});

Deno.test({
  name: "MiniBatchKMeans: deterministic for a seed, recovers ref_synth identities",
  ignore: !HAS_SHARED,
  async fn() {
    const features = readFeatures(`${REF}/features/sref.bin`);
    const { gt } = ref();
    const a = await miniBatchKmeans(features, { nClusters: 60, batchSize: 100, seed: 0 });
    assert.deepEqual(a, await miniBatchKmeans(features, { nClusters: 60, batchSize: 100, seed: 0 }));
    assert.ok(new Set(a).size <= 60);
    const m = evaluateAll(gt, a);
    assert.ok(m.nmi > 0.9, `NMI ${m.nmi}`);
    await assert.rejects(() => miniBatchKmeans(features, { nClusters: 5000, batchSize: 100 }), /n_clusters must be/);
  },
});

Deno.test({
  name: "MiniBatchKMeans: the onnxruntime engine gives the scalar engine's labels (ref_synth, k = 300)",
  ignore: !HAS_SHARED,
  async fn() {
    const features = readFeatures(`${REF}/features/sref.bin`);
    const opts = { nClusters: 300, batchSize: 100, seed: 3, maxIter: 5 };
    const js = await miniBatchKmeans(features, { ...opts, engine: "js" });
    const ort = await miniBatchKmeans(features, { ...opts, engine: "ort" });
    assert.deepEqual(ort, js);
  },
});

Deno.test("MiniBatchKMeans: engines agree on clustered data with duplicate rows and unnormalised scales", async () => {
  // Duplicated rows give exact distance ties (k-means++ can pick the same point twice, then the first centre
  // must win); mixed row scales and an odd dim exercise the error bounds and the SGEMM's remainder loop.
  const n = 1500, dim = 19, rng = Mt19937.numpy(7);
  const data = new Float32Array(n * dim);
  const centres = Array.from({ length: 12 }, () => Array.from({ length: dim }, () => rng.randomSample() * 2 - 1));
  for (let i = 0; i < n; i++) {
    if (i % 5 === 4) {
      data.copyWithin(i * dim, (i - 3) * dim, (i - 2) * dim);
      continue;
    }
    const c = centres[rng.randint(0, centres.length)]!, scale = 0.5 + 3 * rng.randomSample();
    for (let t = 0; t < dim; t++) data[i * dim + t] = scale * (c[t]! + 0.15 * (rng.randomSample() - 0.5));
  }
  const features = { data, n, dim };
  for (const opts of [{ nClusters: 40, batchSize: 50 }, { nClusters: 200, batchSize: 30, maxIter: 3 }]) {
    const js = await miniBatchKmeans(features, { ...opts, engine: "js" });
    const ort = await miniBatchKmeans(features, { ...opts, engine: "ort" });
    assert.deepEqual(ort, js, JSON.stringify(opts));
    assert.deepEqual(await miniBatchKmeans(features, opts), js);
  }
  // more centres than distinct points: once every point is a centre the potential is 0, k-means++ keeps drawing
  // the sample's first row, and the rows equal to it are exactly as far from several centres
  const distinct = 20, copies = 9, few = new Float32Array(distinct * copies * dim);
  for (let i = 0; i < distinct * copies; i++) {
    const src = Math.floor((i % distinct) * 5 / 4); // rows i % 5 == 4 are copies, skip them
    few.set(data.subarray(src * dim, src * dim + dim), i * dim);
  }
  const fewFeatures = { data: few, n: distinct * copies, dim }, opts = { nClusters: 25, batchSize: 20 };
  const js = await miniBatchKmeans(fewFeatures, { ...opts, engine: "js" });
  assert.deepEqual(await miniBatchKmeans(fewFeatures, { ...opts, engine: "ort" }), js);
  assert.ok(new Set(js).size <= distinct);
});

Deno.test("MiniBatchKMeans onnxruntime products: within gemmErrorBound, row-minimum candidates in row order", async () => {
  const dim = 37, m = 50, n = 70, rng = Mt19937.numpy(11);
  const a = Float32Array.from({ length: m * dim }, () => 4 * rng.randomSample() - 2);
  const b = Float32Array.from({ length: n * dim }, () => 2 * rng.randomSample() - 1);
  const bias = Float32Array.from({ length: n }, () => 10 * rng.randomSample());
  const norm = (v: Float32Array, i: number) => Math.hypot(...v.subarray(i * dim, i * dim + dim));
  const gemm = await ScaledGemmOrt.create(dim, { alpha: -2 });
  const near = await RowMinCandidatesOrt.create(dim, { alpha: -2 });
  try {
    const s = await gemm.run(a, b, bias);
    assert.equal(s.length, m * n);
    let worst = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let t = 0; t < dim; t++) dot += a[i * dim + t]! * b[j * dim + t]!;
        const err = Math.abs(s[i * n + j]! - (bias[j]! - 2 * dot));
        const bound = gemmErrorBound(dim, bias[j]!, 2 * norm(a, i) * norm(b, j));
        assert.ok(err <= bound, `entry ${i},${j}: error ${err} above its bound ${bound}`);
        worst = Math.max(worst, err / bound);
      }
    }
    assert.ok(worst > 1e-4, "the products should carry some float32 rounding"); // i.e. S is really float32
    const margin = Float32Array.from({ length: m }, (_, i) => (i % 3 === 0 ? 0 : 1.5));
    const got = await near.run(a, { b, bias, margin });
    const rows: number[] = [], cols: number[] = [];
    for (let i = 0; i < m; i++) {
      const row = s.subarray(i * n, i * n + n);
      const limit = Math.fround(Math.min(...row) + margin[i]!);
      row.forEach((v, j) => {
        if (v <= limit) rows.push(i), cols.push(j);
      });
    }
    assert.ok(cols.length > m + 10, "some rows should have several candidates");
    assert.deepEqual([...got.rows], rows);
    assert.deepEqual([...got.cols], cols);
  } finally {
    await gemm.release();
    await near.release();
  }
});

Deno.test("output folder names follow tools/baseline_cluster.py", () => {
  const p = { ...BASELINE_DEFAULTS };
  assert.equal(baselineParamString({ ...p, method: "aro", th_sim: 0 }), "k_80_th_0.0");
  assert.equal(
    baselineParamString({ ...p, method: "knn_dbscan", eps: 0.25, min_samples: 1, th_sim: 0 }),
    "eps_0.25_min_1_faiss_k_80_th_0.0",
  );
  assert.equal(baselineParamString({ ...p, method: "fast_hac", distance: 0.72 }), "dist_0.72_hmethod_single");
  assert.equal(
    baselineParamString({ ...p, method: "mini_batch_kmeans", n_clusters: 8573, batch_size: 1000 }),
    "n_8573_bs_1000",
  );
  assert.equal(baselineParamString({ ...p, method: "chinese_whispers", th_sim: 0.6 }), "faiss_k_80_th_0.6_iters_20");
});

Deno.test({
  name: "baseline CLI writes <oprefix>/<name>_<method>_<params>/pred_labels.txt with metrics",
  ignore: !HAS_SHARED,
  async fn() {
    const out = tempDir();
    const args = ["--method", "knn_dbscan", "--prefix", REF, "--name", "sref", "--oprefix", out];
    const r = await runStage("baseline.ts", [...args, "--eps", "0.25", "--min-samples", "1", "--th-sim", "0"]);
    assert.equal(r.code, 0, r.stderr);
    const file = join(out, "sref_knn_dbscan_eps_0.25_min_1_faiss_k_80_th_0.0", "pred_labels.txt");
    const side = JSON.parse(Deno.readTextFileSync(`${file}.meta.json`));
    const e = expected()["knn_dbscan_eps0.25_min1"] as Expected;
    assert.ok(Math.abs(side.metrics.pairwise.fscore - e.pairwise[2]!) < 1e-9);
    assert.equal(readLabels(file).length, 4287);
    const bad = await runStage("baseline.ts", [...args.slice(0, 1), "kmeans", ...args.slice(2)]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--method must be one of/);
    Deno.removeSync(out, { recursive: true });
  },
});

Deno.test("knnToCsr: scipy's matrix — self and padding dropped, threshold kept inclusive, duplicates summed, sorted", () => {
  // 3 nodes, k 4; row 0 lists neighbour 2 twice (summed), row 1 has padding and an entry below the threshold, row 2
  // lists node 0 twice with only the first at or above it (not summed)
  const knn: KnnGraph = {
    n: 3,
    k: 4,
    nbrs: Int32Array.from([0, 2, 1, 2, 1, 0, -1, 2, 2, 1, 0, 0]),
    dists: Float32Array.from([0, 0.25, 0.5, 0.375, 0, 0.125, 1, 0.75, 0, 0.5, 0.5, 0.625]),
  };
  const sim = knnToCsr(knn, { th: 0.5, useSim: true });
  assert.deepEqual([...sim.indptr], [0, 2, 3, 5]);
  assert.deepEqual([...sim.indices], [1, 2, 0, 0, 1]);
  assert.deepEqual([...sim.data], [0.5, 0.75 + 0.625, 0.875, 0.5, 0.5]);
  const dist = knnToCsr(knn, { th: 0.5, useSim: false }); // distances ≥ 0.5; row 2 lists node 0 twice, both kept
  assert.deepEqual([...dist.indptr], [0, 1, 2, 4]);
  assert.deepEqual([...dist.indices], [1, 2, 0, 1]);
  assert.deepEqual([...dist.data], [0.5, 0.75, 1.125, 0.5]);
});

Deno.test({
  name: "baseline infomap: the stage's labels, codelength (= the map equation of its labels) and folder name",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    try {
      const args = ["--method", "infomap", "--prefix", REF, "--name", "sref", "--oprefix", dir, "--th-sim", "0.5"];
      const r = await runStage("baseline.ts", args);
      assert.equal(r.code, 0, r.stderr);
      const folder = join(dir, "sref_infomap_faiss_k_80_th_0.5_trials_1");
      const labels = readLabels(join(folder, "pred_labels.txt"));
      const side = JSON.parse(Deno.readTextFileSync(join(folder, "pred_labels.txt.meta.json")));
      const graph = knnSimilarityGraph(readKnn(`${REF}/knns/sref/faiss_k_80.npz`), { thSim: 0.5 });
      assert.ok(Math.abs(side.infomap.codelength_bits - mapEquation(graph, labels)) < 1e-9);
      assert.ok(side.infomap.codelength_bits < side.infomap.one_module_codelength_bits);
      assert.equal(side.infomap.links, graph.indices.length / 2);
      const m = evaluateAll(readLabels(`${REF}/labels/sref.meta`), labels);
      assert.ok(m.pairwise.fscore > 0.8, `pairwise F ${m.pairwise.fscore}`);
      assert.equal(
        baselineParamString({ ...BASELINE_DEFAULTS, method: "infomap", th_sim: 0.5 }),
        "faiss_k_80_th_0.5_trials_1",
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
