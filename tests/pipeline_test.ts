import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";

async function make(args: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command("make", { args, stdout: "piped", stderr: "piped", env: { NO_COLOR: "1" } })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("make pipeline: the whole job on the tiny synthetic benchmark, then nothing to do on a second run", async () => {
  const root = tempDir();
  const vars = [`SYNTH_ROOT=${root}/synth`, `RESULTS_ROOT=${root}/results`, "SCALE=tiny"];
  const first = await make(["pipeline", ...vars]);
  assert.equal(first.code, 0, first.out.slice(-3000));
  const report = Deno.readTextFileSync(`${root}/results/tiny_part1_test/report.md`);
  const rows = report.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| Method"));
  assert.equal(rows.length, 14, report);
  for (const row of rows) {
    const cells = row.split("|").map((c) => c.trim());
    cells.slice(2, 7).forEach((c, col) => {
      // pairwise precision and F are undefined (n/a) for a method that predicts no pair, e.g. all singletons
      if (c === "n/a" && (col === 0 || col === 2)) return;
      const v = Number(c);
      assert.ok(v >= 0 && v <= 100, `${row}: ${c} is not a percentage`);
    });
  }
  // every row's label file covers the whole test set
  const gt = Deno.readTextFileSync(`${root}/synth/tiny/labels/part1_test.meta`).trim().split("\n").length;
  const gcn = Deno.readTextFileSync(`${root}/results/tiny_part1_test/gcn_d_ms1m_2_prpsls/pred_labels.txt`);
  assert.equal(gcn.trim().split("\n").length, gt);
  for (const f of ["cluster_sizes.svg", "precision_recall.svg", "results.json"]) {
    assert.ok(Deno.statSync(`${root}/results/tiny_part1_test/${f}`).size > 0, f);
  }
  const second = await make(["pipeline", ...vars]);
  assert.equal(second.code, 0, second.out);
  assert.match(second.out, /report\.md' is up to date/);
  assert.doesNotMatch(second.out, /stages\//, "a second run reruns no stage");
});
