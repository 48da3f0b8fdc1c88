/**
 * IVF kNN (gpu/knn/ivf.ts): equal to exact search when every list is probed (ties included), deterministic,
 * padding of rows whose lists hold fewer than k rows, recall on clustered data, the registry entry, the kNN stage
 * with `--method ivf` (file name, sidecar, CLI), and bad input.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LtcError } from "../shared/errors.ts";
import { type Features, l2NormalizeRows, writeFeatures } from "../shared/features.ts";
import { readKnn } from "../shared/knn_file.ts";
import { Rng } from "../shared/random.ts";
import { FeatureCache, loadOrBuildKnn, recallAtK, runKnnStage, sampleRows } from "../cluster/knn_source.ts";
import { DEFAULT_SYNTH, generateSynth } from "../cluster/synth.ts";
import { defaultNlist, defaultNprobe, exactKnn, ivfKnn, ivfParams, openKnnIndex } from "../gpu/knn/mod.ts";
import {
  buildIvfIndex,
  defaultChunkRows,
  ivfBuildProducts,
  scanBlockRows,
  searchIvf,
  shareLists,
  trainIvfCentroids,
} from "../gpu/knn/ivf.ts";
import { runStage, tempDir } from "./_helpers.ts";

/** Seeded Gaussian rows, L2-normalised, with `dupes` copies of earlier rows (exact ties). */
function rows(n: number, dim: number, options: { seed: number; dupes?: number }): Features {
  const rng = new Rng(options.seed, 0x1f);
  const data = new Float32Array(n * dim).map(() => rng.normal());
  for (let d = 0; d < (options.dupes ?? 0); d++) {
    const from = rng.int(n), to = rng.int(n);
    data.copyWithin(to * dim, from * dim, from * dim + dim);
  }
  l2NormalizeRows(data, n, dim);
  return { data, n, dim };
}

/** Clustered unit vectors from the benchmark generator (about 68 rows per identity). */
function clustered(ids: number): Features {
  const s = generateSynth({ ...DEFAULT_SYNTH, dim: 64, ids, seed: 3 });
  l2NormalizeRows(s.features, s.n, s.dim);
  return { data: s.features, n: s.n, dim: s.dim };
}

/** Same neighbour ids; distances within float32 rounding of the SGEMM's summation order. */
function assertSameRows(got: { nbrs: Int32Array; dists: Float32Array }, want: typeof got, what: string): void {
  assert.deepEqual(got.nbrs, want.nbrs, what);
  got.dists.forEach((d, t) => assert.ok(Math.abs(d - want.dists[t]!) <= 1e-6, `${what}: distance ${t}`));
}

Deno.test("ivf: probing every list gives exact search's rows, ties and distances included", async () => {
  // below 128 dimensions onnxruntime's SGEMM sums each product in one sweep whatever the block shape, so the
  // similarities are bit-identical to exact search's
  const f = rows(1500, 24, { seed: 1, dupes: 150 });
  const want = await exactKnn(f, { k: 25, backend: "cpu", progress: false });
  const got = await ivfKnn(f, { k: 25, nlist: 30, nprobe: 30, screenBits: 32 });
  assert.deepEqual(got.nbrs, want.graph.nbrs);
  assert.deepEqual(got.dists, want.graph.dists);
  assert.equal(got.stats.scannedFraction, 1);
  // separate queries (some equal to base rows) against the base
  const queries = rows(300, 24, { seed: 2, dupes: 0 });
  queries.data.set(f.data.subarray(0, 50 * 24));
  const wantQ = await exactKnn(f, { k: 25, backend: "cpu", queries, progress: false });
  const gotQ = await ivfKnn(f, { k: 25, nlist: 30, nprobe: 30, queries, screenBits: 32 });
  assert.deepEqual(gotQ.nbrs, wantQ.graph.nbrs);
  assert.deepEqual(gotQ.dists, wantQ.graph.dists);
  // at 256 dimensions narrow list products may split the sums differently: the last bit can differ
  const wide = rows(1200, 256, { seed: 3 });
  const wantWide = await exactKnn(wide, { k: 30, backend: "cpu", progress: false });
  assertSameRows(await ivfKnn(wide, { k: 30, nlist: 20, nprobe: 20, screenBits: 32 }), wantWide.graph, "dim 256");
  // the 8-bit screen keeps query rows, multiplied in float32: the same rows, distances within rounding
  assertSameRows(await ivfKnn(wide, { k: 30, nlist: 20, nprobe: 20 }), wantWide.graph, "dim 256, 8-bit screen");
});

