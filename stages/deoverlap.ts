/**
 * Stage `deoverlap`: turn per-proposal scores into a partition (reference §6) — rank proposals by score (stable),
 * optional IoU NMS, every node takes the label of the best proposal containing it, uncovered nodes are singletons.
 *
 *     deno task deoverlap --pred-score work/x.npz [--th-pos -1] [--th-iou 1] [--proposal-folders D …] [--n N]
 *         [--output FILE] [--gt-labels labels/x.meta]
 *
 * Scores: key `data` of the `.npz` (one float per proposal, in the proposal folders' file order). Proposal folders
 * and the instance count come from, in this order: the options, the sidecar `FILE.npz.meta.json`
 * (`proposal_folders`, `tot_inst_num`, at the top level or under `extra`), or the original's pickled `meta` entry
 * (`{'tot_inst_num': N, 'proposal_folders': [...]}`). Output, as the original names it:
 * `<pred-score without .npz>_th_iou_<th_iou>_pos_<th_pos>_pred_label.txt` with Python float formatting
 * (`_th_iou_1.0_pos_-1.0_pred_label.txt`). With `--gt-labels` the metrics are printed and kept in the sidecar.
 *
 * The code behind it: `cluster/deoverlap.ts`.
 * @module
 */
import { ensureWritable, Timings, writeSidecar } from "../shared/artifact.ts";
import { CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { deoverlapFolders, deoverlapOutputName, readPredScores } from "../cluster/deoverlap.ts";
import { countClusters, evaluateAll, formatMetrics } from "../cluster/metrics.ts";

const spec: CliSpec = {
  name: "deoverlap",
  summary: "De-overlap scored proposals into a partition (the original's post_process/deoverlap.py).",
  options: {
    "pred-score": { type: "string", required: true, help: "scores .npz (key data), e.g. a detect output" },
    "th-pos": { type: "number", default: -1, help: "keep proposals with score ≥ th_pos" },
    "th-iou": { type: "number", default: 1, help: "NMS IoU threshold (≥ 1: no NMS)" },
    "proposal-folders": { type: "string", multiple: true, help: "proposal folders (default: from the score file)" },
    n: { type: "int", help: "number of instances (default: from the score file)" },
    output: { type: "string", help: "output label file (default: the original's name beside the scores)" },
    "gt-labels": { type: "string", help: "ground truth: print metrics" },
  },
};

function main(args: CliArgs): void {
  const timings = new Timings();
  const predScore = args.reqStr("pred-score");
  const pred = readPredScores(predScore);
  const folders = args.given("proposal-folders") ? args.strs("proposal-folders") : pred.proposalFolders;
  if (!folders) {
    throw new LtcError(`${predScore}: names no proposal folders (no sidecar or meta); pass --proposal-folders`);
  }
  const n = args.optNum("n") ?? pred.totInstNum;
  if (n === undefined) throw new LtcError(`${predScore}: gives no instance count (tot_inst_num); pass --n`);
  // The ground truth is read and checked first: a bad one must not leave a label file behind.
  const gtPath = args.str("gt-labels");
  const gt = gtPath ? readLabels(gtPath) : undefined;
  if (gt && gt.length !== n) {
    const from = args.given("n") ? "--n" : `the tot_inst_num of ${predScore}`;
    throw new LtcError(`${gtPath}: has ${gt.length} labels, but there are ${n} instances (${from})`);
  }
  const thPos = args.num("th-pos"), thIou = args.num("th-iou");
  const labels = timings.step("deoverlap", () => deoverlapFolders(pred.scores, folders, { n, thPos, thIou }));
  const out = args.str("output") ?? deoverlapOutputName(predScore, thIou, thPos);
  ensureWritable(out);
  writeLabels(out, labels);
  const metrics = gt ? evaluateAll(gt, labels) : undefined;
  writeSidecar(out, {
    stage: "deoverlap",
    params: { th_pos: thPos, th_iou: thIou, proposal_folders: folders, n },
    inputs: gtPath ? [predScore, gtPath] : [predScore],
    timings,
    extra: { clusters: countClusters(labels), ...(metrics ? { metrics } : {}) },
  });
  console.log(`${pred.scores.length} proposals → ${countClusters(labels)} clusters, written to ${out}`);
  if (metrics) console.log(formatMetrics(metrics));
}

if (import.meta.main) {
  await runMain(() => main(parseCli(spec, Deno.args)));
}
