/**
 * The pipeline through a real Slurm: a one-node cluster on this machine (slurm/local_cluster.sh: munged, slurmctld,
 * slurmd as root), `make slurm-pipeline` with 4 kNN shards and 2 detect shards at the default scale, and every
 * artifact compared byte for byte with a single-machine `make` of the same targets in the same paths. On the way, one
 * kNN shard is made to fail: the submission fails naming it, nothing after it runs, the shard is re-run alone with
 * `sbatch --array=2 <its job script>`, and the same submission again completes the chain.
 *
 * Needs Debian's slurm-wlm and munge and root; skipped (ignored) without them unless LTC_REQUIRE_SLURM=1, which
 * .ci/run sets after installing them, so in CI it always runs. GCN-D is not trained here: both runs score with the
 * original's checkpoint format from ../shared/fixtures (a random 256-d GCN-D), as `CKPT=` lets `make` do.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { listTree } from "./_files.ts";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const CKPT = join(ROOT, "..", "shared", "fixtures", "gcn_d", "gcn_d_zip.pth");
const SETS = ["ms1m_2_prpsls", "train_ms1m_4_prpsls", "ms1m_2_prpsls_iter1"];

function has(tool: string): boolean {
  return new Deno.Command("bash", { args: ["-c", `command -v ${tool}`], stdout: "null", stderr: "null" })
    .outputSync().success;
}

const missing = ["sbatch", "slurmctld", "slurmd", "munged"].filter((t) => !has(t));
const isRoot = Deno.uid() === 0;
const required = Deno.env.get("LTC_REQUIRE_SLURM") === "1";
const available = missing.length === 0 && isRoot;
if (required && !available) {
  Deno.test("slurm: Slurm is required here (LTC_REQUIRE_SLURM=1)", () => {
    assert.fail(`missing: ${missing.join(", ") || "-"}${isRoot ? "" : "; not root"} (apt-get install slurm-wlm munge)`);
  });
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}):\n${text.slice(-4000)}`);
  return text;
}

/** Every file under `dir` (relative paths), sidecars and Slurm scripts/logs left out. */
function artifacts(dir: string): string[] {
  return listTree(dir).files.filter((rel) => !rel.endsWith(".meta.json"));
}

Deno.test({
  name: "slurm: make slurm-pipeline (4 kNN shards, 2 detect shards) writes the same bytes as make",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "ltc-slurm-" });
    const synth = join(tmp, "synth"), results = join(tmp, "results");
    const vars = [`SYNTH_ROOT=${synth}`, `RESULTS_ROOT=${results}`, `CKPT=${CKPT}`, "SCALE=default"];
    const run_dir = join(results, "default_part1_test");
    const cluster = join(tmp, "cluster");
    try {
      // the single-machine run of the same targets, in the same paths (the score files record folder paths)
      await run("make", [...vars, ...SETS.map((s) => join(run_dir, `gcn_d_${s}`, "pred_labels.txt"))]);
      await Deno.rename(synth, join(tmp, "ref_synth"));
      await Deno.rename(results, join(tmp, "ref_results"));

      const started = await run("bash", ["slurm/local_cluster.sh", "start", cluster]);
      const conf = started.match(/SLURM_CONF=(\S+)/)?.[1];
      assert.ok(conf, `no SLURM_CONF in: ${started}`);
      const env = { SLURM_CONF: conf };
      const submit = ["slurm-pipeline", ...vars, "KNN_SHARDS=4", "DETECT_SHARDS=2", "SLURM_OPTS=--wait"];
      try {
        // kNN shard 2 cannot write its part (a folder stands in its way): the chain stops there, naming the job
        const blocker = join(synth, "default", "knns", "part1_test", "faiss_k_80.part_2_of_4.npz");
        Deno.mkdirSync(blocker, { recursive: true });
        const failed = await new Deno.Command("make", {
          args: submit,
          cwd: ROOT,
          env,
          stdout: "piped",
          stderr: "piped",
        })
          .output();
        const said = new TextDecoder().decode(failed.stderr);
        assert.ok(!failed.success, "a failed shard must fail the submission");
        assert.match(said, /slurm-submit: job knn \(\d+\) ended FAILED; logs in /);
        let mergedBeforeRerun = true;
        try {
          Deno.statSync(join(synth, "default", "knns", "part1_test", "faiss_k_80.npz"));
        } catch {
          mergedBeforeRerun = false;
        }
        assert.ok(!mergedBeforeRerun, "nothing after the failed shard ran");
        // re-run that shard alone, then submit the same command again: the rest of the chain completes
        Deno.removeSync(blocker);
        await run("sbatch", ["--wait", "--array=2", join(run_dir, "slurm", "jobs", "knn.sh")], env);
        await run("make", submit, env);
      } finally {
        await run("bash", ["slurm/local_cluster.sh", "stop", cluster]);
      }

      // the kNN file was merged from 4 parts, every set's scores from 2
      const knnDir = join(synth, "default", "knns", "part1_test");
      assert.equal(artifacts(knnDir).filter((f) => /\.part_\d+_of_4\.npz$/.test(f)).length, 4);
      for (const s of SETS) {
        assert.equal(artifacts(join(run_dir, `gcn_d_${s}`)).filter((f) => /\.part_\d+_of_2\.npz$/.test(f)).length, 2);
      }
      assert.ok(Deno.statSync(join(run_dir, "report.md")).isFile);
      // every artifact of the single-machine run, byte for byte
      const trees = [[join(tmp, "ref_synth"), synth, 1000], [join(tmp, "ref_results"), results, 9]] as const;
      for (const [ref, got, least] of trees) {
        const files = artifacts(ref);
        // features, labels, the kNN file, proposal files; per set the score file, pred_labels.txt, metrics.json
        assert.ok(files.length >= least, `${ref}: only ${files.length} files`);
        for (const f of files) {
          const a = Deno.readFileSync(join(ref, f));
          let b: Uint8Array;
          try {
            b = Deno.readFileSync(join(got, f));
          } catch {
            assert.fail(`${f}: written by make but not by the Slurm run`);
          }
          assert.ok(a.length === b.length && a.every((x, i) => x === b[i]), `${f}: differs from the make run`);
        }
      }
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