Deno.test("ivf: deterministic for a seed; every row finds itself first or tied at the top", async () => {
  const f = rows(2000, 16, { seed: 4 });
  const a = await ivfKnn(f, { k: 10, nlist: 20, nprobe: 3, seed: 7 });
  const b = await ivfKnn(f, { k: 10, nlist: 20, nprobe: 3, seed: 7 });
  assert.deepEqual([a.nbrs, a.dists], [b.nbrs, b.dists]);
  assert.deepEqual(a.params, {
    nlist: 20,
    nprobe: 3,
    chunkRows: 8192,
    trainPerList: 16,
    iterations: 2,
    coarse: 4,
    seed: 7,
    screenBits: 8,
  });
  // many small query chunks give the same rows (other block shapes: last bits may differ)
  const c = await ivfKnn(f, { k: 10, nlist: 20, nprobe: 3, seed: 7, chunkRows: 100 });
  assertSameRows(c, a, "chunked");
  for (let i = 0; i < f.n; i++) assert.equal(a.nbrs[i * 10], i, `row ${i}`);
  // fewer probes scan fewer pairs
  assert.ok(a.stats.scannedFraction < 0.3, `scanned ${a.stats.scannedFraction}`);
});

Deno.test("ivf: progress covers the build and the search, rising to 1", async () => {
  const f = rows(3000, 16, { seed: 5 });
  for (const queries of [undefined, rows(500, 16, { seed: 6 })]) {
    const seen: number[] = [];
    await ivfKnn(f, { k: 10, nlist: 30, nprobe: 4, chunkRows: 1000, queries, onProgress: (x) => seen.push(x) });
    const p = ivfParams(f.n, { nlist: 30, nprobe: 4 });
    // the build's share: training's row–centroid products (the two-level start of 5 coarse clusters, 5 iterations
    // each level, then 2 over all 30 lists, on 480 sample rows) and ranking the 3000 base rows, out of those plus
    // the search's (its own probe ranking when the queries are other rows) and ≈ rows × 4 × 100 pairs
    const build = ivfBuildProducts(f.n, p);
    assert.equal(build, 480 * (5 * 6 + 6 * 5) + 480 * 30 * 2 + 3000 * 30);
    const search = (queries ? queries.n * 30 : 0) + (queries ?? f).n * 4 * (f.n / 30);
    const share = build / (build + search);
    const during = seen.filter((x) => x <= share + 1e-9);
    assert.ok(during.length >= 6, `${during.length} reports during the build`); // every k-means iteration at least
    assert.ok(Math.abs(during.at(-1)! - share) < 1e-9, `the build ends at its share ${share}: ${during.at(-1)}`);
    for (let t = 1; t < seen.length; t++) assert.ok(seen[t]! >= seen[t - 1]!, `falls at report ${t}`);
    assert.ok(Math.abs(seen.at(-1)! - 1) < 1e-9, `ends at ${seen.at(-1)}`);
  }
});

Deno.test("ivf: a self search reuses the build's ranks: the same rows as ranking again, lists = first probes", async () => {
  const f = clustered(60);
  // chunks of 1024 rows: several, the last one partial
  const opts = { nlist: 40, nprobe: 6, chunkRows: 1024 };
  const index = await buildIvfIndex(f, { ...opts, keepProbes: true });
  assert.ok(f.n > 3 * 1024 && index.probes && index.probes.length === f.n * 6);
  index.lists.forEach((l, r) => assert.equal(l, index.probes![r * 6], `row ${r}: its list is its first probe`));
  const reused = await searchIvf(f, index, { k: 20, probes: index.probes });
  const ranked = await searchIvf(f, { ...index }, { k: 20 });
  assert.deepEqual(reused.nbrs, ranked.nbrs);
  assert.deepEqual(reused.dists, ranked.dists);
  // a sharded build ranks the same way, without keeping the ids
  const again = await buildIvfIndex(f, opts);
  assert.equal(again.probes, null);
  assert.deepEqual(again.lists, index.lists);
  await assert.rejects(() => searchIvf(f, index, { k: 20, probes: index.probes!.subarray(6) }), /kept probes/);
});

