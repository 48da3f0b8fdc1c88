/**
 * The IVF index file every IVF shard searches (`deno task knn --method ivf --build-index`):
 * `PREFIX/knns/NAME/ivf_index.npz` with members `centroids` (nlist × dim float32, the coarse k-means centroids) and
 * `lists` (N int32, every base row's list), built by gpu/knn/ivf.ts `buildIvfIndex` from the features file. Its
 * sidecar (stage `ivf-index`) records the parameters that decide the index — method, dim, normalisation, centring
 * and the resolved IVF parameters (k does not enter it) — the features' hash, N, the training rows, list statistics
 * and build time. A shard refuses an index that is missing, unfinished, or built from other features or parameters.
 * The index is deterministic, so it equals the one an unsharded IVF run builds for itself.
 * @module
 */
import { join } from "node:path";
import {
  ensureWritable,
  isFile,
  isUpToDate,
  markInProgress,
  readSidecar,
  sha256File,
  Timings,
  writeSidecar,
} from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import type { Features } from "../shared/features.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import { NpzFile, writeNpz } from "../shared/npy.ts";
import { log } from "../shared/progress.ts";
import { buildIvfIndex, type IvfIndex, ivfLabel, type IvfParams, searchIvf } from "../gpu/knn/mod.ts";
import { FeatureCache, type FeatureSource, knnArtifactParams, type KnnStageOptions } from "./knn_source.ts";

/** Path of the IVF index: `PREFIX/knns/NAME/ivf_index.npz`. */
export function ivfIndexPath(prefix: string, name: string): string {
  return join(prefix, "knns", name, "ivf_index.npz");
}

/** The parameters an index's sidecar records: the IVF kNN artifact's, without k. */
export function ivfIndexParams(knnParams: Record<string, unknown>): Record<string, unknown> {
  const { k: _k, ...rest } = knnParams;
  return rest;
}

/** `deno task knn --method ivf --build-index`: build the index of the features file unless it is up to date. */
export async function runIvfIndexStage(options: KnnStageOptions): Promise<{ path: string; skipped: boolean }> {
  const source: FeatureSource = {
    path: join(options.prefix, "features", `${options.name}.bin`),
    dim: options.dim ?? 256,
    normalize: options.normalize ?? true,
    center: options.center ?? false,
  };
  const cache = new FeatureCache(source);
  const n = cache.rowCount();
  const params = ivfIndexParams(knnArtifactParams("ivf", options.k, source, { ivf: options.ivf, n }));
  const path = ivfIndexPath(options.prefix, options.name);
  if (!options.force && isUpToDate(path, params, [source.path])) {
    log(`knn: ${path} is up to date (use --force to rebuild)`);
    return { path, skipped: true };
  }
  ensureWritable(path);
  const t = new Timings();
  const features = t.step("read_features", () => cache.get());
  const index = await t.stepAsync("build", () => buildIvfIndex(features, { ...options.ivf }));
  cache.release();
  const stats = listStats(index);
  markInProgress(path, "ivf-index");
  t.step("write", () => writeNpz(path, { centroids: centroidsArray(index), lists: listsArray(index) }));
  writeSidecar(path, {
    stage: "ivf-index",
    params,
    inputs: [source.path],
    backend: ivfLabel(index.label),
    timings: t,
    extra: {
      n: index.n,
      dim: index.dim,
      train_rows: index.trainRows,
      empty_lists: stats.emptyLists,
      largest_list: stats.largestList,
      build_seconds: Number((index.seconds.train + index.seconds.assign).toFixed(2)),
    },
  });
  log(`knn: wrote ${path} (${index.params.nlist} lists over ${index.n} rows, ${t.total().toFixed(1)} s)`);
  return { path, skipped: false };
}

function centroidsArray(index: IvfIndex) {
  return { dtype: "f4" as const, shape: [index.params.nlist, index.dim], data: index.centroids };
}

function listsArray(index: IvfIndex) {
  return { dtype: "i4" as const, shape: [index.n], data: index.lists };
}

/** Largest list and empty lists of an index. */
function listStats(index: IvfIndex): { largestList: number; emptyLists: number } {
  const sizes = new Int32Array(index.params.nlist);
  for (const l of index.lists) sizes[l]!++;
  let largestList = 0, emptyLists = 0;
  for (const s of sizes) {
    largestList = Math.max(largestList, s);
    if (s === 0) emptyLists++;
  }
  return { largestList, emptyLists };
}

