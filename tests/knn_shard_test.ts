/**
 * Sharded kNN (cluster/knn_shard.ts): shards + merge give the unsharded kNN file byte for byte, with equal sidecar
 * parameters, on every exact backend (onnxruntime, TypeScript, WebGPU where an adapter exists) and for IVF; the
 * merged file is up to date for a following unsharded run; and every bad part or `--shard` value ends in one
 * LtcError naming the file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LtcError } from "../shared/errors.ts";
import { l2NormalizeRows, writeFeatures } from "../shared/features.ts";
import { Rng } from "../shared/random.ts";
import { knnArtifactPath, type KnnStageOptions, runKnnStage } from "../cluster/knn_source.ts";
import { knnPartPath, parseShard, runKnnMerge, runKnnShard, shardRows } from "../cluster/knn_shard.ts";
import { ivfIndexPath, runIvfIndexStage } from "../cluster/ivf_index.ts";
import { getGpu } from "../gpu/device.ts";
import { EXACT_QUERY_BLOCK, exactKnn } from "../gpu/knn/mod.ts";
import { tempDir } from "./_helpers.ts";

const gpu = await getGpu();

/** Seeded Gaussian rows (not normalised: the stage normalises on load). */
function randomData(n: number, dim: number, seed: number): Float32Array {
  const rng = new Rng(seed, 17);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return data;
}

/** A temp data folder with `features/a.bin` of n × dim rows. */
function dataset(n: number, dim: number, seed = 1): string {
  const dir = tempDir();
  Deno.mkdirSync(join(dir, "features"));
  writeFeatures(join(dir, "features", "a.bin"), randomData(n, dim, seed));
  return dir;
}

/** Bytes and sidecar of a file (the sidecar without its timings and artifact-specific extras). */
function fileAndParams(path: string): { bytes: Uint8Array; params: unknown; inputs: unknown } {
  const side = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
  return { bytes: Deno.readFileSync(path), params: side.params, inputs: side.inputs };
}

/**
 * Build the unsharded file, then for each S the S shards and the merge (in this process); every merged file must
 * equal the unsharded one byte for byte with equal sidecar params and inputs, and a following unsharded run must
 * skip it as up to date.
 */
async function checkShardsEqualUnsharded(
  dir: string,
  base: KnnStageOptions,
  shardCounts: number[],
): Promise<void> {
  const path = knnArtifactPath(dir, "a", base.method ?? "exact", base.k);
  await runKnnStage({ ...base, force: true });
  const want = fileAndParams(path);
  for (const s of shardCounts) {
    Deno.removeSync(path);
    Deno.removeSync(`${path}.meta.json`);
    for (let i = 0; i < s; i++) await runKnnShard({ ...base, shard: `${i}/${s}` });
    await runKnnMerge({ prefix: dir, name: "a", k: base.k, method: base.method, shards: s });
    const got = fileAndParams(path);
    assert.ok(got.bytes.length === want.bytes.length, `S = ${s}: ${got.bytes.length} vs ${want.bytes.length} bytes`);
    assert.deepEqual(got.bytes, want.bytes, `S = ${s}: merged file differs from the unsharded one`);
    assert.deepEqual(got.params, want.params, `S = ${s}: sidecar params`);
    assert.deepEqual(got.inputs, want.inputs, `S = ${s}: sidecar inputs`);
    const side = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
    assert.equal(side.shards.length, s);
    assert.equal(side.shards[s - 1].rows[1], side.n);
    assert.ok(side.merge_seconds >= 0 && side.shards.every((p: { seconds: number }) => p.seconds > 0));
    const again = await runKnnStage(base);
    assert.equal(again.skipped, true, `S = ${s}: the merged file is not up to date for an unsharded run`);
  }
}

/** Rows [start, end) of a graph's arrays. */
const rowsOf = <T extends Int32Array | Float32Array>(a: T, k: number, start: number, end: number) =>
  a.subarray(start * k, end * k);

