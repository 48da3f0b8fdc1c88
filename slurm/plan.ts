/**
 * The pipeline as Slurm jobs: which jobs, what each runs, what it waits for. Pure planning — no Slurm call — so the
 * plan is testable anywhere and `deno task slurm-submit --dry-run` can show it.
 *
 * Chain (each arrow an `afterok` dependency):
 *
 *     synth ─→ [knn-index] ─→ knn[0..S) ─→ knn-merge ─→ proposals ─┬→ detect-<set>[0..D) ─→ detect-merge-<set> ─┐
 *                                                                  └→ … one detect array + merge per set         ├→ report
 *
 * - `synth` only when a synthetic scale is asked for (otherwise the user's features are the input);
 * - `knn-index` only for IVF: the shared index every kNN shard reads, built once;
 * - `knn` is a job array of S shards (`deno task knn … --shard I/S`), `knn-merge` joins the parts into the file an
 *   unsharded run writes (byte-identical);
 * - `proposals` builds every proposal set in one job, in order, as `make pipeline` does (sets share folders, so
 *   two jobs writing them at once would race);
 * - per set, `detect` is a job array of D shards over the proposals and `detect-merge` joins the scores, de-overlaps
 *   once and evaluates, writing what an unsharded `deno task detect` writes;
 * - `report` gathers the rows into `report.md`.
 *
 * Every job's script `cd`s into the checkout (which must sit on a filesystem every node sees, with `npm ci` done)
 * and runs one stage with `bin/deno`; artifacts go to the data and results folders, which must be shared too.
 * @module
 */
import { join } from "node:path";
import { LtcError } from "../shared/errors.ts";

/** Resources and placement every job asks for (sbatch options). */
export interface SlurmResources {
  partition?: string;
  account?: string;
  /** `--cpus-per-task` */
  cpus?: number;
  /** `--mem`, e.g. `16G` */
  mem?: string;
  /** `--gres=gpu:N` for kNN and detect jobs (the stages that can use a GPU) */
  gpus?: number;
  /** `--time`, e.g. `2:00:00` */
  time?: string;
  /** further sbatch options, passed as they are */
  extra?: string[];
}

/** What to run (the same inputs as `make pipeline`). */
export interface SlurmPipelineOptions {
  /** absolute path of the ltc-deno checkout */
  repo: string;
  /** data prefix: `features/NAME.bin`, `labels/NAME.meta`; kNN files and proposals are written below it */
  data: string;
  /** test split name */
  name: string;
  /** results folder of this run (detect work dirs, report, slurm/ scripts and logs) */
  results: string;
  /** synthesise the data first (`deno task synth --scale …`) */
  synth?: { scale: string; seed: number };
  /** GCN-D checkpoint (the original's .pth or ours) */
  loadFrom: string;
  /** ground-truth labels for evaluation and the report (absent: no metrics, no report) */
  labels?: string;
  k?: number;
  dim?: number;
  /** extra feature options of the stages, e.g. `--center` */
  featOpts?: string[];
  /** kNN search: `exact` (file `faiss_k_<k>.npz`) or `ivf` */
  knnMethod?: "exact" | "ivf";
  knnShards: number;
  detectShards: number;
  /** proposal configs under `configs/proposals/` (default: the two-set, four-set and iter-1 sets) */
  proposalSets?: string[];
  /** compute backend of kNN and detect (`auto`, `webgpu`, `cpu`) */
  backend?: string;
  resources?: SlurmResources;
}

/** One job of the plan. */
export interface SlurmJob {
  /** short unique key, also the job script's and log's name */
  key: string;
  /** array size (a job array of `array` tasks, `SLURM_ARRAY_TASK_ID` = 0..array−1), absent for a single job */
  array?: number;
  /** keys of the jobs it waits for (afterok) */
  after: string[];
  /** whether it asks for the GPUs of {@linkcode SlurmResources} */
  gpu: boolean;
  /** the bash lines it runs (after `set -euo pipefail` and `cd` into the checkout) */
  lines: string[];
}