Deno.test("ivf: the later pass's blocks within a chunk do not change the rows (8-bit and float32)", async () => {
  const f = clustered(60);
  for (const screenBits of [8, 32] as const) {
    const index = await buildIvfIndex(f, { nlist: 40, nprobe: 6, chunkRows: 2048, screenBits, keepProbes: true });
    const whole = await searchIvf(f, index, { k: 20, probes: index.probes });
    for (const scanRows of [1, 256, 1000]) {
      const blocks = await searchIvf(f, index, { k: 20, probes: index.probes, scanRows });
      const what = `screenBits ${screenBits}, blocks of ${scanRows} rows`;
      // other blocks, other product shapes (one-row products take onnxruntime's GEMV path; 8-bit: the rows that
      // pass the screen): the last bit of a similarity may differ, the neighbours may not
      assertSameRows(blocks, whole, what);
    }
    await assert.rejects(() => searchIvf(f, index, { k: 20, scanRows: 0 }), /ivf: scanRows must be a positive/);
  }
});

Deno.test("ivf: rows whose probed lists hold fewer than k rows are padded with −1 / distance 1", async () => {
  const f = rows(60, 8, { seed: 5 });
  const k = 40;
  const r = await ivfKnn(f, { k, nlist: 6, nprobe: 1 });
  const all = await exactKnn(f, { k: f.n, backend: "cpu", progress: false });
  const exactDist = (i: number, j: number) => all.graph.dists[i * f.n + all.graph.nbrs.subarray(i * f.n).indexOf(j)]!;
  const sets: Set<number>[] = [];
  let padded = 0;
  for (let i = 0; i < f.n; i++) {
    const ids = Array.from(r.nbrs.subarray(i * k, (i + 1) * k));
    const found = ids.filter((id) => id >= 0);
    // padding only at the end, with distance exactly 1
    assert.deepEqual(ids.slice(found.length), new Array(k - found.length).fill(-1), `row ${i}`);
    for (let t = found.length; t < k; t++) assert.equal(r.dists[i * k + t], 1);
    padded += k - found.length;
    // the found rows are the row's list (nprobe 1): the row itself, exact distances, best first
    assert.ok(found.includes(i));
    found.forEach((j, t) => assert.equal(r.dists[i * k + t], exactDist(i, j), `row ${i} id ${j}`));
    sets.push(new Set(found));
  }
  assert.ok(padded > 0);
  // rows of one list see the same list: the found sets partition the rows
  for (let i = 0; i < f.n; i++) for (const j of sets[i]!) assert.deepEqual(sets[j], sets[i]);
  const covered = sets.reduce((acc, s, i) => acc + (Math.min(...s) === i ? s.size : 0), 0);
  assert.equal(covered, f.n);
});

Deno.test("ivf: recall@k on clustered data rises with nprobe and reaches 0.99 with the defaults", async () => {
  const f = clustered(60);
  const k = 30;
  const exact = await exactKnn(f, { k, backend: "cpu", progress: false });
  const every = sampleRows(f.n, f.n);
  const recall = async (nprobe?: number) => {
    const r = await ivfKnn(f, { k, nprobe });
    return recallAtK({ n: f.n, k, nbrs: r.nbrs, dists: r.dists }, exact.graph, every);
  };
  const one = await recall(1), four = await recall(4), byDefault = await recall();
  assert.ok(one < four && four <= byDefault, `recall ${one}, ${four}, ${byDefault}`);
  assert.ok(byDefault >= 0.99, `recall at defaults ${byDefault}`);
});

