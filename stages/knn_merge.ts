/**
 * Stage `knn-merge`: join the part files of a sharded kNN run into the kNN file an unsharded run writes.
 *
 *     deno task knn-merge --prefix DIR --name NAME [--k 80] [--method exact|ivf] --shards S
 *
 * Reads `DIR/knns/NAME/<faiss|ivf>_k_<k>.part_<I>_of_<S>.npz` for I = 0 … S − 1 (written by `deno task knn …
 * --shard I/S`), checks them (all present and finished, consecutive row ranges covering all rows, equal
 * parameters, built from the features file as it is now and, for IVF, from one index) and writes
 * `DIR/knns/NAME/<faiss|ivf>_k_<k>.npz` byte-identical to the unsharded run's, with a sidecar whose parameters
 * equal the unsharded one's plus `shards` (each part's rows and seconds) and `merge_seconds`. The parts are kept.
 *
 * The code behind it: `cluster/knn_shard.ts`.
 * @module
 */
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { runMain } from "../shared/errors.ts";
import { KNN_STAGE_METHODS, type KnnStageMethod } from "../cluster/knn_source.ts";
import { runKnnMerge } from "../cluster/knn_shard.ts";

/** The stage's command line. */
export const KNN_MERGE_CLI: CliSpec = {
  name: "knn-merge",
  summary: "Join DIR/knns/NAME/<faiss|ivf>_k_<k>.part_<I>_of_<S>.npz into DIR/knns/NAME/<faiss|ivf>_k_<k>.npz.",
  options: {
    prefix: { type: "string", required: true, help: "data folder holding features/NAME.bin and knns/NAME/" },
    name: { type: "string", required: true, help: "feature set name" },
    k: { type: "int", default: 80, help: "neighbours per row (as the parts were built)" },
    method: { type: "string", default: "exact", choices: KNN_STAGE_METHODS, help: "exact (= faiss) or ivf" },
    shards: { type: "int", required: true, help: "S, the number of parts (shards 0 … S − 1)" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(KNN_MERGE_CLI, Deno.args);
    await runKnnMerge({
      prefix: args.reqStr("prefix"),
      name: args.reqStr("name"),
      k: args.num("k"),
      method: args.str("method") as KnnStageMethod,
      shards: args.num("shards"),
    });
  });
}
