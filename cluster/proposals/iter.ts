/**
 * Iteration-1 proposals (reference §3.4): the iter-0 clusters become super vertices with mean features, which are
 * clustered again on their own kNN graph and expanded back to instances.
 * @module
 */
import { dirname, join } from "node:path";
import { ensureWritable, isUpToDate, Timings, writeSidecar } from "../../shared/artifact.ts";
import { LtcError } from "../../shared/errors.ts";
import { type Features, l2NormalizeRows } from "../../shared/features.ts";
import { knnFileName, type KnnGraph, readKnn, writeKnn } from "../../shared/knn_file.ts";
import { readLabels, writeLabels } from "../../shared/meta.ts";
import { log } from "../../shared/progress.ts";
import {
  type Clustering,
  clusteringToLabels,
  type ClusterMembers,
  clusterMembers,
  labelsToClustering,
  superVertex,
} from "../graph.ts";
import { buildKnn, FeatureCache, loadOrBuildKnn, searchMethodOf } from "../knn_source.ts";
import { invalidateProposalFolder, type ProposalResult, reuseProposalFolder } from "./basic.ts";
import { filterClusters, writeProposalFolder } from "./folder.ts";
import { checkIterParams, iterFolderName, type IterProposalParams, parseProposalFolderName } from "./params.ts";
import type { BackendChoice } from "../../gpu/device.ts";

/**
 * Mean feature of every cluster of a partition, clusters in order of first appearance (the original's
 * `lb2idxs.values()`), computed as numpy's `feats[idxs].mean(axis=0)` on float32: rows summed one after another in
 * float32, then divided in float32. Not re-normalised.
 */
export function superVertexFeatures(features: Features, partition: Clustering): Features {
  const { dim } = features;
  const x = features.data;
  const sum = new Float32Array(partition.count * dim);
  const cnt = new Int32Array(partition.count);
  for (let i = 0; i < partition.n; i++) {
    const c = partition.label[i]!;
    if (c < 0) continue;
    const o = c * dim, r = i * dim;
    for (let t = 0; t < dim; t++) sum[o + t] = sum[o + t]! + x[r + t]!;
    cnt[c]!++;
  }
  for (let c = 0; c < partition.count; c++) {
    const o = c * dim;
    for (let t = 0; t < dim; t++) sum[o + t] = sum[o + t]! / cnt[c]!;
  }
  return { data: sum, n: partition.count, dim };
}

/**
 * Members of each instance cluster listed super vertex by super vertex (ascending super-vertex id, then ascending
 * instance) — the order the original concatenates them in before `set()`.
 */
function membersBySuperVertex(inst: Clustering, svPartition: Clustering): ClusterMembers {
  const sizes = new Int32Array(inst.count + 1);
  for (let i = 0; i < inst.n; i++) if (inst.label[i]! >= 0) sizes[inst.label[i]! + 1]!++;
  for (let c = 0; c < inst.count; c++) sizes[c + 1]! += sizes[c]!;
  const offsets = sizes;
  const fill = offsets.slice(0, inst.count);
  const members = new Int32Array(offsets[inst.count]!);
  const sv = clusterMembers(svPartition);
  for (let s = 0; s < svPartition.count; s++) {
    for (let t = sv.offsets[s]!; t < sv.offsets[s + 1]!; t++) {
      const i = sv.members[t]!;
      const c = inst.label[i]!;
      if (c >= 0) members[fill[c]!++] = i;
    }
  }
  return { offsets, members };
}

/** Inputs of {@linkcode generateIterProposals}. */
export interface IterProposalOptions {
  /** the iter-0 (or previous iteration's) `pred_labels.txt`: its clusters are the super vertices */
  svLabels: string;
  /** folder of the instance kNN files: `prefix/knns/name` (the original's `sv_knn_prefix`) */
  svKnnPrefix: string;
  features: FeatureCache;
  params: IterProposalParams;
  force?: boolean;
  backend?: BackendChoice;
}

/**
 * The original's `generate_iter_proposals` (reference §3.4): super vertices = all clusters of `svLabels`
 * (singletons included) with mean features; kNN over them in `<svLabels folder>/knns/`; super-vertex clustering
 * with `svMaxsz`; clusters of ≥ `svMinsz` super vertices expanded to instances and written to `pred_labels.txt`
 * (N lines); those with `minsz ≤ size ≤ maxsz` instances saved as proposals with edges from the instance kNN.
 */
