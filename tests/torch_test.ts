import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { LtcError } from "../shared/errors.ts";
import { NpzFile } from "../shared/npy.ts";
import { readStateDict, readTorchCheckpoint } from "../shared/torch.ts";
import { buildZip, concat } from "../shared/zip.ts";
import { loadCheckpoint } from "../gpu/gcn/checkpoint.ts";
import { sgdUpdate, weightsFromStateDict } from "../gpu/gcn/model.ts";
import { SHARED, tempDir, throwsWith } from "./_helpers.ts";

const GCN = `${SHARED}/fixtures/gcn_d`;
const HAS_GCN = existsSync(`${GCN}/case.npz`);
if (!HAS_GCN) console.error(`note: ${GCN} is absent; PyTorch checkpoint tests are skipped`);

const KEYS = ["layers.0.gc.weight", "layers.1.gc.weight", "classifier.weight", "classifier.bias"];
const SHAPES = [[256, 512], [512, 64], [1, 64], [1]];

/** Normwise relative error max|a − b| / max|b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!)), s = Math.max(s, Math.abs(b[i]!));
  return d / s;
}

Deno.test({
  name: "torch: zip, legacy and module.-prefixed checkpoints load to the same tensors",
  ignore: !HAS_GCN,
  fn() {
    const zip = readStateDict(`${GCN}/gcn_d_zip.pth`);
    const legacy = readStateDict(`${GCN}/gcn_d_legacy.pth`);
    const prefixed = readStateDict(`${GCN}/gcn_d_prefixed.pth`);
    assert.equal(zip.format, "zip");
    assert.equal(legacy.format, "legacy");
    assert.equal(prefixed.format, "zip");
    for (const sd of [zip, legacy, prefixed]) {
      assert.deepEqual([...sd.tensors.keys()], KEYS);
      KEYS.forEach((k, i) => {
        const t = sd.tensors.get(k)!;
        assert.equal(t.dtype, "f4");
        assert.deepEqual(t.shape, SHAPES[i]);
        assert.deepEqual(t.data, zip.tensors.get(k)!.data);
      });
    }
    // mmcv's {'meta': {epoch, iter}, 'state_dict': …} wrapper
    assert.equal((zip.meta as Map<string, number>).get("epoch"), 30);
    assert.equal((legacy.meta as Map<string, number>).get("iter"), 0);
  },
});

Deno.test({
  name: "torch: checkpoint weights are case.npz's weights before its one SGD step",
  ignore: !HAS_GCN,
  fn() {
    // case.npz's plain weight arrays were captured from the live parameters after the optimiser step (they are
    // bit-identical to its step1_* arrays); the checkpoints hold the weights the predictions and gradients were
    // computed with. So: one SGD step (lr 0.01, momentum 0.9 → buf = g on the first step, wd 1e-4) from the
    // checkpoint must give case.npz's weights.
    const z = new NpzFile(`${GCN}/case.npz`);
    for (const file of ["gcn_d_zip.pth", "gcn_d_legacy.pth", "gcn_d_prefixed.pth"]) {
      const w = weightsFromStateDict(readStateDict(`${GCN}/${file}`).tensors, { path: file });
      const params = [...w.layers, w.classifierW, w.classifierB];
      KEYS.forEach((k, i) => {
        const name = k.replaceAll(".", "_");
        const p = params[i]!.slice();
        sgdUpdate(p, z.get(`grad_${name}`).data as Float32Array, new Float32Array(p.length), {
          lr: 0.01,
          momentum: 0.9,
          weightDecay: 1e-4,
          first: true,
        });
        assert.ok(relErr(p, z.get(name).data as Float32Array) < 1e-5, `${file} ${k}`);
      });
    }
  },
});

Deno.test({
  name: "torch: loadCheckpoint reads the original's files with their epoch",
  ignore: !HAS_GCN,
  fn() {
    const a = loadCheckpoint(`${GCN}/gcn_d_legacy.pth`, { featureDim: 256 });
    assert.equal(a.source, "pytorch-legacy");
    assert.equal(a.epoch, 30);
    assert.deepEqual(a.weights.config, { featureDim: 256, hiddenDims: [512, 64] });
    assert.equal(loadCheckpoint(`${GCN}/gcn_d_prefixed.pth`).source, "pytorch-zip");
    throwsWith(() => loadCheckpoint(`${GCN}/gcn_d_zip.pth`, { featureDim: 128 }), "gcn_d_zip.pth", "256-d", "128-d");
  },
});

Deno.test({
  name: "torch: truncated, corrupt and foreign files fail with one clear error",
  ignore: !HAS_GCN,
  fn() {
    const dir = tempDir();
    const legacy = Deno.readFileSync(`${GCN}/gcn_d_legacy.pth`);
    const zip = Deno.readFileSync(`${GCN}/gcn_d_zip.pth`);
    const cases: [string, Uint8Array, string][] = [
      ["legacy_cut_storage.pth", legacy.subarray(0, legacy.length - 1000), "truncated"],
      ["legacy_cut_pickle.pth", legacy.subarray(0, 500), "truncated"],
      ["zip_cut.pth", zip.subarray(0, zip.length - 300), "zip"],
      ["noise.pth", new Uint8Array(64).fill(7), "not a PyTorch checkpoint"],
      ["empty.pth", new Uint8Array(0), "not a PyTorch checkpoint"],
    ];
    for (const [name, bytes, msg] of cases) {
      const path = `${dir}/${name}`;
      Deno.writeFileSync(path, bytes);
      assert.throws(() => readStateDict(path), (e: Error) =>
        e instanceof LtcError && e.message.includes(path) &&
        e.message.includes(msg), name);
    }
    throwsWith(() => readStateDict(`${dir}/missing.pth`), "missing.pth", "no such file");
  },
});

/** A protocol-2 pickle `GLOBAL module name; (args…) REDUCE; STOP` building a call of a global. */
function callPickle(module: string, name: string): Uint8Array {
  const enc = new TextEncoder();
  return concat([
    Uint8Array.of(0x80, 2, 0x63),
    enc.encode(`${module}\n${name}\n`),
    Uint8Array.of(0x58, 2, 0, 0, 0),
    enc.encode("ls"),
    Uint8Array.of(0x85, 0x52, 0x2e),
  ]);
}

