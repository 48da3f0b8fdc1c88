/**
 * `deno task slurm-submit`: run the pipeline on a Slurm cluster as job arrays with dependencies (see
 * {@linkcode ./plan.ts} for the chain).
 *
 *     deno task slurm-submit --data DIR --results DIR --load-from CKPT [--scale default [--seed 42]] \
 *       [--name part1_test] [--labels L] [--knn-shards 4] [--detect-shards 2] [--knn-method exact|ivf] \
 *       [--partition P] [--account A] [--cpus C] [--mem 16G] [--gpus G] [--time 2:00:00] [--sbatch-opt …] \
 *       [--dry-run] [--wait]
 *
 * Writes one job script per job to `RESULTS/slurm/jobs/<key>.sh`, submits them with `sbatch` (`--dependency=
 * afterok:…`, `--kill-on-invalid-dep=yes`, so a failed job cancels everything after it), logs to
 * `RESULTS/slurm/logs/<key>_<job>[_<task>].log`, and records the job ids in `RESULTS/slurm/jobs.json`. A failed
 * shard is re-run alone with `sbatch --array=I RESULTS/slurm/jobs/knn.sh` (or `detect-<set>.sh`); submitting the
 * same command again keeps every artifact that is up to date. `--wait` polls until every job has ended and exits
 * non-zero naming the first one that did not complete. `--dry-run` writes the scripts and prints the sbatch
 * commands without submitting.
 *
 * The checkout (with `npm ci` done), `--data` and `--results` must be on a filesystem every node sees; relative
 * paths are made absolute here.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isFile, writeFileAtomic } from "../shared/artifact.ts";
import { type CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import {
  DEFAULT_PROPOSAL_SETS,
  jobScript,
  planPipeline,
  sbatchOptions,
  shellQuote,
  type SlurmJob,
  type SlurmPipelineOptions,
} from "./plan.ts";

const spec: CliSpec = {
  name: "slurm-submit",
  summary: "Submit the pipeline (kNN and GCN-D detection as sharded job arrays) to a Slurm cluster.",
  options: {
    data: { type: "string", required: true, help: "data prefix (features/NAME.bin, labels/NAME.meta), shared FS" },
    results: { type: "string", required: true, help: "results folder of this run, shared FS" },
    "load-from": { type: "string", required: true, help: "GCN-D checkpoint (.pth or ours)" },
    scale: { type: "string", help: "synthesise the data first at this scale (deno task synth --scale)" },
    seed: { type: "int", default: 42, help: "seed of --scale" },
    name: { type: "string", default: "part1_test", help: "test split name" },
    labels: { type: "string", help: "ground truth (default DATA/labels/NAME.meta when it exists or is synthesised)" },
    k: { type: "int", default: 80, help: "kNN k" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    center: { type: "boolean", help: "subtract the feature mean before normalising" },
    "knn-method": { type: "string", default: "exact", choices: ["exact", "ivf"], help: "kNN search" },
    "knn-shards": { type: "int", default: 4, help: "kNN job array size" },
    "detect-shards": { type: "int", default: 2, help: "detect job array size per proposal set" },
    "proposal-set": {
      type: "string",
      multiple: true,
      help: `proposal config under configs/proposals (default ${DEFAULT_PROPOSAL_SETS.join(", ")})`,
    },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "kNN and detect backend" },
    partition: { type: "string", help: "sbatch --partition" },
    account: { type: "string", help: "sbatch --account" },
    cpus: { type: "int", help: "sbatch --cpus-per-task" },
    mem: { type: "string", help: "sbatch --mem, e.g. 16G" },
    gpus: { type: "int", help: "sbatch --gres=gpu:N for kNN and detect jobs" },
    time: { type: "string", help: "sbatch --time" },
    "sbatch-opt": { type: "string", multiple: true, help: "further sbatch option, as given (repeatable)" },
    "dry-run": { type: "boolean", help: "write the job scripts and print the sbatch commands only" },
    wait: { type: "boolean", help: "wait until every job has ended; fail if one did not complete" },
  },
};

/** The checkout this script belongs to. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function pipelineOptions(args: CliArgs): SlurmPipelineOptions {
  const data = resolve(args.reqStr("data"));
  const name = args.reqStr("name");
  const scale = args.str("scale");
  const defaultLabels = join(data, "labels", `${name}.meta`);
  let labels = args.str("labels") && resolve(args.reqStr("labels"));
  if (!labels && (scale || isFile(defaultLabels))) labels = defaultLabels;
  const loadFrom = resolve(args.reqStr("load-from"));
  if (!isFile(loadFrom)) throw new LtcError(`${loadFrom}: no such checkpoint (--load-from)`);
  const features = join(data, "features", `${name}.bin`);
  if (!scale && !isFile(features)) throw new LtcError(`${features}: no such features file (or give --scale)`);
  const sets = args.strs("proposal-set");
  for (const set of sets) {
    const cfg = join(REPO, "configs", "proposals", `${set}.yaml`);
    if (!isFile(cfg)) throw new LtcError(`${cfg}: no such proposal config (--proposal-set ${set})`);
  }
  return {
    repo: REPO,
    data,
    name,
    results: resolve(args.reqStr("results")),
    ...(scale ? { synth: { scale, seed: args.num("seed") } } : {}),
    loadFrom,
    ...(labels ? { labels } : {}),
    k: args.num("k"),
    dim: args.num("dim"),
    featOpts: args.bool("center") ? ["--center"] : [],
    knnMethod: args.str("knn-method") as "exact" | "ivf",
    knnShards: args.num("knn-shards"),
    detectShards: args.num("detect-shards"),
    ...(sets.length ? { proposalSets: sets } : {}),
    backend: args.str("backend"),
    resources: {
      partition: args.str("partition"),
      account: args.str("account"),
      cpus: args.optNum("cpus"),
      mem: args.str("mem"),
      gpus: args.optNum("gpus"),
      time: args.str("time"),
      extra: args.strs("sbatch-opt"),
    },
  };
}

async function run(command: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new LtcError(`slurm-submit: ${command} not found: is this a Slurm login node (SLURM_CONF set)?`);
    }
    throw err;
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim() || `exit code ${out.code}`;
    throw new LtcError(`slurm-submit: ${command} ${args.join(" ")} failed: ${why}`);
  }
  return text;
}

/** Submitted job: its key, Slurm job id, array size and the keys it waits for. */
interface Submitted {
  key: string;
  id: string;
  array?: number;
  after: string[];
  script: string;
}

