import assert from "node:assert/strict";
import { writeLabels } from "../shared/meta.ts";
import { parseMethodSpecs, sizeHistogram, writeReport } from "../cluster/report.ts";
import { runStage, tempDir } from "./_helpers.ts";

Deno.test("report: seed-format table from label files, markdown and readable SVG figures", () => {
  const dir = tempDir();
  writeLabels(`${dir}/gt.meta`, [0, 0, 0, 1, 1, 2]);
  writeLabels(`${dir}/perfect.txt`, [5, 5, 5, 7, 7, 9]);
  writeLabels(`${dir}/merged.txt`, [0, 0, 0, 0, 0, 0]);
  Deno.writeTextFileSync(
    `${dir}/perfect.txt.meta.json`,
    JSON.stringify({ timings_s: { total: 0.25 }, params: { a: 1 } }),
  );
  const methods = [`Perfect=${dir}/perfect.txt`, `Merged (all=one)=${dir}/merged.txt`];
  const table = writeReport(`${dir}/run`, `${dir}/gt.meta`, { methods, title: "t" });
  const lines = table.split("\n");
  assert.equal(lines[0], "| Method | Precision | Recall | F-score | BCubed F | NMI | #clusters | Time (s) |");
  assert.equal(lines[2], "| Perfect | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 3 | 0.3 |");
  // all in one cluster: tk = 9+4+1-6 = 8 over pk = 36-6 = 30; no sidecar → no time
  assert.match(lines[3]!, /^\| Merged \(all=one\) \| 26\.67 \| 100\.00 \| .* \| 1 \| – \|$/);
  const md = Deno.readTextFileSync(`${dir}/run/report.md`);
  assert.match(md, /!\[cluster sizes\]\(cluster_sizes\.svg\)/);
  for (const f of ["cluster_sizes.svg", "precision_recall.svg"]) {
    const svg = Deno.readTextFileSync(`${dir}/run/${f}`);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /Perfect/);
    assert.doesNotMatch(svg, /NaN|undefined/);
  }
});

Deno.test("report: doubling size bins; bad method specs and missing files are clear errors", async () => {
  assert.deepEqual(sizeHistogram(Int32Array.from([1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4])), [[1, 1], [2, 1], [4, 1], [8, 1]]);
  assert.throws(() => parseMethodSpecs(["no-equals-sign"]), /LABEL=path/);
  assert.throws(() => parseMethodSpecs([]), /at least one/);
  const dir = tempDir();
  writeLabels(`${dir}/gt.meta`, [0, 1]);
  const run = await runStage("report.ts", [
    "--run-dir",
    dir,
    "--gt-labels",
    `${dir}/gt.meta`,
    "--method",
    "X=nope.txt",
  ]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /nope\.txt: no such file/);
});
