/**
 * Sharded kNN: shard I of S computes the kNN rows of query rows [start, end) against all N base rows and writes a
 * part file; the merge joins the S parts into the kNN file the unsharded stage writes — byte for byte — with a
 * sidecar whose parameters and inputs equal the unsharded one's, so every later stage (and a following unsharded
 * `deno task knn`, which then says "up to date") takes the merged file as the unsharded one.
 *
 * Files, beside the unsharded `PREFIX/knns/NAME/<faiss|ivf>_k_<k>.npz`:
 * - `<faiss|ivf>_k_<k>.part_<I>_of_<S>.npz`: member `data`, `(end − start, 2, k)` float64 in the kNN file's
 *   layout (ids into all N rows), and member `rows`, int64 `[start, end, N]` (shared/knn_file.ts `writeKnnPart`);
 *   sidecar stage `knn-part`: the unsharded artifact's `params`, inputs (the features file; IVF: also the index),
 *   and `shard`, `shards`, `rows: [start, end]`, `n`, backend, timings, and for IVF the recall hits of the
 *   recall sample rows that fall in the shard;
 * - IVF only, `ivf_index.npz` (cluster/ivf_index.ts): the one index every IVF shard searches.
 *
 * Row ranges: exact shards are [⌊I·N/S⌋, ⌊(I+1)·N/S⌋); IVF shards are the same cut in whole query chunks of the
 * IVF search (the IVF parameter `chunkRows`, `--ivf-chunk`; gpu/knn/ivf.ts `defaultChunkRows`), so the
 * last-bit-sensitive products of a chunk are formed exactly as in the unsharded run (the part's sidecar records
 * the true range). Exact search computes a shard's rows inside the aligned query blocks of a full run
 * (gpu/knn/mod.ts `EXACT_QUERY_BLOCK`), so its rows are bit for bit a full run's. Byte identity assumes the shards
 * run where the unsharded run would (same backend, same onnxruntime build and thread count, same CPU kind: another
 * one may round the last bit of a similarity differently). HNSW cannot be sharded: its
 * graph is built by inserting every row in turn and its rows depend on the whole insertion order, so a shard would
 * have to build the whole index anyway — and rows computed by separate builds would not join into the unsharded
 * file.
 *
 * The merge reads one part at a time into the final graph's arrays (never more than those plus one part) and
 * writes them with the same writer as the unsharded stage.
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
  type SidecarRecord,
  Timings,
  writeSidecar,
} from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { parseShard as parseShardText, type Shard, shardPartPath } from "../shared/shard.ts";
import { type KnnGraph, readKnnPart, writeKnn, writeKnnPart } from "../shared/knn_file.ts";
import { log } from "../shared/progress.ts";
import { exactKnn, ivfParams } from "../gpu/knn/mod.ts";
import {
  exactRecallCounts,
  FeatureCache,
  type FeatureSource,
  knnArtifactParams,
  knnArtifactPath,
  type KnnStageMethod,
  type KnnStageOptions,
  recallAboveRecord,
  type RecallCounts,
  recallCounts,
  sampleRows,
  searchMethodOf,
} from "./knn_source.ts";
import { ivfIndexPath, loadIvfIndexChecked, searchIvfIndex } from "./ivf_index.ts";

/** Shard `index` of `count` (0 ≤ index < count). */
export type KnnShard = Shard;

/**
 * Parse `--shard I/S` for `n` feature rows (when known): {@linkcode parseShardText}, and S ≤ `n` (every shard needs
 * a row).
 */
export function parseShard(text: string, n?: number): KnnShard {
  const shard = parseShardText(text);
  if (n !== undefined && shard.count > n) {
    throw new LtcError(`--shard ${text}: ${shard.count} shards exceed the ${n} feature rows (every shard needs a row)`);
  }
  return shard;
}

/**
 * Rows of shard `shard` of `n`: [⌊I·N/S⌋, ⌊(I+1)·N/S⌋), cut in whole blocks of `chunk` rows when given (the last
 * block may be shorter: it ends at N) — chunk I of S covers blocks [⌊I·C/S⌋, ⌊(I+1)·C/S⌋) of the C = ⌈N/chunk⌉.
 */