export async function generateIterProposals(options: IterProposalOptions): Promise<ProposalResult> {
  const p = options.params;
  checkIterParams(p, "iter proposals");
  const prevFolder = dirname(options.svLabels);
  const prev = parseProposalFolderName(prevFolder);
  const iter = prev.iter + 1;
  const folder = join(prevFolder, iterFolderName(p, iter));
  const knnInstPath = join(options.svKnnPrefix, knnFileName(prev.knnMethod, prev.k));
  const svKnnPath = join(prevFolder, "knns", knnFileName(p.knnMethod, p.k));
  const featPath = options.features.source?.path;
  if (!featPath) throw new LtcError("iter proposals: a features file is needed for super-vertex features");
  const params = { ...p, iter, features: { ...options.features.source, path: undefined } };
  const inputs = [options.svLabels, knnInstPath, featPath];
  if (!options.force) {
    try {
      const hit = reuseProposalFolder(folder, params, inputs);
      if (hit) {
        log(`proposals: ${folder} is up to date`);
        return hit;
      }
    } catch { /* inputs missing: reported below */ }
  }
  ensureWritable(join(folder, "pred_labels.txt"));
  const timings = new Timings();
  const svPartition = labelsToClustering(readLabels(options.svLabels));
  const n = svPartition.n;
  const features = options.features.get();
  if (features.n !== n) {
    throw new LtcError(`${options.svLabels}: has ${n} labels but ${featPath} has ${features.n} rows`);
  }
  const knnInst = await timings.stepAsync(
    "load_knn",
    () =>
      loadOrBuildKnn(knnInstPath, {
        features: options.features,
        k: prev.k,
        knnMethod: prev.knnMethod,
        backend: options.backend,
        force: options.force,
      }),
  );
  // kNN over the super vertices, reused only if built from the same labels and features.
  const svParams = { k: p.k, knn_method: p.knnMethod, super_vertex_features: "mean" };
  let svKnn: KnnGraph;
  if (!options.force && isUpToDate(svKnnPath, svParams, [options.svLabels, featPath])) {
    svKnn = readKnn(svKnnPath);
  } else {
    const svFeat = timings.step("sv_features", () => superVertexFeatures(features, svPartition));
    if (p.k >= svFeat.n) {
      throw new LtcError(`${options.svLabels}: only ${svFeat.n} super vertices, need more than k = ${p.k}`);
    }
    // faiss IndexFlatIP ranks the raw means by inner product; nmslib's 'cosinesimil' by cosine of the means.
    if (p.knnMethod === "hnsw") l2NormalizeRows(svFeat.data, svFeat.n, svFeat.dim, `${options.svLabels} (means)`);
    const res = await buildKnn(svFeat, {
      k: p.k,
      method: searchMethodOf(p.knnMethod),
      backend: options.backend,
      recallSample: 0,
      progress: false,
    });
    svKnn = res.graph;
    await writeKnn(svKnnPath, svKnn);
    writeSidecar(svKnnPath, {
      stage: "knn",
      params: svParams,
      inputs: [options.svLabels, featPath],
      backend: res.backend,
      timings: res.timings,
    });
  }
  if (svKnn.n !== svPartition.count) {
    throw new LtcError(`${svKnnPath}: has ${svKnn.n} rows but ${options.svLabels} has ${svPartition.count} clusters`);
  }
  invalidateProposalFolder(folder);
  const sv = timings.step("super_vertex", () => superVertex(svKnn, { th: p.thKnn, step: p.thStep, maxSz: p.svMaxsz }));
  // Expand clusters of ≥ svMinsz super vertices to their instances.
  const svSizes = new Int32Array(sv.clustering.count);
  for (let s = 0; s < sv.clustering.n; s++) if (sv.clustering.label[s]! >= 0) svSizes[sv.clustering.label[s]!]!++;
  const instLabel = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const c = sv.clustering.label[svPartition.label[i]!]!;
    if (c >= 0 && svSizes[c]! >= p.svMinsz) instLabel[i] = c;
  }
  const inst = labelsToClustering(instLabel, -1);
  const predLabels = join(folder, "pred_labels.txt");
  timings.step("write_labels", () => writeLabels(predLabels, clusteringToLabels(inst)));
  const kept = filterClusters(membersBySuperVertex(inst, svPartition), p.minsz, p.maxsz);
  const proposalsDir = join(folder, "proposals");
  const numProposals = timings.step("write_proposals", () => writeProposalFolder(proposalsDir, kept, knnInst));
  writeSidecar(predLabels, {
    stage: "proposals",
    params,
    inputs,
    timings,
    extra: { num_proposals: numProposals, num_clusters: inst.count, num_super_vertices: svPartition.count },
  });
  log(`proposals: ${folder}: ${svPartition.count} super vertices, ${numProposals} proposals`);
  return { folder, proposalsDir, predLabels, numProposals, reused: false };
}