/** The proposal sets `make pipeline` tests on, and their rows in the report. */
export const DEFAULT_PROPOSAL_SETS = ["ms1m_2_prpsls", "train_ms1m_4_prpsls", "ms1m_2_prpsls_iter1"];
const SET_LABELS: Record<string, string> = {
  ms1m_2_prpsls: "GCN-D (0.7, 0.75)",
  train_ms1m_4_prpsls: "GCN-D (0.6, 0.65, 0.7, 0.75)",
  ms1m_2_prpsls_iter1: "GCN-D (0.7, 0.75) + iter1 (0.4, 2, 16)",
};

/** Quote one word for bash (single quotes; words of safe characters stay as they are). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const cmd = (words: string[]) => words.map((w) => (w.startsWith("$") ? w : shellQuote(w))).join(" ");

/** The work dir `make pipeline` gives GCN-D detection on proposal set `set`. */
export function detectWorkDir(results: string, set: string): string {
  return join(results, `gcn_d_${set}`);
}

/**
 * The list-of-folders file the proposals job writes for `set` on the kNN file of `knnStem` (`faiss` or `ivf`), as
 * the Makefile names it: `<set>.<knnStem>.folders`, so a list made on one kNN file never stands in for the other's.
 */
export function foldersFile(data: string, name: string, opts: { set: string; knnStem: string }): string {
  return join(data, "cluster_proposals", name, `${opts.set}.${opts.knnStem}.folders`);
}

function checkCount(what: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 1)) throw new LtcError(`slurm-submit: ${what} must be an integer ≥ 1, got ${v}`);
}

/** The jobs of one pipeline run, in submission order (every job after the jobs it waits for). */
export function planPipeline(options: SlurmPipelineOptions): SlurmJob[] {
  const { data, name, results } = options;
  const k = options.k ?? 80, dim = options.dim ?? 256;
  const feat = options.featOpts ?? [];
  const method = options.knnMethod ?? "exact";
  const backend = options.backend ?? "auto";
  const sets = options.proposalSets ?? DEFAULT_PROPOSAL_SETS;
  checkCount("--knn-shards", options.knnShards);
  checkCount("--detect-shards", options.detectShards);
  if (sets.length === 0) throw new LtcError("slurm-submit: no proposal sets given");
  const stage = (file: string, args: string[]) => cmd(["bin/deno", "run", "-A", `stages/${file}.ts`, ...args]);
  const jobs: SlurmJob[] = [];
  const add = (job: SlurmJob) => {
    jobs.push(job);
    return job.key;
  };
  const featPath = join(data, "features", `${name}.bin`);
  let last: string[] = [];
  if (options.synth) {
    last = [add({
      key: "synth",
      after: [],
      gpu: false,
      lines: [
        stage("synth", [
          "--prefix",
          data,
          "--scale",
          options.synth.scale,
          "--seed",
          String(options.synth.seed),
          "--test-name",
          name,
        ]),
      ],
    })];
  }
  const knnArgs = ["--prefix", data, "--name", name, "--k", String(k), "--dim", String(dim), ...feat];
  const methodArgs = method === "ivf" ? ["--method", "ivf"] : [];
  if (method === "ivf") {
    last = [add({
      key: "knn-index",
      after: last,
      gpu: false,
      lines: [stage("knn", [...knnArgs, ...methodArgs, "--build-index"])],
    })];
  }
  const S = options.knnShards;
  const knn = add({
    key: "knn",
    array: S,
    after: last,
    gpu: true,
    lines: [stage("knn", [...knnArgs, ...methodArgs, "--backend", backend, "--shard", `$SLURM_ARRAY_TASK_ID/${S}`])],
  });
  const merge = add({
    key: "knn-merge",
    after: [knn],
    gpu: false,
    lines: [
      stage("knn_merge", ["--prefix", data, "--name", name, "--k", String(k), ...methodArgs, "--shards", String(S)]),
    ],
  });
  // every set in one job, in order: sets share threshold folders (a stage run per set, as the Makefile does)
  const knnMethodArgs = method === "ivf" ? ["--knn-method", "ivf"] : [];
  const knnStem = method === "ivf" ? "ivf" : "faiss";
  const proposalLines = [cmd(["mkdir", "-p", join(data, "cluster_proposals", name)])];
  proposalLines.push(...sets.flatMap((set) => {
    const out = foldersFile(data, name, { set, knnStem });
    return [
      `${
        stage("proposals", [
          "--prefix",
          data,
          "--name",
          name,
          "--dim",
          String(dim),
          ...feat,
          ...knnMethodArgs,
          "--config",
          `configs/proposals/${set}.yaml`,
        ])
      } > ${shellQuote(`${out}.tmp`)}`,
      cmd(["mv", `${out}.tmp`, out]),
    ];
  }));
  const proposals = add({ key: "proposals", after: [merge], gpu: false, lines: proposalLines });
  const D = options.detectShards;
  const merges: string[] = [];
  for (const set of sets) {
    const workDir = detectWorkDir(results, set);
    const common = [
      "--feat-path",
      featPath,
      "--dim",
      String(dim),
      ...feat,
      "--load-from",
      options.loadFrom,
      "--work-dir",
      workDir,
    ];
    const labelArgs = options.labels ? ["--label-path", options.labels] : [];
    // the folders file holds one proposal folder per line; a bash array keeps the paths intact
    const readFolders = [
      `mapfile -t folders < ${shellQuote(foldersFile(data, name, { set, knnStem }))}`,
      `args=(); for f in "\${folders[@]}"; do args+=(--proposal-folders "$f"); done`,
    ];
    const detect = add({
      key: `detect-${set}`,
      array: D,
      after: [proposals],
      gpu: true,
      lines: [
        ...readFolders,
        `${
          stage("detect", [...common, ...labelArgs, "--backend", backend, "--shard", `$SLURM_ARRAY_TASK_ID/${D}`])
        } "\${args[@]}"`,
      ],
    });
    merges.push(add({
      key: `detect-merge-${set}`,
      after: [detect],
      gpu: false,
      lines: [
        stage("detect_merge", [
          "--work-dir",
          workDir,
          "--load-from",
          options.loadFrom,
          "--shards",
          String(D),
          ...labelArgs,
        ]),
      ],
    }));
  }
  if (options.labels) {
    const methods = sets.flatMap((set) => [
      "--method",
      `${SET_LABELS[set] ?? set}=${join(detectWorkDir(results, set), "pred_labels.txt")}`,
    ]);
    add({
      key: "report",
      after: merges,
      gpu: false,
      lines: [stage("report", ["--run-dir", results, "--gt-labels", options.labels, ...methods])],
    });
  }
  return jobs;
}

