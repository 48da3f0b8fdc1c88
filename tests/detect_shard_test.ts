/**
 * Sharded GCN-D detection (`detect --shard I/S` + `detect-merge`): on the original's sref proposals and its GCN-D
 * checkpoint, the merged scores file, labels and metrics are the unsharded run's bytes; the scoring plan's spans give
 * the unsharded bits on the CPU twin and on WebGPU (however the proposals are split, down to one per part); and
 * every inconsistent set of parts is refused with one error naming the part.
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFeatures } from "../shared/features.ts";
import { listProposalFiles } from "../shared/proposal_io.ts";
import { parseShard } from "../shared/shard.ts";
import { getGpu } from "../gpu/device.ts";
import {
  createEngine,
  loadCheckpoint,
  planChunks,
  planSpan,
  readAllNodes,
  type ScorePlan,
  scoreProposals,
} from "../gpu/gcn/mod.ts";
import { oneErrorLine } from "./_bad_input.ts";
import { REF, runStage, SHARED, tempDir } from "./_helpers.ts";

const CKPT = `${SHARED}/fixtures/gcn_d/gcn_d_legacy.pth`;
const HAS_FIXTURES = existsSync(`${REF}/features/sref.bin`) && existsSync(CKPT);
const HAS_WEBGPU = !!(globalThis.navigator as Navigator | undefined)?.gpu;
const FOLDERS = ["0.6", "0.65", "0.7", "0.75"].map((th) =>
  `${REF}/cluster_proposals/sref/faiss_k_80_th_${th}_step_0.05_minsz_3_maxsz_300_iter_0/proposals`
);
/** Small chunks, so that the 217 proposals (12,004 node rows) make ~20 chunks and every part has several. */
const CHUNK_ROWS = 600;
const DETECT = [
  "--feat-path",
  `${REF}/features/sref.bin`,
  ...FOLDERS.flatMap((f) => ["--proposal-folders", f]),
  "--load-from",
  CKPT,
  "--backend",
  "cpu",
  "--chunk-rows",
  String(CHUNK_ROWS),
];
const FINISH = ["--label-path", `${REF}/labels/sref.meta`, "--th-pos", "0.05", "--th-iou", "0.9"];
const OUTPUTS = ["gcn_d_legacy.npz", "pred_labels.txt", "metrics.json"];

/** Run a stage that must succeed. */
async function ok(stage: string, args: string[]): Promise<void> {
  const r = await runStage(stage, args);
  assert.equal(r.code, 0, `${stage} ${args.join(" ")} failed:\n${r.stderr}`);
}

/** Run detect-merge that must fail with one error line mentioning every one of `parts`. */
async function refused(args: string[], ...parts: string[]): Promise<void> {
  const r = await runStage("detect_merge.ts", args);
  const one = oneErrorLine(r);
  assert.ok("line" in one, `detect-merge ${args.join(" ")}: ${"problem" in one ? one.problem : ""}\n${r.stderr}`);
  for (const p of parts) assert.ok(one.line.includes(p), `"${one.line}" does not mention "${p}"`);
}

/** Positions of the plan's order scored by each of `count` parts, checked to meet and cover, as proposal lists. */
function spans(plan: ScorePlan, count: number): { start: number; end: number }[] {
  const out = Array.from({ length: count }, (_, i) => planSpan(plan, i, count));
  assert.equal(out[0]!.start, 0);
  assert.equal(out[count - 1]!.end, plan.order.length);
  for (let i = 1; i < count; i++) assert.equal(out[i]!.start, out[i - 1]!.end);
  for (const s of out) {
    assert.ok(plan.bounds.includes(s.start) && plan.bounds.includes(s.end), `${s.start}…${s.end} not at bounds`);
  }
  return out;
}

Deno.test("detect shard: --shard accepts I/S with 0 ≤ I < S and refuses anything else", () => {
  assert.deepEqual(parseShard("0/1"), { index: 0, count: 1 });
  assert.deepEqual(parseShard("2/3"), { index: 2, count: 3 });
  for (const bad of ["3/3", "1/0", "0/0", "a/b", "-1/3", "1", "1/2/3", ""]) {
    assert.throws(() => parseShard(bad), (e: Error) => e.name === "LtcError" && e.message.startsWith("--shard"));
  }
});

