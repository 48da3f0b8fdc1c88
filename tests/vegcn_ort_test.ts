import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type Features, l2NormalizeRows, readFeatures } from "../shared/features.ts";
import { readKnn } from "../shared/knn_file.ts";
import { readLabels } from "../shared/meta.ts";
import { NpzFile } from "../shared/npy.ts";
import { Rng } from "../shared/random.ts";
import {
  arrayName,
  backward,
  CsrAggregator,
  forward,
  loadVeGcnCheckpoint,
  mseLoss,
  OrtKernels,
  paramList,
  paramSpecs,
  tsKernels,
  veGcnBackend,
} from "../gpu/vegcn/mod.ts";
import { gcnAdjacency, orderedNeighbours } from "../cluster/gcn_v.ts";
import { candidateSet, stackSubgraphs, SubgraphBuilder, subgraphGradients } from "../cluster/gcn_e.ts";
import { tryLoadOrt } from "../gpu/ort.ts";
import { REF, SHARED } from "./_helpers.ts";

const GV = `${SHARED}/fixtures/gcn_v`;
const HAS_GV = existsSync(`${GV}/gcn_v_case.npz`) && existsSync(`${REF}/features/sref.bin`);
const HAS_ORT = (await tryLoadOrt()) !== null;
if (!HAS_ORT) console.error("note: onnxruntime does not load here; the onnxruntime twin tests are skipped");

/** Normwise relative error max|a − b| / max|b|. */
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

function randomMatrix(rng: Rng, n: number, zeros = 0): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() < zeros ? 0 : rng.normal());
}

