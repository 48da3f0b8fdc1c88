/**
 * Iteration-0 proposals (reference §3.3): super vertices on the instance kNN graph, written as the original's
 * parameter folder (`pred_labels.txt` + `proposals/`) with a sidecar; up-to-date folders are reused.
 * @module
 */
import { join } from "node:path";
import {
  ensureWritable,
  isFile,
  isUpToDate,
  markInProgress,
  sidecarPath,
  Timings,
  writeSidecar,
} from "../../shared/artifact.ts";
import { knnFileName } from "../../shared/knn_file.ts";
import { writeLabels } from "../../shared/meta.ts";
import { log } from "../../shared/progress.ts";
import { clusteringToLabels, clusterMembers, superVertex } from "../graph.ts";
import { FeatureCache, loadOrBuildKnn, staleKnnReason } from "../knn_source.ts";
import { filterClusters, writeProposalFolder } from "./folder.ts";
import { basicFolderName, type BasicProposalParams, checkParams } from "./params.ts";
import type { BackendChoice } from "../../gpu/device.ts";

/** Inputs of {@linkcode generateBasicProposals}. */
export interface BasicProposalOptions {
  /** folder that holds the parameter folders: the original's `oprefix/name` */
  oprefix: string;
  /** folder of the instance kNN files: `prefix/knns/name` */
  knnPrefix: string;
  /** features (needed only to build a missing kNN file) */
  features?: FeatureCache;
  params: BasicProposalParams;
  /** recompute even when the outputs are up to date */
  force?: boolean;
  backend?: BackendChoice;
}

/** What a proposal generation produced. */
export interface ProposalResult {
  /** the parameter folder (holds `pred_labels.txt`) */
  folder: string;
  /** `<folder>/proposals` — what GCN-D and de-overlap read */
  proposalsDir: string;
  predLabels: string;
  numProposals: number;
  /** outputs were up to date and left alone */
  reused: boolean;
}

/**
 * The folder's result when its `pred_labels.txt` sidecar matches these parameters and input bytes and every proposal
 * file it counted is there; null otherwise.
 */
export function reuseProposalFolder(
  folder: string,
  params: Record<string, unknown>,
  inputs: string[],
): ProposalResult | null {
  const predLabels = join(folder, "pred_labels.txt");
  if (!isUpToDate(predLabels, params, inputs)) return null;
  const side = JSON.parse(Deno.readTextFileSync(sidecarPath(predLabels)));
  const proposalsDir = join(folder, "proposals");
  let files = 0;
  try {
    for (const e of Deno.readDirSync(proposalsDir)) if (e.name.endsWith(".npz")) files++;
  } catch {
    return null;
  }
  if (files !== 2 * side.num_proposals) return null;
  return { folder, proposalsDir, predLabels, numProposals: side.num_proposals, reused: true };
}

/**
 * Mark the folder's `pred_labels.txt` as being rebuilt (its sidecar says `in_progress` until the new one is written
 * last), so a folder whose run is killed from here on is refused by every reader and never reused.
 */
export function invalidateProposalFolder(folder: string): void {
  const predLabels = join(folder, "pred_labels.txt");
  ensureWritable(predLabels);
  markInProgress(predLabels, "proposals");
}

/**
 * The original's `generate_basic_proposals` (reference §3.3): super vertices on the instance kNN graph, the
 * partition written to `pred_labels.txt` (N lines), clusters of at least `minsz` nodes saved as proposals.
 */
export async function generateBasicProposals(options: BasicProposalOptions): Promise<ProposalResult> {
  const p = options.params;
  checkParams(p, "proposals");
  const folder = join(options.oprefix, basicFolderName(p));
  const knnPath = join(options.knnPrefix, knnFileName(p.knnMethod, p.k));
  // Only what decides this folder: a multi-scale set's iter-1 list is not (recording it made configs that share an
  // iter-0 set rebuild it in turn).
  const params = {
    knnMethod: p.knnMethod,
    k: p.k,
    thKnn: p.thKnn,
    thStep: p.thStep,
    minsz: p.minsz,
    maxsz: p.maxsz,
    iter: 0,
  };
  const features = options.features ?? new FeatureCache();
  if (isFile(knnPath)) {
    const stale = staleKnnReason(knnPath, features);
    if (stale && !options.force) throw stale;
    const hit = options.force ? null : reuseProposalFolder(folder, params, [knnPath]);
    if (hit) {
      log(`proposals: ${folder} is up to date`);
      return hit;
    }
  }
  ensureWritable(join(folder, "pred_labels.txt"));
  const timings = new Timings();
  const knn = await timings.stepAsync(
    "load_knn",
    () =>
      loadOrBuildKnn(knnPath, {
        features,
        k: p.k,
        knnMethod: p.knnMethod,
        backend: options.backend,
        force: options.force,
      }),
  );
  invalidateProposalFolder(folder);
  const sv = timings.step("super_vertex", () => superVertex(knn, { th: p.thKnn, step: p.thStep, maxSz: p.maxsz }));
  const predLabels = join(folder, "pred_labels.txt");
  timings.step("write_labels", () => writeLabels(predLabels, clusteringToLabels(sv.clustering)));
  const kept = filterClusters(clusterMembers(sv.clustering), p.minsz);
  const proposalsDir = join(folder, "proposals");
  const numProposals = timings.step("write_proposals", () => writeProposalFolder(proposalsDir, kept, knn));
  writeSidecar(predLabels, {
    stage: "proposals",
    params,
    inputs: [knnPath],
    timings,
    extra: {
      num_proposals: numProposals,
      num_clusters: sv.clustering.count,
      num_pairs: sv.pairs,
      rounds: sv.info.rounds,
      force_stopped: sv.info.forced,
    },
  });
  log(
    `proposals: ${folder}: ${sv.pairs} pairs, ${sv.clustering.count} clusters, ${numProposals} proposals ` +
      `(${timings.total().toFixed(2)} s)`,
  );
  return { folder, proposalsDir, predLabels, numProposals, reused: false };
}