Deno.test({
  name: "detect shard: the plan's chunks respect chunk-rows, and its spans score the unsharded bits (CPU twin)",
  ignore: !HAS_FIXTURES,
  async fn() {
    const feats = readFeatures(`${REF}/features/sref.bin`, { dim: 256 });
    const files = listProposalFiles(FOLDERS);
    const nodes = readAllNodes(files, feats.n);
    const plan = planChunks(nodes, feats.n, { chunkRows: CHUNK_ROWS });
    assert.deepEqual([...plan.order].sort((a, b) => a - b), files.map((_, i) => i));
    for (let c = 0; c + 1 < plan.bounds.length; c++) {
      let rows = 0;
      for (let i = plan.bounds[c]!; i < plan.bounds[c + 1]!; i++) rows += nodes[plan.order[i]!]!.length;
      const one = plan.bounds[c + 1]! - plan.bounds[c]! === 1;
      assert.ok(rows <= CHUNK_ROWS || one, `chunk ${c} packs ${rows} rows`);
    }
    const engine = await createEngine(loadCheckpoint(CKPT, { featureDim: 256 }).weights, "cpu");
    try {
      const full = await scoreProposals(engine, feats, files, nodes, { chunkRows: CHUNK_ROWS });
      const chunks = plan.bounds.length - 1;
      for (const count of [2, 3, 5, chunks]) {
        const joined = new Float32Array(files.length).fill(NaN);
        for (const span of spans(plan, count)) {
          const part = await scoreProposals(engine, feats, files, nodes, { plan, span });
          for (let i = 0; i < files.length; i++) {
            const inside = plan.order.indexOf(i) >= span.start && plan.order.indexOf(i) < span.end;
            if (inside) joined[i] = part[i]!;
            else assert.ok(Number.isNaN(part[i]!), `proposal ${i} outside the span was scored`);
          }
        }
        assert.deepEqual(new Uint32Array(joined.buffer), new Uint32Array(full.buffer), `${count} parts`);
      }
      // One proposal per chunk and per part: still the bits of the unsharded run with the same plan.
      const single = planChunks(nodes, feats.n, { chunkRows: 1 });
      const fullSingle = await scoreProposals(engine, feats, files, nodes, { plan: single });
      for (const i of [0, 100, files.length - 1]) {
        const span = { start: i, end: i + 1 };
        const part = await scoreProposals(engine, feats, files, nodes, { plan: single, span });
        assert.equal(part[single.order[i]!], fullSingle[single.order[i]!]);
      }
    } finally {
      engine.dispose();
    }
  },
});

Deno.test({
  name: "detect shard: spans of the plan score the unsharded bits on WebGPU (small)",
  ignore: !HAS_FIXTURES || !HAS_WEBGPU,
  async fn() {
    if (!(await getGpu())) return;
    const feats = readFeatures(`${REF}/features/sref.bin`, { dim: 256 });
    const files = listProposalFiles(FOLDERS).slice(0, 30);
    const nodes = readAllNodes(files, feats.n);
    const plan = planChunks(nodes, feats.n, { chunkRows: 300 });
    const engine = await createEngine(loadCheckpoint(CKPT, { featureDim: 256 }).weights, "webgpu");
    try {
      const full = await scoreProposals(engine, feats, files, nodes, { plan });
      const joined = new Float32Array(files.length).fill(NaN);
      for (const span of spans(plan, 3)) {
        const part = await scoreProposals(engine, feats, files, nodes, { plan, span });
        for (let k = span.start; k < span.end; k++) joined[plan.order[k]!] = part[plan.order[k]!]!;
      }
      assert.deepEqual(new Uint32Array(joined.buffer), new Uint32Array(full.buffer));
    } finally {
      engine.dispose();
    }
  },
});

