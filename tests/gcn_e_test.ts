import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type Features, l2NormalizeRows, readFeatures } from "../shared/features.ts";
import { type KnnGraph, readKnn } from "../shared/knn_file.ts";
import { readLabels } from "../shared/meta.ts";
import { NpzFile } from "../shared/npy.ts";
import { Rng } from "../shared/random.ts";
import { knnJs } from "../gpu/knn/cpu_js.ts";
import {
  arrayName,
  directionFirstLayer,
  firstLayerTable,
  forward,
  gcnEConfig,
  initWeights,
  loadVeGcnCheckpoint,
  paramList,
  paramSpecs,
  sgdStep,
} from "../gpu/vegcn/mod.ts";
import { gcnAdjacency, orderedNeighbours, peaksToLabels, testGcnV } from "../cluster/gcn_v.ts";
import {
  candidateSet,
  connectionsToPeaks,
  ignoreSet,
  predictConnections,
  stackSubgraphs,
  SubgraphBuilder,
  subgraphGradients,
  testGcnE,
  trainGcnE,
} from "../cluster/gcn_e.ts";
import { REF, SHARED, throwsWith } from "./_helpers.ts";

const GV = `${SHARED}/fixtures/gcn_v`;
const HAS_GE = existsSync(`${GV}/gcn_e_case.npz`) && existsSync(`${REF}/features/sref.bin`);
if (!HAS_GE) console.error(`note: ${GV} is absent; GCN-E differential tests are skipped`);

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!)), s = Math.max(s, Math.abs(b[i]!));
  return s === 0 ? d : d / s;
}

function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function numbers(a: unknown): number[] {
  return Array.from(a as ArrayLike<number>, Number);
}

let cached: Promise<Awaited<ReturnType<typeof loadFixture>>> | null = null;
/** The GCN-E fixture with its inputs: GCN-V features recomputed from gcn_v_zip.pth (the fixture keeps 1 row in 17). */
function fixture() {
  return cached ??= loadFixture();
}
async function loadFixture() {
  const z = new NpzFile(`${GV}/gcn_e_case.npz`);
  const sref = readFeatures(`${REF}/features/sref.bin`);
  const gt = readLabels(`${REF}/labels/sref.meta`);
  const gcnV = loadVeGcnCheckpoint(`${GV}/gcn_v_zip.pth`, { kind: "gcn-v", featureDim: 256 }).weights;
  const v = await testGcnV({ features: sref, knn: readKnn(`${REF}/knns/sref/faiss_k_80.npz`), weights: gcnV });
  const data = v.gcnFeatures.slice();
  l2NormalizeRows(data, sref.n, 512);
  const features: Features = { data, n: sref.n, dim: 512 };
  const confs = new NpzFile(`${GV}/gcnv_pred_confs.npz`).get("pred_confs").data as Float32Array;
  const knn = readKnn(`${GV}/gcnv_faiss_k_160.npz`);
  const weights = () => loadVeGcnCheckpoint(`${GV}/gcn_e_zip.pth`, { kind: "gcn-e", featureDim: 512 }).weights;
  const set = candidateSet(orderedNeighbours(knn), confs, { ignoreRatio: 0.8 });
  const builder = new SubgraphBuilder(set, { features, adjacency: gcnAdjacency(knn), labels: gt });
  const f32 = (k: string) => z.get(k).data as Float32Array;
  return { z, gt, features, confs, knn, weights, set, builder, f32, ints: (k: string) => numbers(z.get(k).data) };
}

Deno.test({
  name: "gcn-e: the original's .pth loads unchanged; wrong checkpoints and inputs are clear errors",
  ignore: !HAS_GE,
  async fn() {
    const fx = await fixture();
    const w = fx.weights();
    assert.deepEqual(w.config, gcnEConfig(512, 512));
    const specs = paramSpecs(w.config);
    paramList(w).forEach((a, i) => assert.deepEqual(a, fx.f32(`w_${arrayName(specs[i]!.name)}`), specs[i]!.name));
    throwsWith(() => loadVeGcnCheckpoint(`${GV}/gcn_v_zip.pth`, { kind: "gcn-e" }), "GCN-V checkpoint", "not a GCN-E");
    throwsWith(
      () => loadVeGcnCheckpoint(`${SHARED}/fixtures/gcn_d/gcn_d_legacy.pth`, { kind: "gcn-e" }),
      "gcn_d_legacy.pth",
      "GCN-D checkpoint",
    );
    throwsWith(() => loadVeGcnCheckpoint(`${GV}/gcn_e_zip.pth`, { kind: "gcn-e", featureDim: 256 }), "512-d", "256-d");
    const sref = readFeatures(`${REF}/features/sref.bin`);
    await assert.rejects(
      () => testGcnE({ features: sref, knn: fx.knn, confs: fx.confs, weights: w, paths: { features: "sref.bin" } }),
      /sref\.bin: 256-d, but the GCN-E model expects 512-d/,
    );
    await assert.rejects(
      () => testGcnE({ features: fx.features, knn: fx.knn, confs: fx.confs.subarray(1), weights: w }),
      /4286 values, but the features have 4287 rows/,
    );
  },
});