async function submit(jobs: SlurmJob[], options: SlurmPipelineOptions, dryRun: boolean): Promise<Submitted[]> {
  const dir = join(options.results, "slurm");
  Deno.mkdirSync(join(dir, "jobs"), { recursive: true });
  Deno.mkdirSync(join(dir, "logs"), { recursive: true });
  const ids = new Map<string, string>();
  const done: Submitted[] = [];
  for (const job of jobs) {
    const script = join(dir, "jobs", `${job.key}.sh`);
    const sbatch = sbatchOptions(job, options);
    writeFileAtomic(script, new TextEncoder().encode(jobScript(job, { repo: options.repo, sbatch })));
    Deno.chmodSync(script, 0o755);
    // the other options are the script's #SBATCH lines
    const args = ["--parsable", ...sbatch.filter((o) => o.startsWith("--array="))];
    if (job.after.length) args.push(`--dependency=afterok:${job.after.map((k) => ids.get(k)!).join(":")}`);
    args.push(script);
    let id: string;
    if (dryRun) {
      id = `<${job.key}>`;
      console.log(["sbatch", ...args].map(shellQuote).join(" "));
    } else {
      // `--parsable` prints `id` or `id;cluster`
      id = (await run("sbatch", args)).trim().split(";")[0]!;
      if (!/^\d+$/.test(id)) throw new LtcError(`slurm-submit: sbatch printed no job id for ${script}: '${id}'`);
      log(`slurm-submit: ${job.key}${job.array ? ` [${job.array} tasks]` : ""} → job ${id}`);
    }
    ids.set(job.key, id);
    done.push({ key: job.key, id, ...(job.array ? { array: job.array } : {}), after: job.after, script });
  }
  if (!dryRun) {
    writeFileAtomic(join(dir, "jobs.json"), new TextEncoder().encode(JSON.stringify(done, null, 2) + "\n"));
  }
  return done;
}

/** States of every task of job `id` from `scontrol` (empty when Slurm no longer knows the job). */
async function jobStates(id: string): Promise<string[]> {
  let text: string;
  try {
    text = await run("scontrol", ["show", "job", id]);
  } catch {
    return [];
  }
  return [...text.matchAll(/JobState=(\w+)/g)].map((m) => m[1]!);
}

const ENDED = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"]);

/**
 * Poll until every job has ended; throw naming the first that did not complete. Final states are remembered: Slurm
 * forgets a finished job after `MinJobAge` (300 s by default), long before a chain of many jobs ends.
 */
async function waitFor(jobs: Submitted[], logs: string): Promise<void> {
  const final = new Map<string, string[]>();
  let lastLog = 0;
  for (;;) {
    for (const j of jobs) {
      if (final.has(j.key)) continue;
      const states = await jobStates(j.id);
      // an array not yet started is one record for all its tasks, so "every record ended" means the job ended
      if (states.length > 0 && states.every((x) => ENDED.has(x))) final.set(j.key, states);
      else if (states.length === 0) {
        throw new LtcError(`slurm-submit: Slurm does not know job ${j.key} (${j.id}) any more; logs in ${logs}`);
      }
    }
    const ended = (j: Submitted, ok: (state: string) => boolean) => final.get(j.key)?.some((x) => !ok(x));
    // a job that failed (not one cancelled because an earlier one failed) ends the wait at once
    const failed = jobs.find((j) => ended(j, (x) => x === "COMPLETED" || x === "CANCELLED"));
    if (failed) {
      const state = final.get(failed.key)!.find((x) => x !== "COMPLETED" && x !== "CANCELLED");
      throw new LtcError(`slurm-submit: job ${failed.key} (${failed.id}) ended ${state}; logs in ${logs}`);
    }
    if (jobs.every((j) => final.has(j.key))) {
      const cancelled = jobs.find((j) => ended(j, (x) => x === "COMPLETED"));
      if (cancelled) throw new LtcError(`slurm-submit: job ${cancelled.key} (${cancelled.id}) was cancelled`);
      return;
    }
    if (Date.now() - lastLog > 10_000) {
      log(`slurm-submit: waiting for ${jobs.filter((j) => !final.has(j.key)).map((j) => j.key).join(", ")}`);
      lastLog = Date.now();
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const options = pipelineOptions(args);
    const jobs = planPipeline(options);
    const submitted = await submit(jobs, options, args.bool("dry-run"));
    if (args.bool("wait") && !args.bool("dry-run")) {
      await waitFor(submitted, join(options.results, "slurm", "logs"));
      log(`slurm-submit: all ${submitted.length} jobs completed`);
    }
  });
}
