import assert from "node:assert/strict";
import { getGpu } from "../gpu/device.ts";
import { knnJs } from "../gpu/knn/cpu_js.ts";
import { l2NormalizeRows } from "../shared/features.ts";
import { Rng } from "../shared/random.ts";
import {
  backward,
  CsrAggregator,
  forward,
  gcnEConfig,
  gcnVConfig,
  GpuCsrAggregator,
  initWeights,
  mseGradients,
  mseLoss,
  paramList,
  tsKernels,
  WebGpuKernels,
} from "../gpu/vegcn/mod.ts";
import { gcnAdjacency, testGcnV } from "../cluster/gcn_v.ts";
import { testGcnE } from "../cluster/gcn_e.ts";

const HAS_WEBGPU = !!(globalThis.navigator as Navigator | undefined)?.gpu;

function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** A small kNN graph (exact kNN of random unit vectors) and its GCN adjacency. */
function smallGraph(n: number, dim: number, k: number, seed: number) {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: n * dim }, () => rng.normal());
  l2NormalizeRows(data, n, dim);
  const r = knnJs({ data, n, dim }, { data, n, dim }, k);
  return { data, adjacency: gcnAdjacency({ n, k, nbrs: r.nbrs, dists: r.dists }) };
}

Deno.test({
  name: "vegcn webgpu: the WGSL sparse aggregation (A·X and Aᵀ·Y) equals the CPU twin",
  ignore: !HAS_WEBGPU,
  async fn() {
    const gpu = await getGpu();
    if (!gpu) return; // navigator.gpu without an adapter: nothing to compare
    const { adjacency } = smallGraph(150, 8, 7, 1);
    const rng = new Rng(2);
    const cpu = new CsrAggregator(adjacency);
    const agg = await GpuCsrAggregator.create(gpu, adjacency);
    for (const width of [1, 5, 64, 70]) {
      const x = Float32Array.from({ length: 150 * width }, () => rng.normal());
      assert.ok(maxAbsErr(await agg.apply(x, width), await cpu.apply(x, width)) < 1e-5, `A·X width ${width}`);
      const t = await agg.applyTransposed(x, width);
      assert.ok(maxAbsErr(t, await cpu.applyTransposed(x, width)) < 1e-5, `Aᵀ·Y width ${width}`);
    }
    agg.dispose();
  },
});

Deno.test({
  name: "vegcn webgpu: forward and backward (two GraphConv layers) with the WGSL aggregation equal the CPU twin",
  ignore: !HAS_WEBGPU,
  async fn() {
    const gpu = await getGpu();
    if (!gpu) return;
    const n = 120, dim = 16;
    const { data, adjacency } = smallGraph(n, dim, 6, 3);
    // two GraphConv layers, so the backward pass goes through Aᵀ too
    const w = initWeights({ ...gcnVConfig(dim, 24), convDims: [24, 12] }, new Rng(4));
    const target = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const runs: { out: Float32Array; grads: Float32Array[] }[] = [];
    for (const agg of [new CsrAggregator(adjacency), await GpuCsrAggregator.create(gpu, adjacency)]) {
      const cache = await forward(w, { x: data, agg });
      const { dOut } = mseLoss(cache.out, target);
      runs.push({ out: cache.out, grads: paramList(await backward(w, { cache, agg, dOut })) });
    }
    assert.ok(maxAbsErr(runs[0]!.out, runs[1]!.out) < 1e-5);
    runs[0]!.grads.forEach((g, i) => assert.ok(maxAbsErr(g, runs[1]!.grads[i]!) < 1e-5, `grad ${i}`));
  },
});

