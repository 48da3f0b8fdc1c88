/**
 * Stage `detect-merge`: join the parts of a sharded GCN-D detection (`deno task detect … --shard I/S`, I = 0…S−1)
 * and finish as detect does.
 *
 *     deno task detect-merge --work-dir W --load-from CKPT --shards S [--label-path L] [--th-pos -1] [--th-iou 1] \
 *       [--det-label iou|iop] [--config cfg.yaml]
 *
 * Reads `W/<ckpt-name>.part_<I>_of_<S>.npz` and their sidecars and checks them: every part present and finished,
 * the same S, ranges that meet and cover all P proposals, the same checkpoint bytes (also those of `--load-from`),
 * features (unchanged since), proposal folders (still holding the proposals each part scored), options and backend;
 * otherwise one error naming the part and the problem. Then writes `W/<ckpt-name>.npz` — the same bytes the
 * unsharded detect run writes — with a sidecar of the same params and inputs (plus `shards`: per-part range and
 * seconds, and the merge's), de-overlaps once into `W/pred_labels.txt` and with labels writes `W/metrics.json`, as
 * detect does. Proposal folders and the instance count come from the parts. With `--config`, its work_dir,
 * test_data labels, th_pos/th_iou, metrics and load_from apply; options given on the command line win.
 *
 * The code behind it: `cluster/detect_shard.ts` (and detect's tail in `cluster/detect.ts`).
 * @module
 */
import { basename, join } from "node:path";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import { mergeDetectParts } from "../cluster/detect_shard.ts";
import { formatMetrics } from "../cluster/metrics.ts";
import { loadGcnConfig } from "../gpu/gcn/mod.ts";

const spec: CliSpec = {
  name: "detect-merge",
  summary: "Join the parts of a sharded detect run (detect --shard I/S) into the unsharded run's scores file, " +
    "de-overlap into pred_labels.txt, and evaluate when labels are given.",
  options: {
    "work-dir": {
      type: "string",
      help:
        "folder holding the parts, and the outputs (default ./data/work_dir/<config name> or ./data/work_dir/detect)",
    },
    "load-from": { type: "string", help: "the checkpoint the parts were scored with (names the part files)" },
    "random-init": { type: "boolean", help: "the parts were scored with detect --random-init" },
    shards: { type: "int", help: "number of parts S", required: true },
    "label-path": { type: "string", help: "ground-truth .meta for evaluation" },
    "det-label": { type: "string", default: "iou", choices: ["iou", "iop"], help: "target the scores estimate" },
    "th-pos": { type: "number", help: "keep proposals with score ≥ th-pos (default -1: all)" },
    "th-iou": { type: "number", help: "NMS IoU threshold, ≥ 1 disables (default 1)" },
    config: { type: "string", help: "YAML config (its work_dir, test_data labels, th_pos, th_iou, metrics)" },
    prefix: { type: "string", help: "data prefix for relative paths in the config (default: the config's, ./data)" },
  },
};

if (import.meta.main) {
  await runMain(() => {
    const args = parseCli(spec, Deno.args);
    const cfg = args.given("config") ? loadGcnConfig(args.reqStr("config"), { prefix: args.str("prefix") }) : null;
    const loadFrom = args.str("load-from") ?? cfg?.loadFrom;
    if (!loadFrom && !args.bool("random-init")) {
      throw new LtcError(
        "detect-merge: --load-from is required (the checkpoint the parts were scored with), or --random-init",
      );
    }
    const workDir = args.str("work-dir") ?? cfg?.workDir ??
      join("./data/work_dir", cfg ? basename(cfg.path).replace(/\.ya?ml$/, "") : "detect");
    const result = mergeDetectParts({
      workDir,
      loadFrom,
      shards: args.num("shards"),
      labelPath: args.str("label-path") ?? cfg?.testData?.labelPath,
      detLabel: args.str("det-label") as "iou" | "iop",
      thPos: args.optNum("th-pos") ?? cfg?.thPos ?? -1,
      thIou: args.optNum("th-iou") ?? cfg?.thIou ?? 1,
      metrics: cfg?.metrics,
    });
    log(
      `detect-merge: scores → ${result.scoresPath}; labels → ${result.labelsPath} (${result.backend}, ` +
        `${result.timings.total().toFixed(1)} s)`,
    );
    if (result.metrics) console.log(formatMetrics(result.metrics));
  });
}