export function shardRows(n: number, shard: KnnShard, chunk = 1): { start: number; end: number } {
  const blocks = Math.ceil(n / chunk);
  const at = (i: number) => Math.min(n, Math.floor((i * blocks) / shard.count) * chunk);
  return { start: at(shard.index), end: at(shard.index + 1) };
}

/** Path of a part file: `PREFIX/knns/NAME/<faiss|ivf>_k_<k>.part_<I>_of_<S>.npz`. */
export function knnPartPath(
  prefix: string,
  name: string,
  opts: { method: KnnStageMethod; k: number; shard: KnnShard },
): string {
  return shardPartPath(knnArtifactPath(prefix, name, opts.method, opts.k), opts.shard);
}

/** The features file of a stage's options. */
function sourceOf(options: { prefix: string; name: string; dim?: number; normalize?: boolean; center?: boolean }) {
  return {
    path: join(options.prefix, "features", `${options.name}.bin`),
    dim: options.dim ?? 256,
    normalize: options.normalize ?? true,
    center: options.center ?? false,
  } satisfies FeatureSource;
}

/** Row count of a features file, or an error naming it. */
function rowCountOf(source: FeatureSource): number {
  const n = new FeatureCache(source).rowCount();
  if (n === undefined) {
    throw new LtcError(`${source.path}: missing, or its size is not a whole number of ${source.dim}-dim float32 rows`);
  }
  return n;
}

/** Result of {@linkcode runKnnShard}. */
export interface KnnShardResult {
  path: string;
  skipped: boolean;
  start: number;
  end: number;
}

/**
 * `deno task knn … --shard I/S`: the kNN rows of shard I (exact, or IVF over the index of `--build-index`) into
 * its part file, unless that is up to date. HNSW is refused (see the module header).
 */
export async function runKnnShard(options: KnnStageOptions & { shard: string }): Promise<KnnShardResult> {
  const method = options.method ?? "exact";
  const search = searchMethodOf(method);
  if (search === "hnsw") {
    throw new LtcError(
      `knn: --shard does not work with --method hnsw: an HNSW graph is built by inserting every row in turn, so ` +
        `each shard would build the whole index, and rows of separately built graphs do not join into the ` +
        `unsharded file; use --method exact or ivf, or HNSW's own --shards (worker threads)`,
    );
  }
  const source = sourceOf(options);
  const n = rowCountOf(source);
  const shard = parseShard(options.shard, n);
  const { k } = options;
  if (!(Number.isInteger(k) && k > 0 && k < n)) {
    throw new LtcError(`${source.path}: k = ${k} must be a positive integer below its ${n} rows`);
  }
  const params = knnArtifactParams(method, k, source, { ivf: options.ivf, n });
  const indexPath = ivfIndexPath(options.prefix, options.name);
  let range = shardRows(n, shard);
  if (search === "ivf") {
    const chunk = ivfParams(n, { ...options.ivf }).chunkRows;
    range = shardRows(n, shard, chunk);
    if (range.start === range.end) {
      throw new LtcError(
        `knn: --shard ${options.shard}: IVF shards are whole query chunks of ${chunk} rows (--ivf-chunk), ` +
          `${Math.ceil(n / chunk)} for ${n} rows: use at most that many shards`,
      );
    }
  }
  const path = knnPartPath(options.prefix, options.name, { method, k, shard });
  const inputs = search === "ivf" ? [source.path, indexPath] : [source.path];
  if (!options.force && isUpToDate(path, params, inputs) && sameRange(readSidecar(path), range)) {
    log(`knn: ${path} is up to date (use --force to rebuild)`);
    return { path, skipped: true, ...range };
  }
  ensureWritable(path);
  const t = new Timings();
  const cache = new FeatureCache(source);
  const features = t.step("read_features", () => cache.get());
  const { start, end } = range;
  let graph: KnnGraph, backend: string;
  let ivfExtra: Record<string, unknown> | undefined;
  if (search === "ivf") {
    const index = t.step("read_index", () => loadIvfIndexChecked(indexPath, { source, params, n }));
    const r = await t.stepAsync("ivf", () => searchIvfIndex(features, index, { k, rows: range }));
    graph = r.graph;
    backend = r.backend;
    ivfExtra = r.extra;
  } else {
    const r = await t.stepAsync(
      "exact_knn",
      () => exactKnn(features, { k, backend: options.backend ?? "auto", rows: range, progress: options.progress }),
    );
    graph = r.graph;
    backend = r.backend;
  }
  const recall = search === "ivf" ? await shardRecall(features, { graph, start, end, options, t }) : undefined;
  cache.release();
  markInProgress(path, "knn-part");
  await t.stepAsync("write", () => writeKnnPart(path, { graph, start, end, total: n }));
  writeSidecar(path, {
    stage: "knn-part",
    params,
    inputs,
    backend,
    timings: t,
    extra: {
      shard: shard.index,
      shards: shard.count,
      rows: [start, end],
      n,
      dim: features.dim,
      k,
      ...(ivfExtra ? { ivf: ivfExtra } : {}),
      ...(recall ? { recall } : {}),
    },
  });
  log(`knn: wrote ${path} (rows ${start}…${end - 1} of ${n}, k ${k}, ${backend}, ${t.total().toFixed(1)} s)`);
  return { path, skipped: false, start, end };
}

