/**
 * Stage `proposals`: cluster proposals from super vertices (reference §3), in the original's folder layout.
 *
 *     deno task proposals --prefix DIR --name NAME [--k 80] [--th-knn 0.7] [--th-step 0.05] [--minsz 3] [--maxsz 300]
 *         [--knn-method faiss|hnsw|ivf] [--oprefix DIR/cluster_proposals] [--dim 256] [--no-normalize] [--center]
 *     deno task proposals --prefix DIR --name NAME --sv-labels <iter0 folder>/pred_labels.txt [--k 3] [--th-knn 0.6]
 *         [--maxsz 500] [--sv-minsz 2] [--sv-maxsz 5]
 *     deno task proposals --prefix DIR --name NAME --config configs/proposals/ms1m_8_prpsls.yaml [--knn-method ivf]
 *
 * Iteration 0 reads `DIR/knns/NAME/<method>_k_<k>.npz` (building it with the kNN stage when missing) and writes
 * `OPREFIX/NAME/<method>_k_<k>_th_<th>_step_<step>_minsz_<minsz>_maxsz_<maxsz>_iter_0/` with `pred_labels.txt` and
 * `proposals/<i>_node.npz`, `<i>_edge.npz`. Iteration 1 (`--sv-labels`) clusters the mean features of the iter-0
 * clusters and writes `<iter0 folder>/..._sv_minsz_<a>_maxsz_<b>_iter_1/` plus `<iter0 folder>/knns/`. `--config`
 * runs a list of parameter sets (the original's multi-scale `generate_proposals`) and prints the proposal folders;
 * `--knn-method` given with it replaces the sets' iteration-0 `knn_method` (iteration 1 keeps the config's).
 *
 * Differences from the original, all deliberate:
 * - `pred_labels.txt` always has N lines: the original's iter-0 file stops at the largest clustered index
 *   (`write_meta` without `inst_num`); ours continues the same singleton numbering to N, so its first lines are
 *   byte-identical and the file lines up with the ground truth.
 * - Proposal numbering: clusters are numbered by their smallest member (the order `pred_labels.txt` lists them),
 *   where the original's order follows Python object hashing; node files list nodes ascending (the original:
 *   `list(set(nodes))`); edges follow from that order. The contents are the same sets.
 * - Outputs are reused only when the sidecar shows the same parameters and input bytes; the original reuses any
 *   existing `pred_labels.txt`.
 *
 * The code behind it: `cluster/proposals/`.
 * @module
 */
import { join } from "node:path";
import { CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { FeatureCache, KNN_METHODS, type KnnMethod } from "../cluster/knn_source.ts";
import {
  generateBasicProposals,
  generateIterProposals,
  generateProposals,
  loadProposalConfig,
} from "../cluster/proposals/mod.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "proposals",
  summary: "Super-vertex cluster proposals (iteration 0, iteration 1 with --sv-labels, or a multi-scale --config), " +
    "written in the original's folder layout. Prints the proposals/ folder(s) on stdout.",
  options: {
    prefix: { type: "string", required: true, help: "data folder with features/ and knns/" },
    name: { type: "string", required: true, help: "dataset name (features/<name>.bin)" },
    oprefix: { type: "string", help: "output root (default <prefix>/cluster_proposals)" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    "no-normalize": { type: "boolean", help: "do not L2-normalise features" },
    center: { type: "boolean", help: "subtract the dataset mean before normalising" },
    "knn-method": { type: "string", choices: KNN_METHODS, default: "faiss", help: "kNN method (file name)" },
    k: { type: "int", help: "neighbours (default 80; 3 with --sv-labels)" },
    "th-knn": { type: "number", help: "similarity threshold (default 0.7; 0.6 with --sv-labels)" },
    "th-step": { type: "number", default: 0.05, help: "threshold step" },
    minsz: { type: "int", default: 3, help: "smallest proposal" },
    maxsz: { type: "int", help: "largest component (default 300; 500 with --sv-labels)" },
    "sv-labels": { type: "string", help: "iteration n pred_labels.txt: run iteration n+1 on its clusters" },
    "sv-minsz": { type: "int", default: 2, help: "fewest super vertices per iter-1 proposal" },
    "sv-maxsz": { type: "int", default: 5, help: "most super vertices per iter-1 component" },
    config: { type: "string", help: "YAML with a proposal_params list (multi-scale driver)" },
    force: { type: "boolean", help: "recompute even if the outputs are up to date" },
    backend: { type: "string", choices: ["auto", "webgpu", "cpu"], default: "auto", help: "kNN backend if built" },
  },
};

async function main(args: CliArgs): Promise<void> {
  const prefix = args.reqStr("prefix");
  const name = args.reqStr("name");
  const common = {
    prefix,
    name,
    oprefix: args.str("oprefix"),
    dim: args.num("dim"),
    normalize: !args.bool("no-normalize"),
    center: args.bool("center"),
    force: args.bool("force"),
    backend: args.str("backend") as BackendChoice,
  };
  const config = args.str("config");
  if (config) {
    for (const o of ["k", "th-knn", "maxsz", "sv-labels"]) {
      if (args.given(o)) throw new LtcError(`proposals: --${o} cannot be combined with --config`);
    }
    // --knn-method replaces the sets' iteration-0 kNN (e.g. IVF at millions of rows); iteration 1 searches the few
    // super-vertex features, so it keeps the config's method
    const sets = loadProposalConfig(config).map((set) =>
      args.given("knn-method") ? { ...set, knnMethod: args.str("knn-method") as KnnMethod } : set
    );
    for (const f of await generateProposals(sets, common)) console.log(f);
    return;
  }
  const svLabels = args.str("sv-labels");
  const knnMethod = args.str("knn-method") as KnnMethod;
  const base = {
    knnMethod,
    k: args.optNum("k") ?? (svLabels ? 3 : 80),
    thKnn: args.optNum("th-knn") ?? (svLabels ? 0.6 : 0.7),
    thStep: args.num("th-step"),
    minsz: args.num("minsz"),
    maxsz: args.optNum("maxsz") ?? (svLabels ? 500 : 300),
  };
  const features = new FeatureCache({
    path: join(prefix, "features", `${name}.bin`),
    dim: common.dim,
    normalize: common.normalize,
    center: common.center,
  });
  const knnPrefix = join(prefix, "knns", name);
  if (svLabels) {
    const r = await generateIterProposals({
      svLabels,
      svKnnPrefix: knnPrefix,
      features,
      params: { ...base, svMinsz: args.num("sv-minsz"), svMaxsz: args.num("sv-maxsz") },
      force: common.force,
      backend: common.backend,
    });
    console.log(r.proposalsDir);
    return;
  }
  const r = await generateBasicProposals({
    oprefix: join(common.oprefix ?? join(prefix, "cluster_proposals"), name),
    knnPrefix,
    features,
    params: base,
    force: common.force,
    backend: common.backend,
  });
  console.log(r.proposalsDir);
}

if (import.meta.main) {
  await runMain(() => main(parseCli(spec, Deno.args)));
}