Deno.test("ivf: the two-level start shares lists by cluster rows and trains lists as good as flat k-means", async () => {
  // proportional whole parts, then largest remainders (ties: lower cluster), summing to the total
  assert.deepEqual([...shareLists([10, 10, 5], 10)], [4, 4, 2]);
  assert.deepEqual([...shareLists([3, 3, 3], 4)], [2, 1, 1]);
  assert.deepEqual([...shareLists([1, 9, 0], 9)], [1, 8, 0]);
  assert.deepEqual([...shareLists([2, 2], 4)], [2, 2]);
  assert.throws(() => shareLists([2, 2], 5), /5 lists for 4 rows/);
  // recall at a fixed nprobe: the default start (√nlist clusters, then 2 flat iterations) against 5 flat
  // iterations from random rows (coarse 1, the training before it), and against the start alone
  const f = clustered(60);
  const k = 30;
  const exact = await exactKnn(f, { k, backend: "cpu", progress: false });
  const every = sampleRows(f.n, f.n);
  const recall = async (o: { coarse?: number; iterations?: number }) => {
    const r = await ivfKnn(f, { k, nlist: 64, nprobe: 3, ...o });
    return recallAtK({ n: f.n, k, nbrs: r.nbrs, dists: r.dists }, exact.graph, every);
  };
  const twoLevel = await recall({}), flat = await recall({ coarse: 1, iterations: 0 });
  const startOnly = await recall({ iterations: 0 });
  assert.ok(twoLevel >= flat - 0.002, `two-level ${twoLevel}, flat ${flat}`);
  assert.ok(startOnly > 0.5 && startOnly < 1, `start alone ${startOnly}`);
  // the start alone gives other centroids than the start plus flat iterations, and flat (coarse 1) others again
  const p = ivfParams(f.n, { nlist: 64 });
  assert.equal(p.coarse, 8);
  const a = await trainIvfCentroids(f, p), b = await trainIvfCentroids(f, { ...p, iterations: 0 });
  const c = await trainIvfCentroids(f, { ...p, coarse: 1 });
  assert.notDeepEqual(a.centroids, b.centroids);
  assert.notDeepEqual(a.centroids, c.centroids);
});

Deno.test("ivf: trained centroids are unit rows, deterministic for a seed, different for another", async () => {
  const f = clustered(20);
  const params = ivfParams(f.n, { nlist: 30 });
  const a = await trainIvfCentroids(f, params);
  const b = await trainIvfCentroids(f, params);
  const c = await trainIvfCentroids(f, { ...params, seed: 1 });
  assert.equal(a.trainRows, 16 * 30);
  assert.deepEqual(a.centroids, b.centroids);
  assert.notDeepEqual(a.centroids, c.centroids);
  for (let l = 0; l < 30; l++) {
    let ss = 0;
    for (let t = 0; t < f.dim; t++) ss += a.centroids[l * f.dim + t]! ** 2;
    assert.ok(Math.abs(ss - 1) < 1e-5, `centroid ${l}: |c|² = ${ss}`);
  }
});