/** Whether a part's sidecar records the row range `range`. */
function sameRange(side: SidecarRecord | undefined, range: { start: number; end: number }): boolean {
  const rows = side?.rows;
  return Array.isArray(rows) && rows[0] === range.start && rows[1] === range.end;
}

/**
 * Recall hits of the approximate rows of a shard on the unsharded run's recall sample rows that fall in it (exact
 * search on those rows), so the merge reports the unsharded run's recall.
 */
async function shardRecall(
  features: { n: number; dim: number; data: Float32Array },
  ctx: { graph: KnnGraph; start: number; end: number; options: KnnStageOptions; t: Timings },
): Promise<{ sample: number; hits: number; above: RecallCounts["above"]; backend?: string } | undefined> {
  const { graph, start, end, options, t } = ctx;
  const sample = options.recallSample ?? 1000;
  if (sample <= 0) return undefined;
  const rows = sampleRows(features.n, sample).filter((i) => i >= start && i < end);
  if (rows.length === 0) return { sample: 0, hits: 0, above: recallCounts(graph, graph, rows).above };
  const { counts, backend } = await t.stepAsync(
    "recall_exact_sample",
    () => exactRecallCounts(graph, features, { rows, rowOffset: start, backend: options.backend }),
  );
  return { sample: rows.length, hits: counts.hits, above: counts.above, backend };
}

/** Options of {@linkcode runKnnMerge}. */
export interface KnnMergeOptions {
  prefix: string;
  name: string;
  k: number;
  method?: KnnStageMethod;
  /** S, the number of part files */
  shards: number;
}

/** What the merge checked and read of one part. */
interface PartInfo {
  path: string;
  side: SidecarRecord;
  start: number;
  end: number;
}

/**
 * `deno task knn-merge`: check the S part files (present, finished, shard I of this S, consecutive ranges covering
 * [0, N), equal parameters, built from the features file as it is now and, for IVF, from one index), join their
 * rows and write the unsharded kNN file with the unsharded stage's sidecar, plus `shards` (each part's rows and
 * seconds) and `merge_seconds`.
 */
