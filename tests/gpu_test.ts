/**
 * The shared compute plumbing: gpu/webgpu.ts (compile errors name the kernel, one pipeline per device and
 * specialisation, buffers cut to a binding, read-back), the kNN tile depth as a WGSL `override`, gpu/onnx.ts +
 * gpu/ort.ts (an encoded graph runs with the expected values under the one session rule), and the kNN backend
 * registry (device choice, labels, every exact backend agreeing, indexes by name).
 */
import assert from "node:assert/strict";
import { LtcError } from "../shared/errors.ts";
import { type Features, l2NormalizeRows } from "../shared/features.ts";
import { Rng } from "../shared/random.ts";
import { getGpu } from "../gpu/device.ts";
import { computePipeline, dispatch, readBuffer, uploadBuffer, uploadRowParts } from "../gpu/webgpu.ts";
import { int64Initializer, OnnxType } from "../gpu/onnx.ts";
import { createSession, loadOrt, ortThreads } from "../gpu/ort.ts";
import { EXACT_KNN_BACKENDS, hnswKnn, openExactBackend, openKnnIndex } from "../gpu/knn/mod.ts";
import { knnWebGpu, pairsWebGpu } from "../gpu/knn/webgpu.ts";

const gpu = await getGpu();

/** Seeded rows in [−0.5, 0.5) from the tool's generator, L2-normalised. */
function randomRows(n: number, dim: number, seed: number): Features {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: n * dim }, () => rng.next() - 0.5);
  l2NormalizeRows(data, n, dim);
  return { data, n, dim };
}

const OVERRIDE_KERNEL = `
override N: u32 = 1u;
@group(0) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(1)
fn main() {
  o[0] = N;
}`;

Deno.test({
  name: "webgpu: a shader error throws naming the kernel; one pipeline per device and specialisation",
  ignore: !gpu,
  async fn() {
    const { device } = gpu!;
    await assert.rejects(
      computePipeline(device, { label: "broken_kernel", code: () => "fn main( {" }),
      (err: Error) => err.message.startsWith("broken_kernel: "),
    );
    let built = 0;
    const spec = (n: number) => ({
      label: "override_probe",
      code: () => (built++, OVERRIDE_KERNEL),
      constants: { N: n },
    });
    const a = await computePipeline(device, spec(7));
    assert.equal(await computePipeline(device, spec(7)), a, "same specialisation: the cached pipeline");
    const b = await computePipeline(device, spec(3));
    assert.notEqual(b, a);
    assert.equal(built, 2, "WGSL built once per specialisation");
    const out = uploadBuffer(device, new Int32Array(1));
    for (const [pipeline, want] of [[a, 7], [b, 3]] as const) {
      dispatch(device, { pipeline, bindings: [out], grid: [1] });
      assert.equal(new Uint32Array(await readBuffer(device, out, { bytes: 4 }))[0], want);
    }
    out.destroy();
  },
});

Deno.test({
  name: "webgpu: rows are cut into binding-sized buffers of whole tiles and read back unchanged",
  ignore: !gpu,
  async fn() {
    const { device } = gpu!;
    const f = randomRows(300, 10, 5);
    const rows = uploadRowParts(device, f, { rowAlign: 64, maxBindingBytes: 10 * 4 * 130 });
    assert.deepEqual(rows.parts.map((p) => [p.row0, p.rows]), [[0, 128], [128, 128], [256, 44]]);
    for (const p of rows.parts) {
      const got = new Float32Array(await readBuffer(device, p.buffer, { bytes: p.rows * 40 }));
      assert.deepEqual(got, f.data.slice(p.row0 * 10, (p.row0 + p.rows) * 10));
    }
    rows.destroy();
    const three = uploadBuffer(device, Float32Array.of(1.5, -2, 3.25));
    assert.deepEqual(new Float32Array(await readBuffer(device, three, { bytes: 12 })), Float32Array.of(1.5, -2, 3.25));
    three.destroy();
  },
});

Deno.test({
  name: "knn WGSL: tile depth 16 and 32 (an override constant) and the 128×128 kernel give identical rows and pairs",
  ignore: !gpu,
  async fn() {
    const f = randomRows(300, 72, 9); // 72 dims: a partial last stage at both depths
    const q = randomRows(70, 72, 10);
    const knn16 = await knnWebGpu(gpu!, f, q, 20, { tileDepth: 16 });
    const knn32 = await knnWebGpu(gpu!, f, q, 20, { tileDepth: 32 });
    assert.deepEqual(knn16.nbrs, knn32.nbrs);
    assert.deepEqual(knn16.dists, knn32.dists);
    // the register-tiled 128×128 kernel sums every product in the same dim order: the same bits
    const knn128 = await knnWebGpu(gpu!, f, q, 20, { kernel: "tile128" });
    assert.deepEqual([knn128.nbrs, knn128.dists], [knn16.nbrs, knn16.dists]);
    const pairs16 = await pairsWebGpu(gpu!, f, 0.2, { tileDepth: 16 });
    const pairs32 = await pairsWebGpu(gpu!, f, 0.2, { tileDepth: 32 });
    assert.ok(pairs16.i.length > 0);
    assert.deepEqual(pairs16, pairs32);
  },
});