Deno.test({
  name: "detect shard: S = 2 and 3 parts merged give the unsharded scores, labels and metrics byte for byte",
  ignore: !HAS_FIXTURES,
  async fn() {
    const root = tempDir();
    try {
      await ok("detect.ts", [...DETECT, ...FINISH, "--work-dir", `${root}/whole`]);
      const whole = JSON.parse(Deno.readTextFileSync(`${root}/whole/gcn_d_legacy.npz.meta.json`));
      for (const count of [2, 3]) {
        const dir = `${root}/s${count}`;
        for (let i = 0; i < count; i++) {
          await ok("detect.ts", [...DETECT, "--work-dir", dir, "--shard", `${i}/${count}`]);
        }
        assert.ok(!existsSync(`${dir}/pred_labels.txt`), "a part wrote labels");
        const part = JSON.parse(Deno.readTextFileSync(`${dir}/gcn_d_legacy.part_1_of_${count}.npz.meta.json`));
        assert.equal(part.stage, "detect-part");
        assert.deepEqual(part.inputs, whole.inputs);
        await ok("detect_merge.ts", ["--work-dir", dir, "--load-from", CKPT, "--shards", String(count), ...FINISH]);
        for (const f of OUTPUTS) {
          assert.deepEqual(
            Deno.readFileSync(`${dir}/${f}`),
            Deno.readFileSync(`${root}/whole/${f}`),
            `${f}, S=${count}`,
          );
        }
        // The merged sidecar says what the unsharded one says (same params and inputs), plus the shards.
        const merged = JSON.parse(Deno.readTextFileSync(`${dir}/gcn_d_legacy.npz.meta.json`));
        const strip = (s: Record<string, unknown>) => ({ ...s, artifact: null, timings_s: null, shards: null });
        assert.deepEqual(strip(merged), strip(whole));
        assert.equal(merged.shards.parts.length, count);
        assert.equal(merged.shards.parts.at(-1).end, whole.proposal_count);
      }

      // Refusals, on copies of the 3-part set: each one error line naming the part and the problem.
      const dir = `${root}/s3`;
      const merge = (extra: string[] = []) => ["--work-dir", dir, "--load-from", CKPT, "--shards", "3", ...extra];
      const part = (i: number, s = 3) => `${root}/s${s}/gcn_d_legacy.part_${i}_of_${s}.npz`;
      const stash = (path: string) => {
        Deno.renameSync(path, `${path}.away`);
        Deno.renameSync(`${path}.meta.json`, `${path}.meta.json.away`);
        return () => {
          Deno.renameSync(`${path}.away`, path);
          Deno.renameSync(`${path}.meta.json.away`, `${path}.meta.json`);
        };
      };
      let restore = stash(part(1));
      await refused(merge(), part(1), "missing");
      // another S: part 1 of 2 where part 1 of 3 should be
      Deno.copyFileSync(part(1, 2), part(1));
      Deno.copyFileSync(`${part(1, 2)}.meta.json`, `${part(1)}.meta.json`);
      await refused(merge(), part(1), "part 1 of 2", "not part 1 of 3");
      Deno.removeSync(part(1));
      Deno.removeSync(`${part(1)}.meta.json`);
      restore();
      // a range that does not meet the previous part's
      const sideText = Deno.readTextFileSync(`${part(2)}.meta.json`);
      const side = JSON.parse(sideText);
      side.shard.start -= 1;
      side.shard.end -= 1;
      Deno.writeTextFileSync(`${part(2)}.meta.json`, JSON.stringify(side));
      await refused(merge(), part(2), "previous part ends at");
      Deno.writeTextFileSync(`${part(2)}.meta.json`, sideText);
      // a checkpoint with the same name but other bytes, given to the merge
      Deno.mkdirSync(`${root}/other`);
      Deno.copyFileSync(`${SHARED}/fixtures/gcn_d/gcn_d_zip.pth`, `${root}/other/gcn_d_legacy.pth`);
      await refused(
        ["--work-dir", dir, "--load-from", `${root}/other/gcn_d_legacy.pth`, "--shards", "3"],
        part(0),
        "differ from --load-from",
      );
      // a part scored with another checkpoint, or with other options
      restore = stash(part(1));
      const other = DETECT.map((a) => a === CKPT ? `${root}/other/gcn_d_legacy.pth` : a);
      await ok("detect.ts", [...other, "--work-dir", dir, "--shard", "1/3"]);
      await refused(merge(), part(1), "load_from");
      await ok("detect.ts", [...DETECT, "--work-dir", dir, "--shard", "1/3", "--wo-weight"]);
      await refused(merge(), part(1), "wo_weight");
      Deno.removeSync(part(1));
      Deno.removeSync(`${part(1)}.meta.json`);
      restore();
      // still mergeable after all that
      await ok("detect_merge.ts", merge(FINISH));
      assert.deepEqual(
        Deno.readFileSync(`${dir}/gcn_d_legacy.npz`),
        Deno.readFileSync(`${root}/whole/gcn_d_legacy.npz`),
      );
      // bad --shard strings are one error line naming the option
      for (const bad of ["3/3", "1/0", "x"]) {
        const r = await runStage("detect.ts", [...DETECT, "--work-dir", dir, "--shard", bad]);
        const one = oneErrorLine(r);
        assert.ok("line" in one && one.line.includes("--shard"), `--shard ${bad}: ${r.stderr}`);
      }
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  },
});
