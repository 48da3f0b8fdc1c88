/**
 * Stage `split`: split a labelled dataset into a training and a test set with disjoint identities — how the
 * benchmark's part0_train / part1_test relate — so GCN-D can be trained and tested on real embeddings that come as one
 * set (e.g. the CelebA face-api set in `../shared/data/real`).
 *
 *     deno task split --prefix ../shared/data/real --name celeba6300_faceapi128 --dim 128 --oprefix data/celeba \
 *         [--test-share 0.5] [--seed 42]
 *
 * Writes `OPREFIX/features/NAME_train.bin`, `OPREFIX/labels/NAME_train.meta` and the same for `NAME_test`, rows in
 * their original relative order and raw (not normalised: later stages normalise or centre as asked).
 *
 * The code behind it: `cluster/split.ts`.
 * @module
 */
import { join } from "node:path";
import { ensureWritable, Timings, writeSidecar } from "../shared/artifact.ts";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { runMain } from "../shared/errors.ts";
import { readFeatures, writeFeatures } from "../shared/features.ts";
import { readMeta, writeLabels } from "../shared/meta.ts";
import { log } from "../shared/progress.ts";
import { identitySplit } from "../cluster/split.ts";

const spec: CliSpec = {
  name: "split",
  summary: "Split a labelled set into NAME_train and NAME_test with disjoint identities.",
  options: {
    prefix: { type: "string", required: true, help: "data folder holding features/NAME.bin and labels/NAME.meta" },
    name: { type: "string", required: true, help: "dataset name" },
    oprefix: { type: "string", required: true, help: "output data folder" },
    dim: { type: "int", default: 256, help: "feature dimension" },
    "test-share": { type: "number", default: 0.5, help: "share of identities in the test set" },
    seed: { type: "int", default: 42, help: "random seed" },
  },
};

if (import.meta.main) {
  await runMain(() => {
    const args = parseCli(spec, Deno.args);
    const timings = new Timings();
    const prefix = args.reqStr("prefix"), name = args.reqStr("name"), oprefix = args.reqStr("oprefix");
    const featPath = join(prefix, "features", `${name}.bin`), labelPath = join(prefix, "labels", `${name}.meta`);
    // Outputs are checked writable before the (possibly large) features are read.
    for (const suffix of ["train", "test"]) {
      ensureWritable(join(oprefix, "features", `${name}_${suffix}.bin`));
      ensureWritable(join(oprefix, "labels", `${name}_${suffix}.meta`));
    }
    const meta = readMeta(labelPath);
    const feats = readFeatures(featPath, { dim: args.num("dim"), normalize: false, count: meta.labels.length });
    const isTest = identitySplit(meta.lb2idxs, { testShare: args.num("test-share"), seed: args.num("seed") });
    for (const [suffix, side] of [["train", 0], ["test", 1]] as const) {
      const rows = [...isTest.keys()].filter((i) => isTest[i] === side);
      const data = new Float32Array(rows.length * feats.dim);
      rows.forEach((r, t) => data.set(feats.data.subarray(r * feats.dim, (r + 1) * feats.dim), t * feats.dim));
      const out = join(oprefix, "features", `${name}_${suffix}.bin`);
      const outLabels = join(oprefix, "labels", `${name}_${suffix}.meta`);
      writeFeatures(out, data);
      writeLabels(outLabels, rows.map((r) => meta.labels[r]!));
      const params = { name, test_share: args.num("test-share"), seed: args.num("seed"), side: suffix };
      const extra = { n: rows.length, dim: feats.dim };
      writeSidecar(out, { stage: "split", params, inputs: [featPath, labelPath], timings, extra });
      writeSidecar(outLabels, { stage: "split", params, inputs: [featPath, labelPath], timings });
      log(`split: ${out} (${rows.length} rows, ${new Set(rows.map((r) => meta.labels[r])).size} identities)`);
    }
  });
}