export async function runKnnMerge(options: KnnMergeOptions): Promise<{ path: string }> {
  const method = options.method ?? "exact";
  const search = searchMethodOf(method);
  const { k, shards } = options;
  if (search === "hnsw") throw new LtcError(`knn-merge: HNSW runs are not sharded (see deno task knn --help)`);
  if (!(Number.isInteger(shards) && shards >= 1)) {
    throw new LtcError(`knn-merge: --shards must be a positive integer, got ${shards}`);
  }
  const t = new Timings();
  const out = knnArtifactPath(options.prefix, options.name, method, k);
  const featuresPath = join(options.prefix, "features", `${options.name}.bin`);
  const parts = t.step("check_parts", () => checkParts(options, { method, featuresPath }));
  const side0 = parts[0]!.side;
  const params = side0.params!;
  const n = parts[parts.length - 1]!.end;
  ensureWritable(out);
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  t.step("read_parts", () => {
    for (const p of parts) {
      const part = readKnnPart(p.path);
      if (part.start !== p.start || part.end !== p.end || part.total !== n) {
        throw new LtcError(
          `${p.path}: holds rows [${part.start}, ${part.end}) of ${part.total}, but its sidecar says ` +
            `[${p.start}, ${p.end}) of ${n}`,
        );
      }
      if (part.graph.k !== k) throw new LtcError(`${p.path}: has ${part.graph.k} neighbours per row, not k = ${k}`);
      nbrs.set(part.graph.nbrs, p.start * k);
      dists.set(part.graph.dists, p.start * k);
    }
  });
  markInProgress(out, "knn");
  await t.stepAsync("write", () => writeKnn(out, { n, k, nbrs, dists }));
  const backends = [...new Set(parts.map((p) => String(p.side.backend)))];
  const secs = (side: SidecarRecord, step: string) => Number((timingsOf(side)[step] ?? 0).toFixed(3));
  const recall = mergedRecall(parts);
  const ivf = search === "ivf" ? mergedIvfStats(parts, n) : undefined;
  writeSidecar(out, {
    stage: "knn",
    params,
    inputs: [featuresPath],
    backend: backends.join("; "),
    timings: t,
    extra: {
      n,
      dim: side0.dim,
      k,
      ...(ivf ? { ivf } : {}),
      ...(recall ? { recall } : {}),
      shards: parts.map((p, i) => ({
        shard: i,
        rows: [p.start, p.end],
        seconds: secs(p.side, "total"),
        knn_seconds: secs(p.side, search === "ivf" ? "ivf" : "exact_knn"),
      })),
      merge_seconds: Number(t.total().toFixed(3)),
    },
  });
  log(`knn-merge: wrote ${out} (${n} rows from ${shards} parts, k ${k}, ${t.total().toFixed(1)} s)`);
  return { path: out };
}

/** The step timings of a sidecar (`timings_s`). */
function timingsOf(side: SidecarRecord): Record<string, number> {
  const t = side.timings_s;
  return typeof t === "object" && t !== null ? t as Record<string, number> : {};
}