for (const backend of ["cpu", "webgpu"] as const) {
  Deno.test({
    name: `exactKnn rows: any range equals the full run's rows bit for bit (${backend})`,
    ignore: backend === "webgpu" && !gpu,
    async fn() {
      const n = backend === "cpu" ? 1001 : 560, dim = 64, k = 12;
      const data = randomData(n, dim, 5);
      l2NormalizeRows(data, n, dim);
      const f = { n, dim, data };
      const full = await exactKnn(f, { k, backend, progress: false });
      const b = EXACT_QUERY_BLOCK;
      const ranges = [[0, 1], [1, 3], [b - 1, b + 1], [b, b + 1], [2 * b - 1, 2 * b + 2], [n - 1, n], [n - 2, n]];
      for (const [start, end] of [...ranges, [3, n - 5]] as [number, number][]) {
        const r = await exactKnn(f, { k, backend, rows: { start, end }, progress: false });
        assert.equal(r.graph.n, end - start);
        assert.deepEqual(r.graph.nbrs, rowsOf(full.graph.nbrs, k, start, end), `ids of rows ${start}…${end - 1}`);
        assert.deepEqual(r.graph.dists, rowsOf(full.graph.dists, k, start, end), `dists of rows ${start}…${end - 1}`);
      }
      await assert.rejects(
        exactKnn(f, { k, backend, rows: { start: 5, end: 5 }, progress: false }),
        (e) => e instanceof LtcError && /not a non-empty range/.test(e.message),
      );
    },
  });
}

