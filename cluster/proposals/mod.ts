/**
 * Cluster proposals from super vertices (reference §3): iteration 0, iteration 1 and the original's multi-scale
 * driver `generate_proposals`, in the original's folder layout.
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
 * @module
 */
import { join } from "node:path";
import { LtcError } from "../../shared/errors.ts";
import { FeatureCache } from "../knn_source.ts";
import { generateBasicProposals } from "./basic.ts";
import { generateIterProposals } from "./iter.ts";
import type { ProposalParamSet } from "./params.ts";
import type { BackendChoice } from "../../gpu/device.ts";

export * from "./params.ts";
export * from "./folder.ts";
export * from "./basic.ts";
export * from "./iter.ts";

/** Dataset and output locations of {@linkcode generateProposals}. */
export interface GenerateProposalsOptions {
  /** data folder with `features/`, `knns/` */
  prefix: string;
  name: string;
  /** output root (default `<prefix>/cluster_proposals`) */
  oprefix?: string;
  dim?: number;
  normalize?: boolean;
  center?: boolean;
  force?: boolean;
  backend?: BackendChoice;
}

/**
 * The original's multi-scale `generate_proposals(params, prefix, oprefix, name, dim)` (reference §3.5): for each
 * parameter set, iter-0 proposals (listed when `iter0`) and every iter-1 set on top of them. Returns the list of
 * `proposals/` folders in config order — the order GCN-D scores and de-overlap use.
 */
export async function generateProposals(
  sets: ProposalParamSet[],
  options: GenerateProposalsOptions,
): Promise<string[]> {
  if (sets.length === 0) throw new LtcError("proposals: the parameter list is empty");
  const features = new FeatureCache({
    path: join(options.prefix, "features", `${options.name}.bin`),
    dim: options.dim,
    normalize: options.normalize,
    center: options.center,
  });
  const knnPrefix = join(options.prefix, "knns", options.name);
  const oprefix = join(options.oprefix ?? join(options.prefix, "cluster_proposals"), options.name);
  const folders: string[] = [];
  for (const set of sets) {
    const base = await generateBasicProposals({
      oprefix,
      knnPrefix,
      features,
      params: set,
      force: options.force,
      backend: options.backend,
    });
    if (set.iter0) folders.push(base.proposalsDir);
    for (const ip of set.iter1) {
      const r = await generateIterProposals({
        svLabels: base.predLabels,
        svKnnPrefix: knnPrefix,
        features,
        params: ip,
        force: options.force,
        backend: options.backend,
      });
      folders.push(r.proposalsDir);
    }
  }
  return folders;
}