/** Check every part (see {@linkcode runKnnMerge}); one LtcError naming the file and the problem otherwise. */
function checkParts(
  options: KnnMergeOptions,
  ctx: { method: KnnStageMethod; featuresPath: string },
): PartInfo[] {
  const { k, shards } = options;
  const { method, featuresPath } = ctx;
  const featuresSha = isFile(featuresPath) ? sha256File(featuresPath) : undefined;
  if (!featuresSha) throw new LtcError(`${featuresPath}: missing; the merged file's sidecar records its hash`);
  const parts: PartInfo[] = [];
  let paramsText: string | undefined, firstPath = "";
  for (let i = 0; i < shards; i++) {
    const path = knnPartPath(options.prefix, options.name, { method, k, shard: { index: i, count: shards } });
    const rerun = `run deno task knn … --k ${k} --method ${method} --shard ${i}/${shards}`;
    if (!isFile(path)) throw new LtcError(`${path}: missing (part ${i} of ${shards}); ${rerun}`);
    const side = readSidecar(path);
    if (!side) throw new LtcError(`${path}: has no sidecar, so nothing says what it holds; ${rerun}`);
    if (side.in_progress) throw new LtcError(`${path}: its run was interrupted before it finished; ${rerun}`);
    if (side.stage !== "knn-part") {
      throw new LtcError(`${path}: its sidecar says stage '${side.stage}', not a kNN part (knn-part)`);
    }
    if (side.shard !== i || side.shards !== shards) {
      throw new LtcError(
        `${path}: its sidecar says shard ${side.shard} of ${side.shards}, but its name says ${i} of ${shards}`,
      );
    }
    const text = JSON.stringify(side.params);
    if (paramsText === undefined) paramsText = text, firstPath = path;
    else if (text !== paramsText) {
      throw new LtcError(`${path}: was built with parameters ${text}, but ${firstPath} with ${paramsText}`);
    }
    const params = side.params ?? {};
    if (params.k !== k || params.method !== searchMethodOf(method)) {
      throw new LtcError(
        `${path}: its sidecar says method ${params.method}, k ${params.k}; expected ${method}, k ${k}`,
      );
    }
    const feats = side.inputs?.[0];
    if (!feats || feats.sha256 !== featuresSha) {
      throw new LtcError(
        `${path}: was built from other features than ${featuresPath} holds now (sha256 ${
          feats?.sha256.slice(0, 12) ?? "none"
        }…, now ${featuresSha.slice(0, 12)}…); ${rerun}`,
      );
    }
    const rows = side.rows;
    if (!Array.isArray(rows) || rows.length !== 2 || !rows.every(Number.isInteger)) {
      throw new LtcError(`${path}: its sidecar records no row range`);
    }
    const [start, end] = rows as [number, number];
    const want = i === 0 ? 0 : parts[i - 1]!.end;
    if (start !== want || !(end > start)) {
      throw new LtcError(
        `${path}: holds rows [${start}, ${end}), but shard ${i} must start at row ${want}` +
          (i > 0 ? ` (where ${parts[i - 1]!.path} ends)` : "") + ` and hold at least one row`,
      );
    }
    parts.push({ path, side, start, end });
  }
  const last = parts[shards - 1]!;
  const n = last.side.n;
  if (last.end !== n) throw new LtcError(`${last.path}: ends at row ${last.end}, but the features have ${n} rows`);
  const dim = parts[0]!.side.params?.dim;
  const rowsNow = new FeatureCache({ path: featuresPath, dim: typeof dim === "number" ? dim : 256 }).rowCount();
  if (rowsNow !== n) throw new LtcError(`${featuresPath}: has ${rowsNow} rows but the parts cover ${n}`);
  if (searchMethodOf(method) === "ivf") {
    const index = parts.map((p) => p.side.inputs?.[1]?.sha256);
    const odd = index.findIndex((h) => h !== index[0]);
    if (index[0] === undefined || odd >= 0) {
      throw new LtcError(
        `${parts[Math.max(0, odd)]!.path}: searched another IVF index than ${parts[0]!.path}; rebuild the parts`,
      );
    }
  }
  return parts;
}

/** The unsharded run's recall from the parts' counts on the sample rows each held. */
function mergedRecall(parts: PartInfo[]): Record<string, unknown> | undefined {
  let sample = 0, hits = 0, k = 0;
  let backend: unknown;
  const above = new Map<number, { similarity: number; neighbours: number; found: number }>();
  for (const p of parts) {
    const r = p.side.recall as
      | { sample?: number; hits?: number; above?: RecallCounts["above"]; backend?: string }
      | undefined;
    if (!r) return undefined;
    sample += r.sample ?? 0;
    hits += r.hits ?? 0;
    for (const a of r.above ?? []) {
      const sum = above.get(a.similarity) ?? { similarity: a.similarity, neighbours: 0, found: 0 };
      sum.neighbours += a.neighbours;
      sum.found += a.found;
      above.set(a.similarity, sum);
    }
    k = Number(p.side.k);
    backend ??= r.backend;
  }
  return sample
    ? { sample, recallAtK: hits / (sample * k), aboveSimilarity: recallAboveRecord([...above.values()]), backend }
    : undefined;
}

/** IVF statistics of the merged run: the index's, the scanned share over all rows, the summed query time. */
function mergedIvfStats(parts: PartInfo[], n: number): Record<string, unknown> | undefined {
  const all = parts.map((p) => p.side.ivf as Record<string, number> | undefined);
  if (all.some((s) => !s)) return undefined;
  const first = all[0]!;
  let scanned = 0, query = 0;
  all.forEach((s, i) => {
    scanned += s!.scanned_fraction! * (parts[i]!.end - parts[i]!.start);
    query += s!.query_seconds!;
  });
  return {
    train_rows: first.train_rows,
    empty_lists: first.empty_lists,
    largest_list: first.largest_list,
    scanned_fraction: Number((scanned / n).toPrecision(4)),
    build_seconds: first.build_seconds,
    query_seconds: Number(query.toFixed(2)),
  };
}
