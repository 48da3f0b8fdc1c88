/**
 * Stage `knn`: the kNN graph of a feature file, in the original's layout and file names.
 *
 *     deno task knn --prefix DIR --name NAME [--k 80] [--method exact|hnsw|ivf] [--backend auto|webgpu|cpu]
 *                   [--dim 256] [--no-normalize] [--center] [--force] [--nlist L] [--nprobe P]
 *                   [--ivf-chunk Q] [--ivf-screen-bits 8|32] [--shard I/S] [--build-index]
 *
 * Reads `DIR/features/NAME.bin` (L2-normalised on load unless `--no-normalize`; `--center` subtracts the mean
 * first) and writes `DIR/knns/NAME/faiss_k_<k>.npz` (exact, interchangeable with the original's faiss IndexFlatIP
 * files), `DIR/knns/NAME/hnsw_k_<k>.npz` or `DIR/knns/NAME/ivf_k_<k>.npz`: dense `(N, 2, k)` float64, rows by
 * descending similarity with self normally first, distance = 1 − cosine; rows that found fewer than k neighbours
 * (approximate methods) end in neighbour −1, distance 1. A sidecar `<file>.meta.json` records backend, adapter,
 * timings and, for HNSW and IVF, recall@k against exact search on a sample of rows. An up-to-date artifact (same
 * parameters, same input bytes) is kept unless `--force`.
 *
 * `ivf` is an inverted-file index (gpu/knn/ivf.ts): `--nlist` coarse k-means lists (default 12·√N), each row
 * scanning the `--nprobe` lists nearest to it (default nlist / 48, at least 32: recall@80 ≥ 0.99 on the synthetic
 * benchmark at 98K and 584K rows), query rows searched in chunks of `--ivf-chunk` (default max(8192, 16·nlist)),
 * the later probes screened by 8-bit products, float32 on the rows kept (`--ivf-screen-bits 8`, default; 32:
 * float32 products).
 * Downstream stages read its file with `--knn-method ivf`.
 *
 * Sharding (exact and IVF; cluster/knn_shard.ts): `--shard I/S` computes only query rows [⌊I·N/S⌋, ⌊(I+1)·N/S⌋)
 * (IVF: rounded to whole query chunks) against all N rows into `DIR/knns/NAME/<faiss|ivf>_k_<k>.part_I_of_S.npz`
 * (sidecar stage `knn-part`); `deno task knn-merge … --shards S` joins the S parts into the file an unsharded run
 * writes, byte for byte, with the same sidecar parameters. IVF shards search one shared index, built first with
 * `--method ivf --build-index` into `DIR/knns/NAME/ivf_index.npz` (an unsharded IVF run builds the same index in
 * memory: the build is deterministic). HNSW cannot be sharded (its graph depends on inserting every row).
 *
 * The code behind it: `cluster/knn_source.ts`, `cluster/knn_shard.ts`, `cluster/ivf_index.ts`.
 * @module
 */
import { CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { KNN_STAGE_METHODS, type KnnStageMethod, type KnnStageOptions, runKnnStage } from "../cluster/knn_source.ts";
import { runKnnShard } from "../cluster/knn_shard.ts";
import { runIvfIndexStage } from "../cluster/ivf_index.ts";
import type { BackendChoice } from "../gpu/device.ts";

/** The stage's command line. */
export const KNN_CLI: CliSpec = {
  name: "knn",
  summary: "Build the kNN graph of DIR/features/NAME.bin into DIR/knns/NAME/{faiss,hnsw,ivf}_k_<k>.npz (+ sidecar).",
  options: {
    prefix: { type: "string", required: true, help: "data folder holding features/NAME.bin" },
    name: { type: "string", required: true, help: "feature set name" },
    k: { type: "int", default: 80, help: "neighbours per row (self included)" },
    method: { type: "string", default: "exact", choices: KNN_STAGE_METHODS, help: "exact (= faiss), hnsw or ivf" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "backend of exact search" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    "no-normalize": { type: "boolean", help: "do not L2-normalise features" },
    center: { type: "boolean", help: "subtract the mean feature before normalising" },
    force: { type: "boolean", help: "rebuild even when the artifact is up to date" },
    "hnsw-m": { type: "int", default: 16, help: "HNSW graph degree M" },
    "ef-construction": { type: "int", default: 100, help: "HNSW construction beam" },
    ef: { type: "int", help: "HNSW search beam (default max(k + 40, 2k))" },
    shards: { type: "int", default: 1, help: "HNSW: independent shards built and searched in worker threads" },
    nlist: { type: "int", help: "IVF: number of lists (default 12·√N)" },
    nprobe: { type: "int", help: "IVF: lists scanned per row (default nlist / 48, at least 32)" },
    "ivf-chunk": {
      type: "int",
      help: "IVF: query rows searched together (default max(8192, 16·nlist)); shards: whole chunks",
    },
    "ivf-screen-bits": {
      type: "int",
      help:
        "IVF: bits of the second pass's and the probe ranking's products, 8 (screens the scan's rows, float32 on those kept) or 32 (default 8)",
    },
    "recall-sample": { type: "int", default: 1000, help: "HNSW, IVF: rows whose recall@k is measured (0 = skip)" },
    shard: { type: "string", help: "I/S: only shard I of S of the query rows, into a part file (exact, ivf)" },
    "build-index": { type: "boolean", help: "IVF: build the shared index DIR/knns/NAME/ivf_index.npz only" },
  },
};

/** Stage options from parsed command-line arguments. */
export function optionsFromArgs(args: CliArgs): KnnStageOptions {
  return {
    prefix: args.reqStr("prefix"),
    name: args.reqStr("name"),
    k: args.num("k"),
    method: args.str("method") as KnnStageMethod,
    backend: args.str("backend") as BackendChoice,
    dim: args.num("dim"),
    normalize: !args.bool("no-normalize"),
    center: args.bool("center"),
    force: args.bool("force"),
    hnsw: {
      m: args.num("hnsw-m"),
      efConstruction: args.num("ef-construction"),
      ef: args.optNum("ef"),
      shards: args.num("shards"),
    },
    ivf: {
      nlist: args.optNum("nlist"),
      nprobe: args.optNum("nprobe"),
      chunkRows: args.optNum("ivf-chunk"),
      screenBits: args.optNum("ivf-screen-bits"),
    },
    recallSample: args.num("recall-sample"),
  };
}

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(KNN_CLI, Deno.args);
    const options = optionsFromArgs(args);
    const shard = args.str("shard");
    if (args.bool("build-index")) {
      if (options.method !== "ivf") throw new LtcError(`knn: --build-index builds the IVF index; add --method ivf`);
      if (shard !== undefined) {
        throw new LtcError(`knn: --build-index builds the one index every shard uses; no --shard`);
      }
      await runIvfIndexStage(options);
    } else if (shard !== undefined) await runKnnShard({ ...options, shard });
    else await runKnnStage(options);
  });
}
