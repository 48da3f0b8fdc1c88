/**
 * Stage `report`: gather the per-method results of a run into the seed's results table and a Markdown report with
 * SVG figures.
 *
 *     deno task report --run-dir results/RUN --gt-labels data/synth/default/labels/part1_test.meta \
 *       --method "CDP (th=0.7)=results/RUN/baselines/cdp/pred_labels.txt" --method "GCN-D (0.7, 0.75)=…"
 *
 * Inputs: one `LABEL=pred_labels.txt` per table row; wall time and parameters come from each label file's sidecar.
 * Metrics are computed here from the label files, so the table can never disagree with the artifacts.
 * Outputs: the table on stdout, `RUN/report.md`, `RUN/cluster_sizes.svg`, `RUN/precision_recall.svg`,
 * `RUN/results.json`.
 *
 * The code behind it: `cluster/report.ts`.
 * @module
 */
import { join } from "node:path";
import { ensureWritable } from "../shared/artifact.ts";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { runMain } from "../shared/errors.ts";
import { writeReport } from "../cluster/report.ts";

const spec: CliSpec = {
  name: "report",
  summary: "Results table (seed format) and report.md with SVG figures for one pipeline run.",
  options: {
    "run-dir": { type: "string", required: true, help: "folder for report.md, figures and results.json" },
    method: { type: "string", multiple: true, help: "LABEL=pred_labels.txt, one per table row, in order" },
    "gt-labels": { type: "string", required: true, help: "ground-truth .meta of the test set" },
    title: { type: "string", help: "report title" },
    "pad-singletons": { type: "boolean", help: "pad shorter predictions with singletons (write_meta(inst_num=N))" },
  },
};

if (import.meta.main) {
  await runMain(() => {
    const args = parseCli(spec, Deno.args);
    ensureWritable(join(args.reqStr("run-dir"), "report.md"));
    console.log(writeReport(args.reqStr("run-dir"), args.reqStr("gt-labels"), {
      methods: args.strs("method"),
      title: args.str("title"),
      padSingletons: args.bool("pad-singletons"),
    }));
  });
}
