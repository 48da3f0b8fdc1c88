import assert from "node:assert/strict";
import { writeLabels } from "../shared/meta.ts";
import { sizeHistogram, writeReport } from "../stages/report.ts";
import { runStage, tempDir } from "./_helpers.ts";

Deno.test("report: seed-format table from label files, markdown and readable SVG figures", () => {
  const dir = tempDir();
  writeLabels(`${dir}/gt.meta`, [0, 0, 0, 1, 1, 2]);
  writeLabels(`${dir}/perfect.txt`, [5, 5, 5, 7, 7, 9]);
  writeLabels(`${dir}/merged.txt`, [0, 0, 0, 0, 0, 0]);
  Deno.mkdirSync(`${dir}/run/methods`, { recursive: true });
  const entry = (method: string, order: number, file: string) =>
    Deno.writeTextFileSync(
      `${dir}/run/methods/${method}.json`,
      JSON.stringify({ method, order, pred_labels: `${dir}/${file}`, wall_s: 0.25 }),
    );
  entry("Merged", 2, "merged.txt");
  entry("Perfect", 1, "perfect.txt");
  const table = writeReport(`${dir}/run`, `${dir}/gt.meta`, { title: "t" });
  const lines = table.split("\n");
  assert.equal(lines[0], "| Method | Precision | Recall | F-score | BCubed F | NMI | #clusters | Time (s) |");
  assert.equal(lines[2], "| Perfect | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 3 | 0.3 |");
  // all in one cluster: tk = 9+4+1-6 = 8 over pk = 36-6 = 30
  assert.match(lines[3]!, /^\| Merged \| 26\.67 \| 100\.00 \|/);
  const md = Deno.readTextFileSync(`${dir}/run/report.md`);
  assert.match(md, /!\[cluster sizes\]\(cluster_sizes\.svg\)/);
  for (const f of ["cluster_sizes.svg", "precision_recall.svg"]) {
    const svg = Deno.readTextFileSync(`${dir}/run/${f}`);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /Perfect/);
    assert.doesNotMatch(svg, /NaN|undefined/);
  }
});

Deno.test("report: doubling size bins; a run folder without results is a clear error", async () => {
  assert.deepEqual(sizeHistogram(Int32Array.from([1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4])), [[1, 1], [2, 1], [4, 1], [8, 1]]);
  const dir = tempDir();
  const run = await runStage("report.ts", ["--run-dir", dir, "--gt-labels", "x.meta"]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /methods: no such folder/);
});