Deno.test("ivf: the registry opens it by name with its parameters", async () => {
  const f = rows(500, 16, { seed: 6 });
  const index = await openKnnIndex("ivf", { nlist: 10, nprobe: 2 });
  assert.match(index.label, /^cpu \(ivf, onnxruntime/);
  const run = await index.knn({ base: f, queries: f, k: 8 });
  const direct = await ivfKnn(f, { k: 8, nlist: 10, nprobe: 2 });
  assert.deepEqual([run.nbrs, run.dists], [direct.nbrs, direct.dists]);
  assert.deepEqual(run.params, {
    nlist: 10,
    nprobe: 2,
    chunkRows: 8192,
    trainPerList: 16,
    iterations: 2,
    coarse: 3,
    seed: 100,
    screenBits: 8,
  });
  await assert.rejects(
    openKnnIndex("ivf", { ef: 4 }),
    (e: Error) => e instanceof LtcError && /ivf: unknown parameter ef/.test(e.message),
  );
});

Deno.test("ivf: bad parameters end in one clear error", async () => {
  const f = rows(100, 8, { seed: 8 });
  const rejects = (options: Record<string, number>, pattern: RegExp) =>
    assert.rejects(ivfKnn(f, { k: 5, ...options }), (e: Error) => e instanceof LtcError && pattern.test(e.message));
  await rejects({ nlist: 10, nprobe: 11 }, /ivf: nprobe \(11\) exceeds nlist \(10\)/);
  await rejects({ nlist: 101 }, /ivf: nlist \(101\) exceeds the number of base rows \(100\)/);
  await rejects({ nlist: 0 }, /ivf: nlist must be an integer ≥ 1, got 0/);
  await rejects({ nprobe: 2.5 }, /ivf: nprobe must be an integer ≥ 1, got 2.5/);
  await rejects({ coarse: 0 }, /ivf: coarse must be an integer ≥ 1/);
  await rejects({ nlist: 10, coarse: 11 }, /ivf: coarse \(11\) exceeds nlist \(10\)/);
  await rejects({ iterations: -1 }, /ivf: iterations must be an integer ≥ 0/);
  await rejects({ k: 101 }, /ivf: k = 101 exceeds the number of base rows \(100\)/);
  await rejects({ screenBits: 16 }, /ivf: screenBits must be 8 or 32, got 16/);
  await assert.rejects(
    ivfKnn(f, { k: 5, queries: rows(3, 4, { seed: 1 }) }),
    (e: Error) => e instanceof LtcError && /queries have dim 4 but the base has dim 8/.test(e.message),
  );
  // defaults: nlist 12·√N capped at N, nprobe nlist / 48 (at least 32, at most nlist)
  assert.equal(defaultNlist(584013), 9170);
  assert.deepEqual(ivfParams(100, {}), {
    nlist: 100,
    nprobe: 32,
    chunkRows: 8192,
    trainPerList: 16,
    iterations: 2,
    coarse: 10,
    seed: 100,
    screenBits: 8,
  });
  assert.deepEqual(ivfParams(10_000, {}), {
    nlist: 1200,
    nprobe: 32,
    chunkRows: 19200,
    trainPerList: 16,
    iterations: 2,
    coarse: 35,
    seed: 100,
    screenBits: 8,
  });
  assert.deepEqual([ivfParams(98279, {}).nprobe, ivfParams(584013, {}).nprobe], [79, 192]);
  // chunks: 16·nlist rows (≈ 32 first-pass queries a list product), at most 2²⁸ probe ids; later-pass blocks of at
  // most 2²⁶ index entries (part1: nlist 9170, nprobe 192; the seed's scale 9: 27,477 and 573)
  assert.deepEqual([defaultChunkRows(9170, 192), defaultChunkRows(27477, 573), defaultChunkRows(27477, 5000)], [
    146944,
    439808,
    53504,
  ]);
  assert.deepEqual([scanBlockRows(192), scanBlockRows(573), scanBlockRows(1)], [353024, 117504, 67108864]);
});

Deno.test("knn stage --method ivf: ivf_k_<k>.npz; recall, parameters, list statistics in the sidecar", async () => {
  const dir = tempDir();
  try {
    Deno.mkdirSync(join(dir, "features"));
    const f = clustered(40);
    writeFeatures(join(dir, "features", "c.bin"), f.data);
    const out = await runKnnStage({
      prefix: dir,
      name: "c",
      k: 20,
      dim: 64,
      method: "ivf",
      ivf: { nlist: 50, nprobe: 50 },
      recallSample: 300,
      progress: false,
    });
    assert.equal(out.path, join(dir, "knns", "c", "ivf_k_20.npz"));
    const side = JSON.parse(Deno.readTextFileSync(`${out.path}.meta.json`));
    assert.equal(side.params.method, "ivf");
    assert.deepEqual(side.params.ivf, {
      nlist: 50,
      nprobe: 50,
      chunkRows: 8192,
      trainPerList: 16,
      iterations: 2,
      coarse: 7,
      seed: 100,
      screenBits: 8,
    });
    assert.match(side.backend, /^cpu \(ivf, onnxruntime/);
    // every list probed: exact rows, recall 1
    assert.deepEqual(side.recall.sample, 300);
    assert.equal(side.recall.recallAtK, 1);
    // and every exact neighbour above each similarity cut found; the clustered rows have some above every cut
    assert.deepEqual(side.recall.aboveSimilarity.map((a: { similarity: number }) => a.similarity), [0.5, 0.6, 0.7]);
    for (const a of side.recall.aboveSimilarity) assert.ok(a.recall === 1 && a.neighbours > 0, JSON.stringify(a));
    assert.equal(side.ivf.scanned_fraction, 1);
    // where the time went: the six phases, summing to the build and the query time (to the sidecar's rounding)
    const phases = side.ivf.phase_seconds;
    assert.deepEqual(Object.keys(phases).sort(), ["assign", "firstPass", "quantize", "rank", "secondPass", "train"]);
    assert.ok(Math.abs(phases.train + phases.assign - side.ivf.build_seconds) < 0.02, JSON.stringify(side.ivf));
    assert.ok(phases.quantize + phases.rank + phases.firstPass + phases.secondPass <= side.ivf.query_seconds + 0.03);
    const want = await exactKnn(f, { k: 20, backend: "cpu", progress: false });
    assert.deepEqual(readKnn(out.path).nbrs, want.graph.nbrs);
    const again = await runKnnStage({
      prefix: dir,
      name: "c",
      k: 20,
      dim: 64,
      method: "ivf",
      ivf: { nlist: 50, nprobe: 50 },
      progress: false,
    });
    assert.equal(again.skipped, true);
    // the CLI: defaults resolved from N into the sidecar; nprobe > nlist is one clear error
    const cli = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "stages/knn.ts", "--prefix", dir, "--name", "c", "--dim", "64", "--k", "20", ...args],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await cli(["--method", "ivf", "--nprobe", "4", "--force", "--recall-sample", "200"]);
    assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
    const side2 = JSON.parse(Deno.readTextFileSync(`${out.path}.meta.json`));
    assert.equal(side2.params.ivf.nlist, defaultNlist(f.n));
    assert.equal(side2.params.ivf.nprobe, 4);
    assert.ok(side2.recall.recallAtK > 0.5 && side2.recall.recallAtK < 1, `recall ${side2.recall.recallAtK}`);
    const bad = await cli(["--method", "ivf", "--nlist", "8", "--nprobe", "9"]);
    assert.equal(bad.code, 2);
    const err = new TextDecoder().decode(bad.stderr).trim();
    assert.equal(err.split("\n").length, 1, err);
    assert.match(err, /^error: ivf: nprobe \(9\) exceeds nlist \(8\)$/);
    // downstream stages (`--knn-method ivf`) build a missing ivf_k_<k>.npz with the defaults
    const path = join(dir, "knns", "c", "ivf_k_10.npz");
    const source = { path: join(dir, "features", "c.bin"), dim: 64 };
    const built = await loadOrBuildKnn(path, { features: new FeatureCache(source), k: 10, knnMethod: "ivf" });
    assert.equal(built.k, 10);
    const side3 = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
    assert.equal(side3.params.method, "ivf");
    assert.equal(side3.params.ivf.nprobe, defaultNprobe(defaultNlist(f.n)));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("knn-recall stage: measures a kNN file again as the kNN stage's sidecar records it; bad input, one error", async () => {
  const dir = tempDir();
  try {
    Deno.mkdirSync(join(dir, "features"));
    const featPath = join(dir, "features", "c.bin");
    writeFeatures(featPath, clustered(40).data);
    // few lists probed: recall@k below 1
    const built = await runKnnStage({
      prefix: dir,
      name: "c",
      k: 20,
      dim: 64,
      method: "ivf",
      backend: "cpu",
      ivf: { nlist: 50, nprobe: 2 },
      recallSample: 300,
      progress: false,
    });
    const side = JSON.parse(Deno.readTextFileSync(`${built.path}.meta.json`));
    assert.ok(side.recall.recallAtK < 1, JSON.stringify(side.recall));
    const json = join(dir, "recall.json");
    const common = ["--knn-path", built.path, "--dim", "64", "--backend", "cpu"];
    const run = await runStage("knn_recall.ts", [
      ...common,
      "--feat-path",
      featPath,
      "--sample",
      "300",
      "--json",
      json,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const got = JSON.parse(Deno.readTextFileSync(json));
    assert.deepEqual(got, side.recall);
    assert.match(run.stdout, new RegExp(`recall@20 ${side.recall.recallAtK.toFixed(4)}`));
    assert.match(run.stdout, /similarity ≥ 0\.6: /);
    // features of another row count: one error naming the features file
    const other = join(dir, "features", "other.bin");
    writeFeatures(other, clustered(41).data);
    const bad = await runStage("knn_recall.ts", [...common, "--feat-path", other]);
    assert.equal(bad.code, 2);
    const lines = bad.stderr.trim().split("\n");
    assert.equal(lines.length, 1, bad.stderr);
    assert.match(lines[0]!, /other\.bin/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
