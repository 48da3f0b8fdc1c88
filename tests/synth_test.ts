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

Deno.test("synth: a multi-part test split (the seed's scales) starts with the single-part split, labels number on", async () => {
  const one = tempDir(), three = tempDir();
  const common = ["--ids", "6", "--seed", "5", "--dim", "16", "--nuisance-dim", "4"];
  assert.equal((await runStage("synth.ts", ["--prefix", one, ...common])).code, 0);
  const run = await runStage("synth.ts", ["--prefix", three, ...common, "--test-parts", "3"]);
  assert.equal(run.code, 0, run.stderr);
  const single = readFeatures(`${one}/features/part1_test.bin`, { dim: 16, normalize: false });
  const parts = readFeatures(`${three}/features/part3_test.bin`, { dim: 16, normalize: false });
  const singleMeta = readMeta(`${one}/labels/part1_test.meta`), partsMeta = readMeta(`${three}/labels/part3_test.meta`);
  // part 1 is the single-part split, byte for byte; parts 2 and 3 are other people
  assert.deepEqual(parts.data.subarray(0, single.data.length), single.data);
  assert.deepEqual(partsMeta.labels.slice(0, single.n), singleMeta.labels);
  assert.ok(parts.n > 2 * single.n, `${parts.n} rows for 3 parts of ${single.n}`);
  assert.equal(partsMeta.lb2idxs.size, 18, "6 identities per part, numbered on");
  assert.ok(Math.min(...partsMeta.labels.slice(single.n)) >= 6);
  const side = JSON.parse(Deno.readTextFileSync(`${three}/features/part3_test.bin.meta.json`));
  assert.equal(side.parts, 3);
  assert.equal(side.n, parts.n);
  assert.equal(side.dim, 16);
  // the training split does not depend on the number of test parts
  assert.deepEqual(
    Deno.readFileSync(`${three}/features/part0_train.bin`),
    Deno.readFileSync(`${one}/features/part0_train.bin`),
  );
  assert.deepEqual([...Deno.readDirSync(`${three}/features`)].filter((e) => e.name.includes(".tmp-")), []);
});