Deno.test({
  name: "vegcn onnxruntime: the three product cases (and parts of a tall product) equal the TypeScript products",
  ignore: !HAS_ORT,
  async fn() {
    // parts of 1,000 output values: the larger products run in several parts, joined in order
    const ort = await OrtKernels.create({ partValues: 1000 });
    assert.match(ort.name, /^cpu \(onnxruntime/);
    const rng = new Rng(3);
    for (const [m, k, n] of [[7, 5, 3], [300, 64, 40], [2001, 16, 256]] as const) {
      const a = randomMatrix(rng, m * k, 0.5), b = randomMatrix(rng, k * n);
      const nn = await ort.matmul(a, b, { m, k, n });
      assert.ok(relErr(nn, await tsKernels.matmul(a, b, { m, k, n })) < 1e-5, `nn ${m}×${k}·${k}×${n}`);
      const bt = randomMatrix(rng, n * k);
      const nt = await ort.matmul(a, bt, { m, k, n, transB: true });
      assert.ok(relErr(nt, await tsKernels.matmul(a, bt, { m, k, n, transB: true })) < 1e-5, `nt ${m}`);
      // aᵀ·c with a stored m × k: a k × n weight-sized result summed over m rows
      const c = randomMatrix(rng, m * n);
      const tn = await ort.matmul(a, c, { m: k, k: m, n, transA: true });
      assert.ok(relErr(tn, await tsKernels.matmul(a, c, { m: k, k: m, n, transA: true })) < 1e-5, `tn ${m}`);
    }
    assert.deepEqual(
      await ort.matmul(new Float32Array(0), new Float32Array(6), { m: 0, k: 2, n: 3 }),
      new Float32Array(0),
    );
  },
});

Deno.test({
  name: "vegcn onnxruntime: the CPU twin is onnxruntime where it loads",
  ignore: !HAS_ORT,
  async fn() {
    const b = await veGcnBackend("cpu");
    assert.match(b.label, /^cpu \(onnxruntime/);
    assert.ok(b.kernels instanceof OrtKernels);
  },
});

Deno.test({
  name: "vegcn onnxruntime: GCN-V prediction and features (fused last layers) within 1e-5 of the original's",
  ignore: !HAS_ORT || !HAS_GV,
  async fn() {
    const z = new NpzFile(`${GV}/gcn_v_case.npz`);
    const features = readFeatures(`${REF}/features/sref.bin`);
    const knn = readKnn(`${REF}/knns/sref/faiss_k_80.npz`);
    const weights = loadVeGcnCheckpoint(`${GV}/gcn_v_zip.pth`, { kind: "gcn-v" }).weights;
    const agg = new CsrAggregator(gcnAdjacency(knn));
    // parts of 1,000 rows: the 4,287 rows run in five parts
    const kernels = await OrtKernels.create({ partValues: 512 * 1000 });
    const fused = await forward(weights, { x: features.data, agg }, { kernels, inference: true });
    assert.ok(maxAbsErr(fused.out, z.get("pred").data as Float32Array) < 1e-5, "pred");
    const rows = Array.from(z.get("h_rows").data as BigInt64Array, Number);
    const h = new Float32Array(rows.length * 512);
    rows.forEach((row, q) => h.set(fused.conv[0]!.subarray(row * 512, (row + 1) * 512), q * 512));
    assert.ok(maxAbsErr(h, z.get("h").data as Float32Array) < 1e-5, "h rows");
    // without the features nothing but the prediction comes back
    const lean = await forward(weights, { x: features.data, agg }, { kernels, inference: true, keepFeatures: false });
    assert.deepEqual(lean.out, fused.out);
    assert.equal(lean.conv[0]!.length, 0);
  },
});

Deno.test({
  name: "vegcn onnxruntime: GCN-V loss and every gradient within 1e-5 relative of the original's",
  ignore: !HAS_ORT || !HAS_GV,
  async fn() {
    const z = new NpzFile(`${GV}/gcn_v_case.npz`);
    const features = readFeatures(`${REF}/features/sref.bin`);
    const knn = readKnn(`${REF}/knns/sref/faiss_k_80.npz`);
    const weights = loadVeGcnCheckpoint(`${GV}/gcn_v_zip.pth`, { kind: "gcn-v" }).weights;
    const agg = new CsrAggregator(gcnAdjacency(knn));
    const kernels = await OrtKernels.create();
    const cache = await forward(weights, { x: features.data, agg }, { kernels });
    const { loss, dOut } = mseLoss(cache.out, z.get("conf_gt").data as Float64Array);
    const want = (z.get("loss").data as Float64Array)[0]!;
    assert.ok(Math.abs(loss - want) <= 1e-5 * want, `loss ${loss} vs ${want}`);
    const grads = paramList(await backward(weights, { cache, agg, dOut }, { kernels }));
    paramSpecs(weights.config).forEach((s, i) => {
      const e = relErr(grads[i]!, z.get(`grad_${arrayName(s.name)}`).data as Float32Array);
      assert.ok(e < 1e-5, `grad ${s.name}: ${e}`);
    });
  },
});

Deno.test({
  name: "vegcn onnxruntime: GCN-E subgraph outputs and summed gradients within 1e-5 of the original's",
  ignore: !HAS_ORT || !HAS_GV,
  async fn() {
    const z = new NpzFile(`${GV}/gcn_e_case.npz`);
    const sref = readFeatures(`${REF}/features/sref.bin`);
    const gcnV = loadVeGcnCheckpoint(`${GV}/gcn_v_zip.pth`, { kind: "gcn-v" }).weights;
    const v = await forward(gcnV, {
      x: sref.data,
      agg: new CsrAggregator(gcnAdjacency(readKnn(`${REF}/knns/sref/faiss_k_80.npz`))),
    }, {
      kernels: tsKernels,
      inference: true,
    });
    const data = v.conv[0]!.slice();
    l2NormalizeRows(data, sref.n, 512);
    const features: Features = { data, n: sref.n, dim: 512 };
    const confs = new NpzFile(`${GV}/gcnv_pred_confs.npz`).get("pred_confs").data as Float32Array;
    const knn = readKnn(`${GV}/gcnv_faiss_k_160.npz`);
    const set = candidateSet(orderedNeighbours(knn), confs, { ignoreRatio: 0.8 });
    const builder = new SubgraphBuilder(set, {
      features,
      adjacency: gcnAdjacency(knn),
      labels: readLabels(`${REF}/labels/sref.meta`),
    });
    const weights = loadVeGcnCheckpoint(`${GV}/gcn_e_zip.pth`, { kind: "gcn-e" }).weights;
    const kernels = await OrtKernels.create();
    const subs = [0, 1, 2, 3].map((j) => builder.build(j));
    const batch = stackSubgraphs(subs, 512);
    const out = await forward(weights, batch, { kernels, inference: true });
    batch.blocks.forEach(({ offset, size }, j) => {
      const connect = Float32Array.from({ length: size }, (_, r) => {
        const a = out.out[(offset + r) * 2]!, b = out.out[(offset + r) * 2 + 1]!;
        const m = Math.max(a, b);
        return b - (m + Math.log(Math.exp(a - m) + Math.exp(b - m)));
      });
      assert.ok(maxAbsErr(connect, z.get(`sub${j}_out`).data as Float32Array) < 1e-5, `sub${j} log P(connect)`);
    });
    const { grads } = await subgraphGradients(weights, subs, { kernels });
    paramSpecs(weights.config).forEach((s, i) => {
      const e = relErr(paramList(grads)[i]!, z.get(`grad_${arrayName(s.name)}`).data as Float32Array);
      assert.ok(e < 1e-5, `grad ${s.name}: ${e}`);
    });
  },
});
