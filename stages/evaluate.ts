/**
 * Stage `evaluate`: score a predicted partition against ground truth with the original's metrics.
 *
 *     deno task evaluate --gt-labels labels/part1_test.meta --pred-labels pred_labels.txt [--metric all] [--json out.json]
 *
 * Inputs: two label files (one int per line). A prediction shorter than the ground truth is refused unless
 * `--pad-singletons` (the original's iter-0 `pred_labels.txt` omits trailing unassigned rows).
 * Output: a table on stdout; with `--json` exactly
 * `{"pairwise": {"precision", "recall", "fscore"}, "bcubed": {…}, "nmi": x}` (only the metrics asked for).
 *
 * The code behind it: `cluster/metrics.ts`.
 * @module
 */
import { ensureWritable, writeFileAtomic } from "../shared/artifact.ts";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { runMain } from "../shared/errors.ts";
import { evaluateFiles, formatMetrics, type MetricName } from "../cluster/metrics.ts";

const spec: CliSpec = {
  name: "evaluate",
  summary: "Pairwise / BCubed precision, recall, F-score and NMI of a predicted partition (the original's formulas).",
  options: {
    "gt-labels": { type: "string", required: true, help: "ground-truth .meta file" },
    "pred-labels": { type: "string", required: true, help: "predicted labels (pred_labels.txt)" },
    metric: { type: "string", default: "all", choices: ["all", "pairwise", "bcubed", "nmi"], help: "metric(s)" },
    json: { type: "string", help: "also write the metrics as JSON to this file" },
    "pad-singletons": { type: "boolean", help: "pad a shorter prediction with singletons (write_meta(inst_num=N))" },
  },
};

if (import.meta.main) {
  await runMain(() => {
    const args = parseCli(spec, Deno.args);
    const out = args.str("json");
    if (out) ensureWritable(out);
    const metrics = evaluateFiles(args.reqStr("gt-labels"), args.reqStr("pred-labels"), {
      metric: args.str("metric") as MetricName,
      padSingletons: args.bool("pad-singletons"),
    });
    console.log(formatMetrics(metrics));
    if (out) writeFileAtomic(out, JSON.stringify(metrics) + "\n");
  });
}
