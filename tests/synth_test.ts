import assert from "node:assert/strict";
import { readFeatures } from "../shared/features.ts";
import { readMeta } from "../shared/meta.ts";
import { DEFAULT_SYNTH, generateSynth, similarityStats } from "../cluster/synth.ts";
import { runStage, tempDir } from "./_helpers.ts";

Deno.test("synth: deterministic from the seed, disjoint splits, byte-identical files across runs", async () => {
  const a = tempDir(), b = tempDir();
  for (const dir of [a, b]) {
    const run = await runStage("synth.ts", ["--prefix", dir, "--scale", "tiny", "--seed", "3"]);
    assert.equal(run.code, 0, run.stderr);
  }
  for (const f of ["features/part0_train.bin", "labels/part0_train.meta", "features/part1_test.bin"]) {
    assert.deepEqual(Deno.readFileSync(`${a}/${f}`), Deno.readFileSync(`${b}/${f}`), f);
  }
  const train = readFeatures(`${a}/features/part0_train.bin`);
  const test = readFeatures(`${a}/features/part1_test.bin`);
  const meta = readMeta(`${a}/labels/part1_test.meta`);
  assert.equal(meta.labels.length, test.n);
  assert.equal(meta.lb2idxs.size, 60);
  assert.notDeepEqual(train.data.slice(0, 256), test.data.slice(0, 256));
  const side = JSON.parse(Deno.readTextFileSync(`${a}/features/part1_test.bin.meta.json`));
  assert.equal(side.stage, "synth");
  assert.equal(side.n, test.n);
});

Deno.test("synth: long-tailed identity sizes around the mean, unit rows, same-identity pairs far more similar", () => {
  const set = generateSynth({ ...DEFAULT_SYNTH, ids: 200, seed: 11, worldSeed: 42 });
  const sizes = new Map<number, number>();
  for (const l of set.labels) sizes.set(l, (sizes.get(l) ?? 0) + 1);
  const vals = [...sizes.values()].sort((x, y) => x - y);
  const mean = set.n / sizes.size;
  assert.ok(mean > 50 && mean < 90, `mean identity size ${mean}`);
  assert.ok(vals[vals.length - 1]! > 3 * vals[Math.floor(vals.length / 2)]!, "long tail");
  for (let i = 0; i < set.n; i += 501) {
    let ss = 0;
    for (let j = 0; j < set.dim; j++) ss += set.features[i * set.dim + j]! ** 2;
    assert.ok(Math.abs(ss - 1) < 1e-5);
  }
  const st = similarityStats(set, { pairs: 20000 });
  assert.ok(st.same_identity_cos_median! > 0.5 && st.same_identity_cos_median! < 0.8, JSON.stringify(st));
  assert.ok(Math.abs(st.random_pair_cos_median!) < 0.05, JSON.stringify(st));
});

Deno.test("synth: unrecognisable faces drift to one shared direction, linking identities; off by default", () => {
  assert.equal(DEFAULT_SYNTH.uiShare, 0);
  const base = { ...DEFAULT_SYNTH, ids: 150, seed: 5, worldSeed: 42 };
  const plain = generateSynth(base);
  const withUi = generateSynth({ ...base, uiShare: 0.3, uiQuality: 0.4, uiCos: 0.95 });
  // the identities and their sizes come from the same stream: same labels, only the faces differ
  assert.deepEqual(withUi.labels, plain.labels);
  // share of cross-identity pairs above 0.6: ~0 without drift; with 30 % drifting faces ≈ 0.3² of pairs link
  const linked = (set: typeof plain) => {
    let hits = 0, pairs = 0;
    for (let a = 0; a < set.n; a += 7) {
      for (let b = a + 3; b < set.n; b += 11) {
        if (set.labels[a] === set.labels[b]) continue;
        let s = 0;
        for (let j = 0; j < set.dim; j++) s += set.features[a * set.dim + j]! * set.features[b * set.dim + j]!;
        pairs++;
        if (s > 0.6) hits++;
      }
    }
    return hits / pairs;
  };
  const before = linked(plain), after = linked(withUi);
  assert.ok(before < 0.005, `without drift ${before}`);
  assert.ok(after > 0.06 && after < 0.12, `with drift ${after}`);
});
