/**
 * Stage `knn-recall`: how good is a kNN file? Recall of its rows against exact inner-product search on a sample of
 * rows: recall@k, and the recall of the exact neighbours at or above similarity 0.5, 0.6 and 0.7 (the neighbours that
 * can become edges at the methods' thresholds; recall@k also counts each row's last, far neighbours).
 *
 *     deno task knn-recall --knn-path D/knns/N/ivf_k_80.npz --feat-path D/features/N.bin [--dim 256]
 *                          [--sample 1000] [--no-normalize] [--center] [--backend auto] [--json out.json]
 *
 * Inputs: any kNN file in the original's layout (ours, faiss's, the original's HNSW files) and the features it was
 * built from, prepared as the kNN stage prepares them (L2-normalised unless `--no-normalize`). Output: a summary on
 * stdout; with `--json` the object the kNN stage records as its sidecar's `recall`
 * (`{"sample", "recallAtK", "aboveSimilarity": [{"similarity", "neighbours", "recall"}], "backend"}`).
 *
 * The code behind it: `measureRecall` in `cluster/knn_source.ts`.
 * @module
 */
import { ensureWritable, writeFileAtomic } from "../shared/artifact.ts";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { readFeatures } from "../shared/features.ts";
import { readKnn } from "../shared/knn_file.ts";
import { measureRecall } from "../cluster/knn_source.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "knn-recall",
  summary: "Recall of a kNN file against exact search on a sample of rows (recall@k and above similarity cuts).",
  options: {
    "knn-path": { type: "string", required: true, help: "kNN file (N, 2, k)" },
    "feat-path": { type: "string", required: true, help: "the features it was built from (.bin)" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    sample: { type: "int", default: 1000, help: "evenly spaced rows searched exactly" },
    "no-normalize": { type: "boolean", help: "do not L2-normalise features (as the kNN stage's --no-normalize)" },
    center: { type: "boolean", help: "subtract the mean feature before normalising (as the kNN stage's --center)" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "backend of exact search" },
    json: { type: "string", help: "also write the recall as JSON to this file" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const out = args.str("json");
    if (out) ensureWritable(out);
    const sample = args.num("sample");
    if (!(sample >= 1)) throw new LtcError(`knn-recall: --sample must be at least 1, got ${sample}`);
    const knnPath = args.reqStr("knn-path");
    const graph = readKnn(knnPath);
    const features = readFeatures(args.reqStr("feat-path"), {
      dim: args.num("dim"),
      normalize: !args.bool("no-normalize"),
      center: args.bool("center"),
      count: graph.n,
    });
    const r = await measureRecall(graph, features, { sample, backend: args.str("backend") as BackendChoice });
    console.log(`${knnPath}: ${r.sample} rows searched exactly (${r.backend})`);
    console.log(`recall@${graph.k} ${r.recallAtK.toFixed(4)}`);
    for (const a of r.aboveSimilarity) {
      console.log(
        `recall of the ${a.neighbours} exact neighbours with similarity ≥ ${a.similarity}: ${a.recall.toFixed(4)}`,
      );
    }
    if (out) writeFileAtomic(out, JSON.stringify(r) + "\n");
  });
}