Deno.test({
  name: "vegcn webgpu: the dense products (three transpose cases) equal the TypeScript kernels",
  ignore: !HAS_WEBGPU,
  async fn() {
    const gpu = await getGpu();
    if (!gpu) return;
    const kernels = await WebGpuKernels.create(gpu);
    const rng = new Rng(6);
    for (const [m, k, n] of [[1, 1, 1], [70, 33, 5], [130, 65, 97]] as const) {
      for (const flags of [{}, { transA: true }, { transB: true }, { transA: true, transB: true }]) {
        const a = Float32Array.from({ length: m * k }, () => rng.normal());
        const b = Float32Array.from({ length: k * n }, () => rng.normal());
        const shape = { m, k, n, ...flags };
        const e = maxAbsErr(await kernels.matmul(a, b, shape), await tsKernels.matmul(a, b, shape));
        assert.ok(e < 1e-4, `${m}×${k}×${n} ${JSON.stringify(flags)}: ${e}`);
      }
    }
  },
});

Deno.test({
  name: "vegcn webgpu: inference's last layers on the device (several row blocks) equal the CPU twin's forward",
  ignore: !HAS_WEBGPU,
  async fn() {
    const gpu = await getGpu();
    if (!gpu) return;
    const n = 300, dim = 16, k = 8;
    const { data, adjacency } = smallGraph(n, dim, k, 21);
    // 64-row blocks: 300 rows take five, the last one partial; outputs land at each block's offset
    const kernels = await WebGpuKernels.create(gpu, { blockBytes: 64 * 2 * 32 * 4 });
    for (const cfg of [gcnVConfig(dim, 32), gcnEConfig(dim, 32)]) {
      const weights = initWeights(cfg, new Rng(4));
      // non-zero biases, so a block that skipped its bias or activation shows
      for (const p of paramList(weights)) if (p.length <= 32) p.forEach((_, i) => (p[i] = 0.05 * (i % 7) - 0.1));
      const want = await forward(weights, { x: data, agg: new CsrAggregator(adjacency) }, { inference: true });
      const onDevice = await GpuCsrAggregator.create(gpu, adjacency);
      for (const agg of [onDevice, new CsrAggregator(adjacency)]) {
        const got = await forward(weights, { x: data, agg }, { kernels, inference: true });
        const last = cfg.convDims.length - 1;
        assert.equal(got.out.length, n * cfg.classes);
        assert.ok(maxAbsErr(want.out, got.out) < 1e-5, `${cfg.kind} outputs`);
        assert.ok(maxAbsErr(want.conv[last]!, got.conv[last]!) < 1e-5, `${cfg.kind} features`);
        assert.ok(got.out.some((v) => v !== 0) && got.conv[last]!.some((v) => v === 0), "ReLU zeros and outputs");
        const noFeatures = await forward(weights, { x: data, agg }, { kernels, inference: true, keepFeatures: false });
        assert.deepEqual(noFeatures.out, got.out);
        assert.equal(noFeatures.conv[last]!.length, 0);
      }
      onDevice.dispose();
    }
  },
});

