import assert from "node:assert/strict";
import { readFeatures } from "../shared/features.ts";
import { readMeta } from "../shared/meta.ts";
import { identitySplit } from "../cluster/split.ts";
import { HAS_SHARED, runStage, SHARED, tempDir } from "./_helpers.ts";

Deno.test("split: whole identities on one side, seeded, share respected", () => {
  const lb2idxs = new Map<number, number[]>();
  for (let i = 0; i < 100; i++) lb2idxs.set(i % 10, [...(lb2idxs.get(i % 10) ?? []), i]);
  const a = identitySplit(lb2idxs, { testShare: 0.3, seed: 1 });
  assert.deepEqual(a, identitySplit(lb2idxs, { testShare: 0.3, seed: 1 }));
  for (const idxs of lb2idxs.values()) assert.equal(new Set(idxs.map((i) => a[i])).size, 1, "identity not split");
  assert.equal(a.reduce((s, v) => s + v, 0), 30);
  assert.throws(() => identitySplit(lb2idxs, { testShare: 1, seed: 1 }), /strictly between 0 and 1/);
});

Deno.test({
  name: "split: the real ORL set splits into disjoint identity sets that cover every row",
  ignore: !HAS_SHARED,
  async fn() {
    const out = tempDir();
    const run = await runStage("split.ts", [
      "--prefix",
      `${SHARED}/data/real`,
      "--name",
      "orl_faceapi128",
      "--dim",
      "128",
      "--oprefix",
      out,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const tr = readMeta(`${out}/labels/orl_faceapi128_train.meta`);
    const te = readMeta(`${out}/labels/orl_faceapi128_test.meta`);
    assert.equal(tr.labels.length + te.labels.length, 399);
    for (const id of tr.lb2idxs.keys()) assert.ok(!te.lb2idxs.has(id), `identity ${id} on both sides`);
    assert.equal(readFeatures(`${out}/features/orl_faceapi128_test.bin`, { dim: 128 }).n, te.labels.length);
  },
});