Deno.test({
  name: "gcn-e: subset, ignore set and direct peaks equal the original's; the first subgraphs match it",
  ignore: !HAS_GE,
  async fn() {
    const fx = await fixture();
    const { set } = fx;
    assert.equal(set.subsetIdxs.length, fx.ints("n_sub")[0]);
    assert.deepEqual(numbers(set.subsetIdxs), fx.ints("subset_idxs"));
    const ignored = numbers(set.ignore).flatMap((v, i) => v ? [i] : []);
    assert.deepEqual(ignored, fx.ints("ignore_set"));
    assert.deepEqual(numbers(set.direct.peak), fx.ints("direct_peaks"));
    for (let j = 0; j < 4; j++) {
      const sub = fx.builder.build(j);
      assert.deepEqual(numbers(sub.nbr), fx.ints(`sub${j}_nbr`), `sub${j} candidates`);
      assert.ok(maxAbsErr(sub.feat, fx.f32(`sub${j}_feat`)) < 1e-5, `sub${j} direction features`);
      assert.ok(maxAbsErr(sub.adj, fx.f32(`sub${j}_adj`)) < 1e-5, `sub${j} adjacency`);
      assert.deepEqual(numbers(sub.labels), fx.ints(`sub${j}_lb`), `sub${j} labels`);
    }
  },
});

Deno.test({
  name: "gcn-e: outputs within 1e-5, every connection (first of ties) and the tau 0.8 partition identical",
  ignore: !HAS_GE,
  async fn() {
    const fx = await fixture();
    const weights = fx.weights();
    const r = await testGcnE({
      features: fx.features,
      knn: fx.knn,
      confs: fx.confs,
      weights,
      ignoreRatio: 0.8,
      tau: 0.8,
    });
    const { set, connections } = r;
    for (let j = 0; j < 4; j++) {
      const mine = connections.scores.subarray(set.candPtr[j]!, set.candPtr[j + 1]!);
      assert.ok(maxAbsErr(mine, fx.f32(`sub${j}_out`)) < 1e-5, `sub${j} log P(connect)`);
    }
    assert.deepEqual(numbers(connections.conns), fx.ints("conns"));
    assert.deepEqual(numbers(r.labels), fx.ints("labels"));
    // the original's way (direction features formed, then the full first layer) gives the same scores
    const head = new SubgraphBuilder({ ...set, subsetIdxs: set.subsetIdxs.subarray(0, 40) }, fx.builder.inputs);
    const direct = await predictConnections(weights, head, { firstLayer: "direct" });
    const n40 = set.candPtr[40]!;
    assert.ok(maxAbsErr(direct.scores.subarray(0, n40), connections.scores.subarray(0, n40)) < 1e-6);
    assert.deepEqual(direct.conns, connections.conns.subarray(0, 40));
  },
});

Deno.test({
  name: "gcn-e: NLL losses, gradients summed over four subgraphs and one SGD step within 1e-5 relative",
  ignore: !HAS_GE,
  async fn() {
    const fx = await fixture();
    const weights = fx.weights();
    const subs = [0, 1, 2, 3].map((j) => fx.builder.build(j));
    const { losses, grads } = await subgraphGradients(weights, subs);
    const want = numbers(fx.z.get("losses").data);
    losses.forEach((l, j) => assert.ok(Math.abs(l - want[j]!) <= 1e-5 * want[j]!, `loss ${j}: ${l} vs ${want[j]}`));
    const specs = paramSpecs(weights.config);
    paramList(grads).forEach((g, i) => {
      const e = relErr(g, fx.f32(`grad_${arrayName(specs[i]!.name)}`));
      assert.ok(e < 1e-5, `grad ${specs[i]!.name}: ${e}`);
    });
    sgdStep(weights, grads, { momentum: null, steps: 0 }, { lr: 0.1, momentum: 0.9, weightDecay: 1e-5 });
    paramList(weights).forEach((w, i) => {
      const e = relErr(w, fx.f32(`step1_${arrayName(specs[i]!.name)}`));
      assert.ok(e < 1e-5, `step1 ${specs[i]!.name}: ${e}`);
    });
  },
});

