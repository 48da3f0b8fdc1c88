/**
 * The Slurm plan (slurm/plan.ts) without Slurm: the chain's jobs, their dependencies, array sizes, the commands each
 * runs, quoting of awkward paths, and refusals. The real-cluster run is tests/slurm_test.ts.
 */
import assert from "node:assert/strict";
import { jobScript, planPipeline, sbatchOptions, shellQuote, type SlurmPipelineOptions } from "../slurm/plan.ts";
import { LtcError } from "../shared/errors.ts";

const base: SlurmPipelineOptions = {
  repo: "/repo",
  data: "/shared/data",
  name: "part1_test",
  results: "/shared/results/run",
  synth: { scale: "default", seed: 42 },
  loadFrom: "/shared/ckpt.pth",
  labels: "/shared/data/labels/part1_test.meta",
  knnShards: 4,
  detectShards: 2,
};

Deno.test("slurm plan: the chain, in submission order, each job after the jobs it waits for", () => {
  const jobs = planPipeline(base);
  assert.deepEqual(jobs.map((j) => [j.key, j.array ?? 0, j.after]), [
    ["synth", 0, []],
    ["knn", 4, ["synth"]],
    ["knn-merge", 0, ["knn"]],
    ["proposals", 0, ["knn-merge"]],
    ["detect-ms1m_2_prpsls", 2, ["proposals"]],
    ["detect-merge-ms1m_2_prpsls", 0, ["detect-ms1m_2_prpsls"]],
    ["detect-train_ms1m_4_prpsls", 2, ["proposals"]],
    ["detect-merge-train_ms1m_4_prpsls", 0, ["detect-train_ms1m_4_prpsls"]],
    ["detect-ms1m_2_prpsls_iter1", 2, ["proposals"]],
    ["detect-merge-ms1m_2_prpsls_iter1", 0, ["detect-ms1m_2_prpsls_iter1"]],
    ["report", 0, [
      "detect-merge-ms1m_2_prpsls",
      "detect-merge-train_ms1m_4_prpsls",
      "detect-merge-ms1m_2_prpsls_iter1",
    ]],
  ]);
  const seen = new Set<string>();
  for (const j of jobs) {
    for (const a of j.after) assert.ok(seen.has(a), `${j.key} waits for ${a}, submitted later`);
    seen.add(j.key);
  }
  // only kNN and detect shards ask for GPUs
  assert.deepEqual(jobs.filter((j) => j.gpu).map((j) => j.key), [
    "knn",
    "detect-ms1m_2_prpsls",
    "detect-train_ms1m_4_prpsls",
    "detect-ms1m_2_prpsls_iter1",
  ]);
});

