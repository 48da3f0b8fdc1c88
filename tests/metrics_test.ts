import assert from "node:assert/strict";
import { readLabels, readLabelsPadded } from "../shared/meta.ts";
import { bcubed, evaluateAll, nmi, pairwise, pearson } from "../cluster/metrics.ts";
import { expected, HAS_SHARED, REF, runStage, tempDir, throwsWith } from "./_helpers.ts";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

Deno.test("metrics: hand-computed small case", () => {
  // gt: A A A B B, pred: 1 1 2 2 2 → n_ij: (A,1)=2 (A,2)=1 (B,2)=2
  const gt = [0, 0, 0, 1, 1], pred = [1, 1, 2, 2, 2];
  const p = pairwise(gt, pred);
  // tk = 4+1+4-5 = 4, pk = 4+9-5 = 8, qk = 9+4-5 = 8
  assert.equal(p.precision, 0.5);
  assert.equal(p.recall, 0.5);
  const b = bcubed(gt, pred);
  // precision = (4/2 + 1/3 + 4/3) / 5, recall = (4/3 + 1/3 + 4/2) / 5
  close(b.precision, (2 + 1 / 3 + 4 / 3) / 5, 1e-15, "bcubed precision");
  close(b.recall, (4 / 3 + 1 / 3 + 2) / 5, 1e-15, "bcubed recall");
  assert.equal(nmi(gt, gt), 1);
  assert.equal(nmi([0, 0, 0], [5, 5, 5]), 1);
  assert.equal(nmi([0, 0, 1, 1], [0, 1, 0, 1]), 0);
  throwsWith(() => pairwise([1, 2], [1]), "differ in length");
});

Deno.test("metrics: invariant to renaming labels and symmetric where the formulas are", () => {
  const gt = [3, 3, 9, 9, 9, 1, 4, 4];
  const pred = [0, 0, 0, 7, 7, 7, 2, 2];
  const renamed = pred.map((v) => v * 13 + 5);
  assert.deepEqual(evaluateAll(gt, pred), evaluateAll(gt, renamed));
  const a = pairwise(gt, pred), b = pairwise(pred, gt);
  close(a.precision, b.recall, 1e-15, "pairwise swap");
  close(nmi(gt, pred), nmi(pred, gt), 1e-15, "nmi symmetric");
});

Deno.test({
  name: "metrics: the original's four proposal partitions match expected.json to 1e-9",
  ignore: !HAS_SHARED,
  fn() {
    const exp = expected();
    const gt = readLabels(`${REF}/labels/sref.meta`);
    for (const th of ["0.6", "0.65", "0.7", "0.75"]) {
      const folder = `${REF}/cluster_proposals/sref/faiss_k_80_th_${th}_step_0.05_minsz_3_maxsz_300_iter_0`;
      const pred = readLabelsPadded(`${folder}/pred_labels.txt`, gt.length);
      const m = evaluateAll(gt, pred);
      const e = exp[`proposals_th${th}`] as { pairwise: number[]; bcubed: number[]; nmi: number };
      ["precision", "recall", "fscore"].forEach((k, i) => {
        close(m.pairwise[k as "precision"], e.pairwise[i]!, 1e-9, `th ${th} pairwise ${k}`);
        close(m.bcubed[k as "precision"], e.bcubed[i]!, 1e-9, `th ${th} bcubed ${k}`);
      });
      close(m.nmi, e.nmi, 1e-9, `th ${th} nmi`);
    }
  },
});

Deno.test({
  name: "evaluate stage: CLI prints the table and writes the exact JSON shape; mismatched lengths fail clearly",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    const pred = `${REF}/baseline_pred/fast_hac_single_dist0.72.txt`;
    const run = await runStage("evaluate.ts", [
      "--gt-labels",
      `${REF}/labels/sref.meta`,
      "--pred-labels",
      pred,
      "--json",
      `${dir}/m.json`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /pairwise/);
    const json = JSON.parse(Deno.readTextFileSync(`${dir}/m.json`));
    assert.deepEqual(Object.keys(json), ["pairwise", "bcubed", "nmi"]);
    assert.deepEqual(Object.keys(json.pairwise), ["precision", "recall", "fscore"]);
    const e = expected()["fast_hac_single_dist0.72"] as { pairwise: number[]; nmi: number };
    close(json.pairwise.fscore, e.pairwise[2]!, 1e-9, "fast_hac pairwise F");
    close(json.nmi, e.nmi, 1e-9, "fast_hac nmi");
    Deno.writeTextFileSync(`${dir}/short.txt`, "0\n1\n");
    const bad = await runStage("evaluate.ts", [
      "--gt-labels",
      `${REF}/labels/sref.meta`,
      "--pred-labels",
      `${dir}/short.txt`,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /short\.txt: has 2 labels but .*sref\.meta has 4287/);
    const unknown = await runStage("evaluate.ts", ["--gt-labels", "a", "--pred-labels", "b", "--bogus"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /bogus/);
  },
});

Deno.test("metrics: millions of labels without N×C matrices (smoke for the hash/sort contingency)", () => {
  const n = 1_000_000;
  const gt = new Int32Array(n), pred = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    gt[i] = i % 5000;
    pred[i] = (i % 5000) + (Math.floor(i / 5000) % 2) * 5000; // each class split into two halves
  }
  const m = evaluateAll(gt, pred);
  // each class of 200 splits into two clusters of 100: tk = 2·100²·5000 − n, qk = 200²·5000 − n
  close(m.pairwise.precision, 1, 1e-12, "precision");
  close(m.pairwise.recall, (2 * 100 * 100 * 5000 - n) / (200 * 200 * 5000 - n), 1e-12, "recall");
  close(m.bcubed.recall, 0.5, 1e-12, "bcubed recall");
});

Deno.test("pearson: ±1 for affine series, 0 for a constant one, the textbook value otherwise", () => {
  const a = [1, 2, 3, 4, 5];
  assert.ok(Math.abs(pearson(a, a.map((v) => 3 * v - 7)) - 1) < 1e-12);
  assert.ok(Math.abs(pearson(a, a.map((v) => -0.5 * v)) + 1) < 1e-12);
  assert.equal(pearson(a, [2, 2, 2, 2, 2]), 0);
  // x = 1..5, y = 2, 4, 5, 4, 5: cov 1.2, var x 2, var y 1.2 (population) → 1.2 / √2.4
  assert.ok(Math.abs(pearson(a, [2, 4, 5, 4, 5]) - 1.2 / Math.sqrt(2.4)) < 1e-12);
  assert.throws(() => pearson(a, [1, 2]), /lengths differ/);
});
