import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readKnn, writeKnn } from "../shared/knn_file.ts";
import { readLabels } from "../shared/meta.ts";
import { NpzFile } from "../shared/npy.ts";
import { readPredConns } from "../shared/vegcn_io.ts";
import { Rng } from "../shared/random.ts";
import { writeFeatures } from "../shared/features.ts";
import { loadVeGcnCheckpoint, paramList } from "../gpu/vegcn/mod.ts";
import { pairwise } from "../cluster/metrics.ts";
import { REF, runStage, SHARED, tempDir } from "./_helpers.ts";

const GV = `${SHARED}/fixtures/gcn_v`;
const HAS_GV = existsSync(`${GV}/gcn_e_case.npz`) && existsSync(`${REF}/features/sref.bin`);

/** Two partitions are the same up to renaming labels. */
function samePartition(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  const ab = new Map<number, number>(), ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if ((ab.get(x) ?? y) !== y || (ba.get(y) ?? x) !== x) return false;
    ab.set(x, y);
    ba.set(y, x);
  }
  return true;
}

function ints(a: unknown): number[] {
  return Array.from(a as ArrayLike<number>, Number);
}

/** A stage that must fail on bad input: exit 2 and one `error:` line naming the problem. */
async function failsWith(file: string, args: string[], ...parts: (string | RegExp)[]): Promise<void> {
  const r = await runStage(file, args);
  assert.equal(r.code, 2, `${file} should exit 2:\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, r.stderr);
  for (const p of parts) {
    if (typeof p === "string") assert.ok(lines[0]!.includes(p), `"${lines[0]}" should mention "${p}"`);
    else assert.match(lines[0]!, p);
  }
}

Deno.test({
  name: "test-gcn-v stage: the original's files, names and values on the fixture (.pth unchanged, use_gcn_feat)",
  ignore: !HAS_GV,
  async fn() {
    const work = tempDir();
    const r = await runStage("test_gcn_v.ts", [
      ...["--prefix", REF, "--name", "sref", "--load-from", `${GV}/gcn_v_zip.pth`, "--work-dir", work],
      ...["--use-gcn-feat", "--backend", "cpu"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const dir = `${work}/sref_gcnv_k_80_th_0.0`;
    const z = new NpzFile(`${GV}/gcn_v_case.npz`);
    const confs = new NpzFile(`${dir}/pred_confs/gcn_v_zip.npz`);
    assert.ok(confs.get("pred_confs").data instanceof Float32Array);
    assert.deepEqual(ints(confs.get("inst_num").data), [4287]);
    const pred = z.get("pred").data as Float32Array, mine = confs.get("pred_confs").data as Float32Array;
    assert.ok(mine.every((v, i) => Math.abs(v - pred[i]!) < 1e-5), "pred_confs within 1e-5");
    assert.ok(samePartition(readLabels(`${dir}/tau_0.65_pred_labels.txt`), ints(z.get("labels_pred").data)));
    const second = readLabels(`${dir}/gcn_v_zip_gcn_feat/tau_0.8_pred_labels.txt`);
    assert.ok(samePartition(second, ints(z.get("labels_pred_gcnfeat").data)));
    // the GCN features as the original saves them: N × 512 float32, not normalised (row 0 of the fixture's `h`)
    const feats = new Float32Array(Deno.readFileSync(`${dir}/features/gcn_v_zip.bin`).buffer);
    assert.equal(feats.length, 4287 * 512);
    const h0 = (z.get("h").data as Float32Array).subarray(0, 512), row = ints(z.get("h_rows").data)[0]!;
    assert.ok(h0.every((v, j) => Math.abs(v - feats[row * 512 + j]!) < 1e-5), "GCN features");
    assert.equal(readKnn(`${dir}/knns/gcn_v_zip/faiss_k_80.npz`).n, 4287);
    const side = JSON.parse(Deno.readTextFileSync(`${dir}/tau_0.65_pred_labels.txt.meta.json`));
    assert.match(side.backend, /^cpu/);
    assert.ok(side.metrics.pairwise.fscore > 0.6);
    Deno.removeSync(work, { recursive: true });
  },
});

Deno.test({
  name: "test-gcn-e stage: pred_conns and the tau 0.8 partition equal the original's on the fixture",
  ignore: !HAS_GV,
  async fn() {
    const work = tempDir();
    const gv = await runStage("test_gcn_v.ts", [
      ...["--prefix", REF, "--name", "sref", "--load-from", `${GV}/gcn_v_zip.pth`, "--work-dir", work],
      "--use-gcn-feat",
    ]);
    assert.equal(gv.code, 0, gv.stderr);
    const dir = `${work}/sref_gcnv_k_80_th_0.0`;
    const r = await runStage("test_gcn_e.ts", [
      ...["--feat-path", `${dir}/features/gcn_v_zip.bin`, "--pred-confs", `${GV}/gcnv_pred_confs.npz`],
      ...["--knn-graph-path", `${GV}/gcnv_faiss_k_160.npz`, "--name", "sref", "--work-dir", `${work}/e`],
      ...["--load-from", `${GV}/gcn_e_zip.pth`, "--label-path", `${REF}/labels/sref.meta`],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const z = new NpzFile(`${GV}/gcn_e_case.npz`);
    const conns = readPredConns(`${work}/e/pred_conns.npz`);
    assert.equal(conns.instNum, 4287);
    assert.equal(conns.maxConn, 1);
    assert.deepEqual(ints(conns.conns), ints(z.get("conns").data));
    const labels = readLabels(`${work}/e/sref_gcne_k_160_th_0.0_ig_0.8/tau_0.8_pred_labels.txt`);
    assert.ok(samePartition(labels, ints(z.get("labels").data)));
    Deno.removeSync(work, { recursive: true });
  },
});

Deno.test({
  name: "vegcn stages: wrong checkpoints, feature widths and kNN sizes end in one clear error (exit 2)",
  ignore: !HAS_GV,
  async fn() {
    const work = tempDir();
    const common = ["--prefix", REF, "--name", "sref", "--work-dir", work];
    await failsWith(
      "test_gcn_v.ts",
      [...common, "--load-from", `${SHARED}/fixtures/gcn_d/gcn_d_zip.pth`],
      "gcn_d_zip.pth",
      "GCN-D checkpoint",
      "not a GCN-V",
    );
    await failsWith("test_gcn_v.ts", [...common, "--load-from", `${GV}/gcn_e_zip.pth`], "GCN-E checkpoint");
    // features of another width than the model's: a 128-d dataset given to the 256-d GCN-V
    const rng = new Rng(7);
    Deno.mkdirSync(`${work}/narrow/features`, { recursive: true });
    writeFeatures(`${work}/narrow/features/n128.bin`, Float32Array.from({ length: 200 * 128 }, () => rng.normal()));
    await failsWith(
      "test_gcn_v.ts",
      ["--prefix", `${work}/narrow`, "--name", "n128", "--dim", "128", "--load-from", `${GV}/gcn_v_zip.pth`],
      "gcn_v_zip.pth",
      "expects 256-d features",
      "128-d",
    );
    // a kNN file of another dataset (100 rows) beside the 4,287 features
    const knn = readKnn(`${REF}/knns/sref/faiss_k_80.npz`);
    Deno.mkdirSync(`${work}/other`, { recursive: true });
    writeKnn(`${work}/other/faiss_k_80.npz`, {
      n: 100,
      k: 80,
      nbrs: knn.nbrs.slice(0, 8000).map((v) => v % 100),
      dists: knn.dists.slice(0, 8000),
    });
    await failsWith(
      "test_gcn_v.ts",
      [...common, "--load-from", `${GV}/gcn_v_zip.pth`, "--knn-graph-path", `${work}/other/faiss_k_80.npz`],
      "other/faiss_k_80.npz",
      "100 rows",
      "4287",
    );
    // GCN-E: a GCN-V checkpoint, and 256-d input features where GCN-V's 512-d ones belong
    const e = ["--pred-confs", `${GV}/gcnv_pred_confs.npz`, "--name", "sref", "--work-dir", `${work}/e`];
    await failsWith(
      "test_gcn_e.ts",
      [...e, "--feat-path", `${REF}/features/sref.bin`, "--load-from", `${GV}/gcn_v_zip.pth`],
      "GCN-V checkpoint",
      "not a GCN-E",
    );
    await failsWith(
      "test_gcn_e.ts",
      [...e, "--feat-path", `${REF}/features/sref.bin`, "--dim", "256", "--load-from", `${GV}/gcn_e_zip.pth`],
      "expects 512-d features",
      "256-d",
    );
    await failsWith(
      "train_gcn_v.ts",
      ["--config", "configs/gcn_e/cfg_train_gcne_ms1m.yaml"],
      "cfg_train_gcne_ms1m.yaml",
      "a GCN-E config",
    );
    Deno.removeSync(work, { recursive: true });
  },
});

Deno.test("vegcn stages: train GCN-V (sampled nodes), resume exactly, then GCN-V features → train and test GCN-E", async () => {
  const root = tempDir();
  const data = `${root}/synth`;
  const synth = await runStage("synth.ts", ["--prefix", data, "--scale", "tiny"]);
  assert.equal(synth.code, 0, synth.stderr);
  const cfgV = "configs/gcn_v/cfg_pipeline_train_gcnv.yaml";
  const trainV = (work: string, extra: string[]) =>
    runStage("train_gcn_v.ts", [
      "--config",
      cfgV,
      "--prefix",
      data,
      "--name",
      "part0_train",
      "--work-dir",
      work,
      ...extra,
    ]);
  // two epochs straight, and one epoch then resumed to two: the same weights bit for bit
  const a = await trainV(`${root}/va`, ["--total-epochs", "2"]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal((await trainV(`${root}/vb`, ["--total-epochs", "1"])).code, 0);
  const resumed = await trainV(`${root}/vb`, ["--total-epochs", "2", "--resume-from", `${root}/vb/latest.npz`]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const wa = loadVeGcnCheckpoint(`${root}/va/latest.npz`, { kind: "gcn-v" });
  const wb = loadVeGcnCheckpoint(`${root}/vb/latest.npz`, { kind: "gcn-v" });
  assert.equal(wa.epoch, 2);
  assert.deepEqual(paramList(wb.weights), paramList(wa.weights));
  assert.ok(existsSync(`${root}/va/epoch_1.npz`) && existsSync(`${root}/va/epoch_2.npz`));
  const side = JSON.parse(Deno.readTextFileSync(`${root}/va/latest.npz.meta.json`));
  assert.equal(side.history.length, 2);
  // GCN-V outputs of both splits, then GCN-E trained on the training split's and tested on the test split's
  for (const name of ["part0_train", "part1_test"]) {
    const r = await runStage("test_gcn_v.ts", [
      ...["--prefix", data, "--name", name, "--load-from", `${root}/va/latest.npz`, "--work-dir", `${root}/gv`],
      "--use-gcn-feat",
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  const gv = (name: string) => `${root}/gv/${name}_gcnv_k_80_th_0.0`;
  const trainE = await runStage("train_gcn_e.ts", [
    ...["--config", "configs/gcn_e/cfg_pipeline_train_gcne.yaml", "--work-dir", `${root}/ge`, "--total-epochs", "1"],
    ...["--feat-path", `${gv("part0_train")}/features/latest.bin`],
    ...["--pred-confs", `${gv("part0_train")}/pred_confs/latest.npz`],
    ...["--label-path", `${data}/labels/part0_train.meta`],
  ]);
  assert.equal(trainE.code, 0, trainE.stderr);
  const testE = await runStage("test_gcn_e.ts", [
    ...["--config", "configs/gcn_e/cfg_pipeline_train_gcne.yaml", "--name", "part1_test", "--work-dir", `${root}/te`],
    ...["--feat-path", `${gv("part1_test")}/features/latest.bin`, "--load-from", `${root}/ge/latest.npz`],
    ...["--pred-confs", `${gv("part1_test")}/pred_confs/latest.npz`, "--label-path", `${data}/labels/part1_test.meta`],
  ]);
  assert.equal(testE.code, 0, testE.stderr);
  const gt = readLabels(`${data}/labels/part1_test.meta`);
  const labels = readLabels(`${root}/te/part1_test_gcne_k_80_th_0.0_ig_0.8/tau_0.8_pred_labels.txt`);
  assert.equal(labels.length, gt.length);
  assert.ok(pairwise(gt, labels).fscore > 0.3, `GCN-E F ${pairwise(gt, labels).fscore}`);
  Deno.removeSync(root, { recursive: true });
});