Deno.test("slurm plan: shard commands carry the array task id; merges the shard count", () => {
  const jobs = new Map(planPipeline(base).map((j) => [j.key, j]));
  const knn = jobs.get("knn")!.lines.join("\n");
  assert.match(knn, /stages\/knn\.ts --prefix \/shared\/data --name part1_test --k 80 --dim 256 /);
  assert.match(knn, /--shard \$SLURM_ARRAY_TASK_ID\/4$/);
  assert.match(jobs.get("knn-merge")!.lines.join("\n"), /stages\/knn_merge\.ts .* --shards 4$/);
  const det = jobs.get("detect-ms1m_2_prpsls")!.lines;
  assert.equal(det[0], "mapfile -t folders < /shared/data/cluster_proposals/part1_test/ms1m_2_prpsls.faiss.folders");
  assert.match(det[2]!, /--work-dir \/shared\/results\/run\/gcn_d_ms1m_2_prpsls /);
  assert.match(det[2]!, /--shard \$SLURM_ARRAY_TASK_ID\/2 "\$\{args\[@\]\}"$/);
  assert.match(jobs.get("detect-merge-ms1m_2_prpsls")!.lines[0]!, /stages\/detect_merge\.ts .* --shards 2 /);
  const sbatch = sbatchOptions(jobs.get("knn")!, { results: base.results, resources: { mem: "8G" } });
  const script = jobScript(jobs.get("knn")!, { repo: "/repo", sbatch });
  assert.match(
    script,
    /^#!\/usr\/bin\/env bash\n#SBATCH --job-name=ltc-knn\n#SBATCH --output=\/shared\/results\/run\/slurm/,
  );
  assert.match(script, /\n#SBATCH --mem=8G\n# ltc-deno pipeline job 'knn'/);
  assert.ok(!script.includes("--array"), "the array range is given at submission, so one task can be re-run alone");
  assert.match(script, /\nset -euo pipefail\ncd \/repo\n/);
});

Deno.test("slurm plan: IVF adds one index job before the kNN array; no labels, no report", () => {
  const { labels: _, ...noLabels } = base;
  const jobs = planPipeline({ ...noLabels, knnMethod: "ivf", synth: undefined });
  assert.deepEqual(jobs.slice(0, 3).map((j) => [j.key, j.after]), [
    ["knn-index", []],
    ["knn", ["knn-index"]],
    ["knn-merge", ["knn"]],
  ]);
  assert.match(jobs[0]!.lines[0]!, /--method ivf --build-index$/);
  assert.match(jobs.find((j) => j.key === "proposals")!.lines.join("\n"), /--knn-method ivf --config/);
  assert.ok(!jobs.some((j) => j.key === "report"));
  assert.ok(!jobs.some((j) => j.lines.join(" ").includes("--label-path")));
});

Deno.test("slurm plan: paths with spaces and quotes survive the job script", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const odd = `${dir}/a b'c`;
    const jobs = planPipeline({ ...base, data: odd, synth: undefined });
    const line = jobs.find((j) => j.key === "knn")!.lines[0]!.replace("$SLURM_ARRAY_TASK_ID", "1");
    // run the line with `printf` instead of deno: bash must see the path as one word
    const out = await new Deno.Command("bash", {
      args: ["-c", line.replace(/^bin\/deno run -A stages\/knn\.ts/, "printf '%s\\n'")],
    }).output();
    const words = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert.equal(words[1], odd);
    assert.equal(words.at(-1), "1/4");
    assert.equal(shellQuote("plain/path-1.txt"), "plain/path-1.txt");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("slurm plan: sbatch options from the resources", () => {
  const jobs = planPipeline(base);
  const resources = {
    partition: "gpu",
    account: "lab",
    cpus: 8,
    mem: "32G",
    gpus: 1,
    time: "1:00:00",
    extra: ["--qos=x"],
  };
  const knn = sbatchOptions(jobs.find((j) => j.key === "knn")!, { results: base.results, resources });
  assert.deepEqual(knn, [
    "--job-name=ltc-knn",
    "--output=/shared/results/run/slurm/logs/knn_%A_%a.log",
    "--kill-on-invalid-dep=yes",
    "--array=0-3",
    "--partition=gpu",
    "--account=lab",
    "--cpus-per-task=8",
    "--mem=32G",
    "--time=1:00:00",
    "--gres=gpu:1",
    "--qos=x",
  ]);
  const merge = sbatchOptions(jobs.find((j) => j.key === "knn-merge")!, { results: base.results, resources });
  assert.ok(!merge.some((o) => o.startsWith("--gres")), "a merge asks for no GPU");
  assert.ok(merge.includes("--output=/shared/results/run/slurm/logs/knn-merge_%j.log"));
});

Deno.test("slurm plan: bad shard counts and empty set lists are refused", () => {
  assert.throws(
    () => planPipeline({ ...base, knnShards: 0 }),
    (e) => e instanceof LtcError && /--knn-shards/.test(e.message),
  );
  assert.throws(() => planPipeline({ ...base, detectShards: 1.5 }), /--detect-shards/);
  assert.throws(() => planPipeline({ ...base, proposalSets: [] }), /no proposal sets/);
});