Deno.test({
  name: "vegcn webgpu: a GCN-V training iteration with the graph resident equals the CPU twin's loss and gradients",
  ignore: !HAS_WEBGPU,
  async fn() {
    const gpu = await getGpu();
    if (!gpu) return;
    const n = 300, dim = 16, k = 8;
    const { data, adjacency } = smallGraph(n, dim, k, 31);
    const rng = new Rng(5);
    const target = Float32Array.from({ length: n }, () => rng.next());
    // 64-row slices: the weight gradients are summed from five partials (the last one partial)
    const kernels = await WebGpuKernels.create(gpu, { sliceRows: 64 });
    const onDevice = await GpuCsrAggregator.create(gpu, adjacency);
    const weights = initWeights(gcnVConfig(dim, 32), new Rng(6));
    for (const p of paramList(weights)) if (p.length <= 32) p.forEach((_, i) => (p[i] = 0.03 * (i % 5) - 0.05));
    // the CPU twin, product by product
    const cache = await forward(weights, { x: data, agg: new CsrAggregator(adjacency) });
    const want = mseLoss(cache.out, target);
    const wantGrads = await backward(weights, { cache, agg: new CsrAggregator(adjacency), dOut: want.dOut });
    const input = { x: data, agg: onDevice, target };
    const resident = await kernels.mseGradients(weights, input);
    assert.ok(resident, "the resident path applies to GCN-V on a device aggregation");
    // the hook through the library entry point, twice (the second reuses the resident graph)
    for (const got of [resident, await mseGradients(weights, input, { kernels })]) {
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * want.loss, `loss ${got.loss} vs ${want.loss}`);
      paramList(wantGrads).forEach((g, i) => {
        const scale = Math.max(...Array.from(g, Math.abs));
        assert.ok(scale > 0, `gradient ${i} is not all zero`);
        assert.ok(maxAbsErr(g, paramList(got.grads)[i]!) <= 1e-5 * scale, `gradient ${i}`);
      });
    }
    // one slice (the default size at 300 rows) gives the same within float32 rounding
    const whole = await (await WebGpuKernels.create(gpu)).mseGradients(weights, input);
    paramList(whole!.grads).forEach((g, i) => {
      const ref = paramList(wantGrads)[i]!;
      assert.ok(maxAbsErr(g, ref) <= 1e-5 * Math.max(...Array.from(ref, Math.abs)), `gradient ${i}, one slice`);
    });
    // shapes it does not cover fall back (null): two GraphConvs, or an aggregation on the host
    assert.equal(await kernels.mseGradients(initWeights(gcnEConfig(dim, 32), new Rng(1)), input), null);
    assert.equal(await kernels.mseGradients(weights, { ...input, agg: new CsrAggregator(adjacency) }), null);
    onDevice.dispose();
  },
});

Deno.test({
  name: "vegcn webgpu: testGcnV and testGcnE on WebGPU give the CPU twin's confidences, connections and labels",
  ignore: !HAS_WEBGPU,
  async fn() {
    const gpu = await getGpu();
    if (!gpu) return;
    const n = 90, dim = 16, k = 8;
    const rng = new Rng(12);
    const data = Float32Array.from(
      { length: n * dim },
      (_, i) => (i % dim === (i / dim | 0) % 3 ? 2 : 0) + rng.normal(),
    );
    l2NormalizeRows(data, n, dim);
    const r = knnJs({ data, n, dim }, { data, n, dim }, k);
    const knn = { n, k, nbrs: r.nbrs, dists: r.dists };
    const wv = initWeights(gcnVConfig(dim, 32), new Rng(1));
    const run = (backend: "cpu" | "webgpu") =>
      testGcnV({ features: { data, n, dim }, knn, weights: wv, backend, tau0: 0.5, useGcnFeat: false });
    const cpu = await run("cpu"), web = await run("webgpu");
    assert.match(web.backend, /^webgpu/);
    assert.ok(maxAbsErr(cpu.predConfs, web.predConfs) < 1e-5);
    assert.ok(maxAbsErr(cpu.gcnFeatures, web.gcnFeatures) < 1e-5);
    assert.deepEqual(cpu.labels, web.labels);
    const feats = cpu.gcnFeatures.slice();
    l2NormalizeRows(feats, n, 32);
    const we = initWeights(gcnEConfig(32, 16), new Rng(2));
    const inputs = { features: { data: feats, n, dim: 32 }, knn, confs: cpu.predConfs, weights: we, ignoreRatio: 0.3 };
    const e1 = await testGcnE({ ...inputs, backend: "cpu" }), e2 = await testGcnE({ ...inputs, backend: "webgpu" });
    assert.ok(e1.set.subsetIdxs.length > 5);
    assert.ok(maxAbsErr(e1.connections.scores, e2.connections.scores) < 1e-5);
    assert.deepEqual(e1.connections.conns, e2.connections.conns);
    assert.deepEqual(e1.labels, e2.labels);
  },
});