Deno.test("knn shards + merge = unsharded file, byte for byte (onnxruntime; S = 3, 4, 7; 1- and 2-row shards)", async () => {
  const dir = dataset(1001, 64);
  const tiny = dataset(23, 16, 2);
  try {
    const base = { prefix: dir, name: "a", k: 10, dim: 64, backend: "cpu", progress: false } as const;
    await checkShardsEqualUnsharded(dir, base, [3, 4, 7]);
    await checkShardsEqualUnsharded(tiny, { ...base, prefix: tiny, k: 5, dim: 16 }, [11, 23]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
    Deno.removeSync(tiny, { recursive: true });
  }
});

Deno.test({
  name: "knn shards + merge = unsharded file, byte for byte (webgpu; S = 3, 4, 7; 2-row shards)",
  ignore: !gpu,
  async fn() {
    const dir = dataset(500, 64);
    const tiny = dataset(37, 16, 2);
    try {
      const base = { prefix: dir, name: "a", k: 10, dim: 64, backend: "webgpu", progress: false } as const;
      await checkShardsEqualUnsharded(dir, base, [3, 4, 7]);
      await checkShardsEqualUnsharded(tiny, { ...base, prefix: tiny, k: 5, dim: 16 }, [18]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
      Deno.removeSync(tiny, { recursive: true });
    }
  },
});

/** Run `stages/<file>` in a subprocess with extra environment. */
async function stage(file: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `stages/${file}`, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("knn CLI: --shard I/S runs in parallel + knn-merge = unsharded file (TypeScript backend, S = 3, 4, 7)", async () => {
  const dir = dataset(1001, 64, 3);
  try {
    const env = { LTC_ORT: "none" }; // no onnxruntime: the plain TypeScript backend runs
    const common = ["--prefix", dir, "--name", "a", "--k", "10", "--dim", "64", "--backend", "cpu"];
    const path = knnArtifactPath(dir, "a", "exact", 10);
    const full = await stage("knn.ts", common, env);
    assert.equal(full.code, 0, full.stderr);
    const want = fileAndParams(path);
    assert.match(JSON.parse(Deno.readTextFileSync(`${path}.meta.json`)).backend, /typescript/);
    for (const s of [3, 4, 7]) {
      const runs = await Promise.all(
        Array.from({ length: s }, (_, i) => stage("knn.ts", [...common, "--shard", `${i}/${s}`], env)),
      );
      runs.forEach((r) => assert.equal(r.code, 0, r.stderr));
      const part = JSON.parse(
        Deno.readTextFileSync(
          `${knnPartPath(dir, "a", { method: "exact", k: 10, shard: { index: 1, count: s } })}.meta.json`,
        ),
      );
      assert.equal(part.stage, "knn-part");
      assert.deepEqual([part.shard, part.shards, part.n], [1, s, 1001]);
      assert.deepEqual(part.rows, [Math.floor(1001 / s), Math.floor(2002 / s)]);
      assert.deepEqual(part.params, want.params);
      const merged = await stage("knn_merge.ts", ["--prefix", dir, "--name", "a", "--k", "10", "--shards", `${s}`]);
      assert.equal(merged.code, 0, merged.stderr);
      const got = fileAndParams(path);
      assert.deepEqual(got.bytes, want.bytes, `S = ${s}: merged file differs`);
      assert.deepEqual(got.params, want.params);
    }
    const again = await stage("knn.ts", common, env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /is up to date/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("knn shard: row ranges and --shard parsing", () => {
  assert.deepEqual(parseShard("2/7"), { index: 2, count: 7 });
  for (const [n, s] of [[1001, 7], [10, 10], [5, 3]]) {
    let end = 0;
    for (let i = 0; i < s!; i++) {
      const r = shardRows(n!, { index: i, count: s! });
      assert.equal(r.start, end);
      assert.ok(r.end > r.start);
      end = r.end;
    }
    assert.equal(end, n);
  }
  // whole chunks: 1001 rows in chunks of 100 → 11 chunks over 4 shards: 2, 3, 3, 3 chunks (the last one short)
  const chunked = [0, 1, 2, 3].map((i) => shardRows(1001, { index: i, count: 4 }, 100));
  assert.deepEqual(chunked.map((r) => [r.start, r.end]), [[0, 200], [200, 500], [500, 800], [800, 1001]]);
  for (
    const [text, why] of [["abc", /must be I\/S/], ["3/3", /below S/], ["0/0", /at least 1/], ["-1/3", /must be I\/S/]]
  ) {
    assert.throws(
      () => parseShard(text as string, 100),
      (e) => e instanceof LtcError && (why as RegExp).test(e.message),
    );
  }
  assert.throws(
    () => parseShard("0/101", 100),
    (e) => e instanceof LtcError && /exceed the 100 feature rows/.test(e.message),
  );
});

Deno.test("knn-merge refuses missing, foreign, mismatched parts with one error naming the file", async () => {
  const dir = dataset(300, 16, 4);
  try {
    const base = { prefix: dir, name: "a", k: 6, dim: 16, backend: "cpu", progress: false } as const;
    const part = (i: number, s: number, k = 6) =>
      knnPartPath(dir, "a", { method: "exact", k, shard: { index: i, count: s } });
    const merge = (s: number) => runKnnMerge({ prefix: dir, name: "a", k: 6, shards: s });
    const refuses = async (s: number, file: string, why: RegExp) =>
      await assert.rejects(merge(s), (e) => {
        assert.ok(e instanceof LtcError, String(e));
        assert.ok(e.message.startsWith(`${file}:`), e.message);
        assert.match(e.message, why);
        return true;
      });
    for (let i = 0; i < 3; i++) await runKnnShard({ ...base, shard: `${i}/3` });
    const move = (from: string, to: string) => {
      Deno.renameSync(from, to);
      Deno.renameSync(`${from}.meta.json`, `${to}.meta.json`);
    };
    const sideOf = (p: string) => JSON.parse(Deno.readTextFileSync(`${p}.meta.json`));
    const setSide = (p: string, side: unknown) => Deno.writeTextFileSync(`${p}.meta.json`, JSON.stringify(side));

    // missing part
    move(part(1, 3), join(dir, "aside.npz"));
    await refuses(3, part(1, 3), /missing \(part 1 of 3\)/);
    move(join(dir, "aside.npz"), part(1, 3));
    await merge(3); // all good again

    // a part of another S (named as if of this S)
    await runKnnShard({ ...base, shard: "1/4" });
    move(part(1, 3), join(dir, "aside.npz"));
    move(part(1, 4), part(1, 3));
    await refuses(3, part(1, 3), /shard 1 of 4, but its name says 1 of 3/);
    move(part(1, 3), part(1, 4));
    move(join(dir, "aside.npz"), part(1, 3));

    // a part of another k (renamed into this k's name)
    await runKnnShard({ ...base, k: 7, shard: "2/3" });
    move(part(2, 3), join(dir, "aside.npz"));
    move(part(2, 3, 7), part(2, 3));
    await refuses(3, part(2, 3), /was built with parameters .*"k":7/);
    move(join(dir, "aside.npz"), part(2, 3));

    // a range that overlaps the previous part
    const side1 = sideOf(part(1, 3));
    setSide(part(1, 3), { ...side1, rows: [side1.rows[0] - 5, side1.rows[1]] });
    await refuses(3, part(1, 3), /must start at row 100/);
    // a sidecar range that does not match the rows the file holds
    const side0 = sideOf(part(0, 3));
    setSide(part(0, 3), { ...side0, rows: [0, 95] });
    setSide(part(1, 3), { ...side1, rows: [95, side1.rows[1]] });
    await refuses(3, part(0, 3), /holds rows \[0, 100\) of 300, but its sidecar says \[0, 95\)/);
    setSide(part(0, 3), side0);
    setSide(part(1, 3), side1);
    // not a part
    setSide(part(2, 3), { ...sideOf(part(2, 3)), stage: "knn" });
    await refuses(3, part(2, 3), /not a kNN part/);
    await runKnnShard({ ...base, shard: "2/3", force: true });
    await merge(3);

    // parts of other features: the features change after the parts were built
    writeFeatures(join(dir, "features", "a.bin"), randomData(300, 16, 99));
    await refuses(3, part(0, 3), /built from other features/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("knn CLI refuses --shard with hnsw and bad --shard values, naming the problem", async () => {
  const dir = dataset(50, 8, 6);
  try {
    const common = ["--prefix", dir, "--name", "a", "--k", "5", "--dim", "8"];
    const hnsw = await stage("knn.ts", [...common, "--method", "hnsw", "--shard", "0/2"]);
    assert.equal(hnsw.code, 2);
    assert.match(hnsw.stderr, /^error: knn: --shard does not work with --method hnsw: an HNSW graph is built/);
    for (const [value, why] of [["1-2", /must be I\/S/], ["2/2", /below S/], ["0/51", /51 shards exceed the 50/]]) {
      const r = await stage("knn.ts", [...common, "--shard", value as string]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, why as RegExp);
    }
    const merge = await stage("knn_merge.ts", ["--prefix", dir, "--name", "a", "--k", "5", "--shards", "2"]);
    assert.equal(merge.code, 2);
    assert.match(merge.stderr, /faiss_k_5\.part_0_of_2\.npz: missing \(part 0 of 2\)/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("knn IVF: shards over the shared index + merge = unsharded file, byte for byte (S = 3, 4, 7)", async () => {
  const dir = dataset(3001, 32, 7);
  try {
    // chunks of 256 rows: 12 chunks, so S = 3, 4, 7 cut them unevenly
    const base = {
      prefix: dir,
      name: "a",
      k: 10,
      dim: 32,
      method: "ivf",
      ivf: { nlist: 120, nprobe: 12, chunkRows: 256 },
      recallSample: 300,
      progress: false,
    } as const;
    await assert.rejects(
      runKnnShard({ ...base, shard: "0/3" }),
      (e) => e instanceof LtcError && e.message.startsWith(`${ivfIndexPath(dir, "a")}: missing;`),
    );
    assert.equal((await runIvfIndexStage(base)).skipped, false);
    assert.equal((await runIvfIndexStage(base)).skipped, true);
    const path = knnArtifactPath(dir, "a", "ivf", 10);
    await checkShardsEqualUnsharded(dir, base, [3, 4, 7]);
    // parts are whole chunks; the recall of the sample rows adds up to the unsharded run's
    const part = JSON.parse(
      Deno.readTextFileSync(`${knnPartPath(dir, "a", { ...base, shard: { index: 1, count: 7 } })}.meta.json`),
    );
    assert.deepEqual(part.rows, [256, 768]);
    await runKnnStage({ ...base, force: true });
    const unsharded = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
    await runKnnMerge({ prefix: dir, name: "a", k: 10, method: "ivf", shards: 7 });
    const merged = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
    assert.deepEqual(merged.recall, unsharded.recall);
    assert.equal(merged.recall.aboveSimilarity.length, 3);
    assert.ok(merged.recall.recallAtK > 0.5 && merged.recall.recallAtK <= 1);
    assert.equal(merged.ivf.scanned_fraction, unsharded.ivf.scanned_fraction);
    // more shards than chunks: refused
    await assert.rejects(
      runKnnShard({ ...base, shard: "0/13" }),
      (e) => e instanceof LtcError && /whole query chunks of 256 rows.*12 for 3001 rows/.test(e.message),
    );
    // an index of other parameters, or of other features: refused, naming the index
    await runIvfIndexStage({ ...base, ivf: { ...base.ivf, nlist: 100 }, force: true });
    await assert.rejects(
      runKnnShard({ ...base, shard: "0/3", force: true }),
      (e) => e instanceof LtcError && e.message.startsWith(`${ivfIndexPath(dir, "a")}: was built with`),
    );
    await runIvfIndexStage(base);
    writeFeatures(join(dir, "features", "a.bin"), randomData(3001, 32, 8));
    await assert.rejects(
      runKnnShard({ ...base, shard: "0/3", force: true }),
      (e) => e instanceof LtcError && /ivf_index\.npz: was built from other features/.test(e.message),
    );
    await assert.rejects(
      runKnnMerge({ prefix: dir, name: "a", k: 10, method: "ivf", shards: 3 }),
      (e) => e instanceof LtcError && /part_0_of_3\.npz: was built from other features/.test(e.message),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