/**
 * The job script of `job`: bash, strict mode, in the checkout. Its sbatch options (all but `--array`) are `#SBATCH`
 * lines, so re-running one failed shard alone (`sbatch --array=I <script>`) keeps its resources and log file.
 */
export function jobScript(job: SlurmJob, options: { repo: string; sbatch?: string[] }): string {
  return [
    "#!/usr/bin/env bash",
    ...(options.sbatch ?? []).filter((o) => !o.startsWith("--array=")).map((o) => `#SBATCH ${o}`),
    `# ltc-deno pipeline job '${job.key}'${job.array ? ` (array of ${job.array}: task $SLURM_ARRAY_TASK_ID)` : ""}`,
    "set -euo pipefail",
    `cd ${shellQuote(options.repo)}`,
    ...job.lines,
    "",
  ].join("\n");
}

/** sbatch options of `job` (without the dependency, which needs the job ids). */
export function sbatchOptions(job: SlurmJob, options: { results: string; resources?: SlurmResources }): string[] {
  const r = options.resources ?? {};
  const logs = join(options.results, "slurm", "logs");
  const out = [
    `--job-name=ltc-${job.key}`,
    `--output=${join(logs, job.array ? `${job.key}_%A_%a.log` : `${job.key}_%j.log`)}`,
    "--kill-on-invalid-dep=yes",
  ];
  if (job.array) out.push(`--array=0-${job.array - 1}`);
  if (r.partition) out.push(`--partition=${r.partition}`);
  if (r.account) out.push(`--account=${r.account}`);
  if (r.cpus) out.push(`--cpus-per-task=${r.cpus}`);
  if (r.mem) out.push(`--mem=${r.mem}`);
  if (r.time) out.push(`--time=${r.time}`);
  if (job.gpu && r.gpus) out.push(`--gres=gpu:${r.gpus}`);
  out.push(...(r.extra ?? []));
  return out;
}