Deno.test({
  name: "torch: a pickle naming anything outside the allow-list is refused (no code runs)",
  ignore: !HAS_GCN,
  fn() {
    const dir = tempDir();
    // Legacy container: reuse the fixture's magic, protocol and sys-info pickles, then an evil object pickle.
    const legacy = Deno.readFileSync(`${GCN}/gcn_d_legacy.pth`);
    const header = legacy.subarray(0, 137);
    const evil = `${dir}/evil_legacy.pth`;
    Deno.writeFileSync(evil, concat([header, callPickle("os", "system")]));
    throwsWith(() => readTorchCheckpoint(evil), evil, "os.system", "not an allowed type");
    // Zip container with the same object pickle.
    const evilZip = `${dir}/evil_zip.pth`;
    Deno.writeFileSync(
      evilZip,
      concat(buildZip([{ name: "evil/data.pkl", chunks: [callPickle("builtins", "eval")] }], { compress: false })),
    );
    throwsWith(() => readTorchCheckpoint(evilZip), evilZip, "builtins.eval", "not an allowed type");
    // numpy's reconstruct is fine in .npy object arrays but not in a checkpoint.
    const np = `${dir}/numpy.pth`;
    Deno.writeFileSync(np, concat([header, callPickle("numpy.core.multiarray", "_reconstruct")]));
    throwsWith(() => readTorchCheckpoint(np), np, "numpy.core.multiarray._reconstruct", "not an allowed type");
    // A storage class may only appear inside a persistent id.
    const st = `${dir}/storage_call.pth`;
    Deno.writeFileSync(st, concat([header, callPickle("torch", "FloatStorage")]));
    throwsWith(() => readTorchCheckpoint(st), st, "torch.FloatStorage");
  },
});

Deno.test({
  name: "torch: a state dict with wrong keys or shapes is refused naming them",
  ignore: !HAS_GCN,
  fn() {
    const sd = readStateDict(`${GCN}/gcn_d_zip.pth`).tensors;
    const renamed = new Map([...sd].map(([k, v]) => [k === "classifier.bias" ? "classifier.b" : k, v]));
    throwsWith(
      () => weightsFromStateDict(renamed, { path: "renamed.pth" }),
      "renamed.pth",
      "missing classifier.bias",
      "unexpected classifier.b",
    );
    const noLayers = new Map([...sd].filter(([k]) => !k.startsWith("layers.")));
    throwsWith(() => weightsFromStateDict(noLayers, { path: "x.pth" }), "x.pth", "not a GCN-D checkpoint");
    const badShape = new Map(sd);
    badShape.set("classifier.weight", { dtype: "f4", shape: [2, 32], data: new Float32Array(64) });
    throwsWith(() => weightsFromStateDict(badShape, { path: "s.pth" }), "s.pth", "classifier.weight", "(1, 64)");
    const nan = new Map(sd);
    nan.set("classifier.bias", { dtype: "f4", shape: [1], data: Float32Array.of(NaN) });
    throwsWith(() => weightsFromStateDict(nan, { path: "n.pth" }), "n.pth", "NaN");
  },
});