Deno.test("onnx + ort: an encoded graph with int, ints and float attributes and int64 inputs runs as written", async () => {
  const rt = await loadOrt();
  if (rt.native) assert.equal(rt.sessionOptions.intraOpNumThreads, ortThreads());
  const session = await createSession(rt, {
    nodes: [
      { op: "Gemm", inputs: ["A", "B"], outputs: ["S"], attrs: { transB: 1, alpha: { float: 0.5 } } },
      { op: "Transpose", inputs: ["S"], outputs: ["T"], attrs: { perm: [1, 0] } },
      { op: "Reshape", inputs: ["T", "flat"], outputs: ["F"] },
      { op: "TopK", inputs: ["F", "two"], outputs: ["V", "I"], attrs: { axis: -1, largest: 1, sorted: 1 } },
    ],
    inputs: [{ name: "A", dims: ["m", 3] }, { name: "B", dims: [2, 3] }],
    outputs: [
      { name: "F", dims: ["mn"] },
      { name: "V", dims: [2] },
      { name: "I", type: OnnxType.INT64, dims: [2] },
    ],
    initializers: [int64Initializer("flat", [-1]), int64Initializer("two", [2])],
  }, { spin: false });
  const { Tensor } = rt.ort;
  const out = await session.run({
    A: new Tensor("float32", Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]),
    B: new Tensor("float32", Float32Array.of(1, 0, 0, 0, 1, 1), [2, 3]),
  });
  // S = 0.5·A·Bᵀ = [[0.5, 2.5], [2, 5.5]]; Sᵀ flattened; the two largest of it by value
  assert.deepEqual(out.F!.data, Float32Array.of(0.5, 2, 2.5, 5.5));
  assert.deepEqual(out.V!.data, Float32Array.of(5.5, 2.5));
  assert.deepEqual(out.I!.data, BigInt64Array.of(3n, 2n));
  await session.release?.();
});

Deno.test("knn registry: a device choice opens its first backend that runs here; all exact backends agree", async () => {
  const rt = await loadOrt();
  assert.equal((await openExactBackend("cpu")).label, `cpu (${rt.label})`);
  const f = randomRows(200, 24, 3);
  const opened = [];
  for (const entry of EXACT_KNN_BACKENDS) {
    const backend = await entry.open({ gpu: entry.device === "webgpu" ? gpu : null });
    if (entry.device === "webgpu" && !gpu) assert.equal(backend, null);
    if (backend) opened.push({ entry, backend });
  }
  const names = opened.map((o) => o.entry.name);
  assert.ok(names.includes("onnxruntime") && names.includes("typescript"), names.join());
  const ts = opened.find((o) => o.entry.name === "typescript")!.backend;
  assert.equal(ts.label, "cpu (typescript)");
  const want = await ts.knn({ base: f, queries: f, k: 7 });
  const wantPairs = await ts.pairs(f, { minSim: 0.4 });
  for (const { entry, backend } of opened) {
    if (entry.name === "webgpu") assert.equal(backend.label, `webgpu (${gpu!.adapterName})`);
    const got = await backend.knn({ base: f, queries: f, k: 7 });
    assert.deepEqual(got.nbrs, want.nbrs, entry.name);
    got.dists.forEach((d, t) => assert.ok(Math.abs(d - want.dists[t]!) < 1e-6, entry.name));
    const pairs = await backend.pairs(f, { minSim: 0.4 });
    assert.deepEqual([pairs.i, pairs.j], [wantPairs.i, wantPairs.j], entry.name);
  }
});

Deno.test("knn registry: approximate indexes open by name with checked parameters", async () => {
  const f = randomRows(400, 16, 4);
  const index = await openKnnIndex("hnsw", { m: 8, efConstruction: 40 });
  assert.equal(index.label, "cpu (hnswlib-wasm)");
  const run = await index.knn({ base: f, queries: f, k: 10 });
  const direct = await hnswKnn(f, { k: 10, m: 8, efConstruction: 40 });
  assert.deepEqual([run.nbrs, run.dists], [direct.nbrs, direct.dists]);
  assert.deepEqual(run.params, { m: 8, efConstruction: 40, ef: 50, seed: 100, shards: 1 });
  assert.equal(run.label, "cpu (hnswlib-wasm)");
  await assert.rejects(
    openKnnIndex("annoy"),
    (e: Error) => e instanceof LtcError && /unknown kNN index annoy/.test(e.message),
  );
  await assert.rejects(
    openKnnIndex("hnsw", { nprobe: 4 }),
    (e: Error) => e instanceof LtcError && /unknown parameter nprobe/.test(e.message),
  );
});