Deno.test("gcn-e: ignore set takes int(N·ratio) smallest (ties: lower id); candidate split follows the original", () => {
  assert.deepEqual(numbers(ignoreSet([0.5, 0.1, 0.5, 0.9, 0.5], 0.6)), [1, 1, 1, 0, 0]);
  assert.deepEqual(numbers(ignoreSet([0.5, 0.1, 0.5, 0.9, 0.5], 0.6, { smallest: false })), [1, 0, 1, 1, 0]);
  assert.deepEqual(numbers(ignoreSet([0.3, 0.2], 1)), [1, 1]);
  throwsWith(() => ignoreSet([0.3], 1.5), "ignore_ratio");
  // node 0: top (root); 1: one candidate (0) → direct; 2: three candidates but ignored → direct to the nearest (3);
  // 3: two candidates, not ignored → subgraph [1, 0] in ascending distance; 4: ignored → direct to 2
  const knn: KnnGraph = {
    n: 5,
    k: 4,
    nbrs: Int32Array.from([0, 1, 2, 3, 1, 0, 2, 4, 2, 3, 0, 1, 3, 1, 4, 0, 4, 2, 3, 0]),
    dists: Float32Array.from([0, .1, .2, .3, 0, .1, .2, .3, 0, .1, .2, .3, 0, .1, .2, .3, 0, .1, .2, .3]),
  };
  const conf = [0.9, 0.8, 0.2, 0.5, 0.1];
  const set = candidateSet(knn, conf, { ignoreRatio: 0.4 }); // ignores 4 and 2
  assert.deepEqual(numbers(set.ignore), [0, 0, 1, 0, 1]);
  assert.deepEqual(numbers(set.subsetIdxs), [3]);
  assert.deepEqual(numbers(set.cand), [1, 0]);
  assert.deepEqual(numbers(set.candDist), [Math.fround(0.1), Math.fround(0.3)]);
  assert.deepEqual(numbers(set.direct.peak), [-1, 0, 3, -1, 2]);
  // connection 1 of subgraph 3 = node 0 at 0.3: tau 0.75 cuts it (0.3 ≥ 0.25), tau 0.6 keeps it
  const peaks = connectionsToPeaks(set, { conns: Int32Array.from([1]), maxConn: 1, scores: new Float32Array(2) });
  assert.deepEqual(numbers(peaks.peak), [-1, 0, 3, 0, 2]);
  assert.deepEqual(numbers(peaksToLabels(peaks, { tau: 0.75 })), [0, 0, 1, 1, 1]);
  assert.deepEqual(numbers(peaksToLabels(peaks, { tau: 0.6 })), [0, 0, 0, 0, 0]);
});

/** A small labelled problem: features near one of `classes` axes, their exact kNN, and made-up confidences. */
function smallProblem(n: number, dim: number, k: number, seed: number) {
  const rng = new Rng(seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) data[i * dim + j] = (j === labels[i]! ? 2 : 0) + rng.normal() * 0.7;
  }
  l2NormalizeRows(data, n, dim);
  const r = knnJs({ data, n, dim }, { data, n, dim }, k);
  const confs = Float32Array.from({ length: n }, () => rng.next());
  return { features: { data, n, dim }, knn: { n, k, nbrs: r.nbrs, dists: r.dists }, labels, confs };
}

Deno.test("gcn-e: the first-layer table equals forming the direction features", async () => {
  const p = smallProblem(50, 12, 10, 3);
  const w = initWeights(gcnEConfig(12, 16), new Rng(5));
  const set = candidateSet(p.knn, p.confs, { ignoreRatio: 0 });
  const builder = new SubgraphBuilder(set, { features: p.features, adjacency: gcnAdjacency(p.knn) });
  assert.ok(builder.count > 10);
  const subs = Array.from({ length: builder.count }, (_, s) => builder.build(s));
  const batch = stackSubgraphs(subs, 12);
  const full = await forward(w, batch);
  const ids = Int32Array.from({ length: 50 }, (_, i) => i);
  const table = await firstLayerTable(w, { features: p.features.data, n: 50, ids });
  const h1 = directionFirstLayer(w, table, subs.map((g) => ({ centre: g.node, nbr: g.nbr, adj: g.adj })));
  assert.ok(maxAbsErr(h1, full.conv[0]!) < 1e-6);
  const rest = await forward(w, { x: h1, agg: batch.agg }, { inference: true, fromLayer: 1 });
  assert.ok(maxAbsErr(rest.out, full.out) < 1e-6);
});

Deno.test("gcn-e: training on a small problem lowers the loss and is deterministic", async () => {
  const p = smallProblem(80, 12, 12, 8);
  const schedule = {
    epochs: 30,
    lr: 0.02,
    momentum: 0.9,
    weightDecay: 1e-5,
    lrSteps: [24],
    lrGamma: 0.1,
    iterSize: 2,
    ignoreRatio: 0.2,
    seed: 42,
  };
  const run = () => trainGcnE({ ...p, confs: p.confs, weights: initWeights(gcnEConfig(12, 16), new Rng(2)), schedule });
  const a = await run(), b = await run();
  assert.ok(a.epochLosses[29]! < 0.7 * a.epochLosses[0]!, `loss ${a.epochLosses[0]} → ${a.epochLosses[29]}`);
  assert.deepEqual(a.epochLosses, b.epochLosses);
  assert.deepEqual(a.weights, b.weights);
  assert.equal(a.state.steps, 30 * Math.ceil(candidateSet(p.knn, p.confs, { ignoreRatio: 0.2 }).subsetIdxs.length / 2));
});
