import assert from "node:assert/strict";
import { writeLabels } from "../shared/meta.ts";
import { parseMethodSpecs, sizeHistogram, writeReport } from "../cluster/report.ts";
import { smallMultiples } from "../shared/svg.ts";
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

Deno.test("report: empty size bins are 0 and left out of the log-log panels, one panel per method", () => {
  // sizes 1 and 5: the bins 2 and 4 between them are empty
  const labels = Int32Array.from([0, 1, 1, 1, 1, 1]);
  assert.deepEqual(sizeHistogram(labels), [[1, 1], [2, 0], [4, 0], [8, 1]]);
  const svg = smallMultiples(
    [{ name: "A", points: sizeHistogram(labels) }, { name: "B", points: [[1, 6], [2, 0]] }],
    {
      title: "t",
      reference: { name: "ground truth", points: [[1, 2], [2, 2]] },
      xLabel: "x",
      yLabel: "y",
      logX: true,
      logY: true,
    },
  );
  assert.equal(svg.match(/<rect x="\d+(\.\d+)?" y="\d+(\.\d+)?" width="260"/g)?.length, 2, "two panels");
  // A's line breaks at the empty bins: two sub-paths (1 and 8) in its colour, and no point drawn at a zero count
  const paths = [...svg.matchAll(/<path d="([^"]+)" fill="none" stroke="#1f77b4"/g)].map((m) => m[1]!);
  assert.equal(paths.length, 1);
  assert.equal(paths[0]!.split("M").length - 1, 2);
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/);
});