/**
 * Load the index at `path` for an IVF shard whose kNN parameters are `params` over `source` (N rows): one LtcError
 * naming the file when it is missing, unfinished, built from other features or with other parameters, or malformed.
 */
export function loadIvfIndexChecked(
  path: string,
  ctx: { source: FeatureSource; params: Record<string, unknown>; n: number },
): IvfIndex & { buildSeconds: number; sha256: string } {
  const { source, n } = ctx;
  const params = ivfIndexParams(ctx.params);
  const build = `build it first: deno task knn … --method ivf --build-index (with this run's --dim, --nlist, …)`;
  if (!isFile(path)) throw new LtcError(`${path}: missing; IVF shards search one shared index; ${build}`);
  const side = readSidecar(path);
  if (!side) throw new LtcError(`${path}: has no sidecar, so nothing says what it was built from; ${build}`);
  if (side.in_progress) throw new LtcError(`${path}: its build was interrupted before it finished; ${build}`);
  if (side.stage !== "ivf-index") throw new LtcError(`${path}: its sidecar says stage '${side.stage}', not ivf-index`);
  if (JSON.stringify(side.params) !== JSON.stringify(params)) {
    throw new LtcError(
      `${path}: was built with ${JSON.stringify(side.params)}, but this run uses ${JSON.stringify(params)}; ${build}`,
    );
  }
  const feats = side.inputs?.[0];
  if (!feats || feats.sha256 !== sha256File(source.path)) {
    throw new LtcError(`${path}: was built from other features than ${source.path} holds now; ${build} --force`);
  }
  const ivf = params.ivf as IvfParams;
  const dim = params.dim as number;
  const npz = new NpzFile(path);
  const c = npz.get("centroids"), l = npz.get("lists");
  if (c.dtype !== "f4" || c.shape.length !== 2 || c.shape[0] !== ivf.nlist || c.shape[1] !== dim) {
    throw new LtcError(`${path}: centroids are ${c.dtype} (${c.shape.join(", ")}), expected f4 (${ivf.nlist}, ${dim})`);
  }
  if (l.dtype !== "i4" || l.shape.length !== 1 || l.shape[0] !== n) {
    throw new LtcError(`${path}: lists are ${l.dtype} (${l.shape.join(", ")}), expected i4 (${n}) for ${source.path}`);
  }
  const lists = l.data as Int32Array;
  for (let i = 0; i < n; i++) {
    if (!(lists[i]! >= 0 && lists[i]! < ivf.nlist)) {
      throw new LtcError(`${path}: row ${i} is in list ${lists[i]}, outside 0…${ivf.nlist - 1}`);
    }
  }
  return {
    params: ivf,
    n,
    dim,
    centroids: c.data as Float32Array,
    lists,
    trainRows: Number(side.train_rows),
    buildSeconds: Number(side.build_seconds),
    sha256: sha256File(path),
  };
}

/**
 * IVF rows [start, end) of the self search of `features` over a loaded index, with the backend label and the
 * sidecar's `ivf` statistics (named as the unsharded kNN sidecar names them).
 */
export async function searchIvfIndex(
  features: Features,
  index: IvfIndex & { buildSeconds: number },
  opts: { k: number; rows: { start: number; end: number } },
): Promise<{ graph: KnnGraph; backend: string; extra: Record<string, unknown> }> {
  const t0 = performance.now();
  const r = await searchIvf(features, index, { k: opts.k, rows: opts.rows });
  const secs = (performance.now() - t0) / 1000;
  return {
    graph: { n: opts.rows.end - opts.rows.start, k: opts.k, nbrs: r.nbrs, dists: r.dists },
    backend: ivfLabel(r.label),
    extra: {
      train_rows: index.trainRows,
      empty_lists: r.emptyLists,
      largest_list: r.largestList,
      scanned_fraction: Number(r.scannedFraction.toPrecision(4)),
      build_seconds: Number(index.buildSeconds.toFixed(2)),
      query_seconds: Number(secs.toFixed(2)),
    },
  };
}
