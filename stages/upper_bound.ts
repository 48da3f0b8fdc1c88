/**
 * Stage `upper-bound`: the GCN-D upper bound (reference §8) — de-overlap with the exact ground-truth IoU of each
 * candidate cluster as its score, i.e. what the pipeline would give if GCN-D were perfect.
 *
 *     deno task upper-bound --cluster-path A/pred_labels.txt --cluster-path B/proposals --gt-labels labels/x.meta
 *         [--th-pos -1] [--th-iou 1] [--output-folder data/results/gcn_ub] [--output-name ub]
 *
 * Candidates, per `--cluster-path`, in the order given:
 * - a `.txt` partition: every label group (singletons included), groups in order of first appearance;
 * - a `.npz` list of clusters (key `data`: an object array of index arrays, as the original's `--cluster_path`);
 * - a proposal folder (`…/proposals` or the parameter folder holding it): every `<i>_node.npz`, in the original's
 *   file order. The fixtures' upper bounds were computed on proposal folders.
 * Each candidate's score is its IoU with the ground-truth class of its majority label (ties: the label met first);
 * candidates with IoU > th_pos are ranked by IoU (stable), NMS'd when th_iou < 1, and each node takes the label of
 * the best candidate containing it; uncovered nodes become singletons. Output:
 * `<output-folder>/<output-name>_th_iou_<th_iou>_pos_<th_pos>_pred_labels.txt` — the thresholds print as the
 * original does: `1` / `-1` when left at their (int) defaults, Python floats (`0.5`, `1.0`) when given. The metrics
 * are printed and stored in the sidecar.
 *
 * The code behind it: `cluster/upper_bound.ts`.
 * @module
 */
import { join } from "node:path";
import { ensureWritable, isDir, Timings, writeSidecar } from "../shared/artifact.ts";
import { CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { pyFloatStr } from "../shared/py_format.ts";
import { countClusters, formatMetrics } from "../cluster/metrics.ts";
import { readCandidateClusters, upperBound } from "../cluster/upper_bound.ts";

const spec: CliSpec = {
  name: "upper-bound",
  summary: "GCN-D upper bound: de-overlap candidate clusters ranked by their ground-truth IoU.",
  options: {
    "cluster-path": {
      type: "string",
      multiple: true,
      required: true,
      help: "partition .txt, cluster-list .npz or proposal folder (repeatable)",
    },
    "gt-labels": { type: "string", required: true, help: "ground-truth .meta" },
    "th-pos": { type: "number", default: -1, help: "keep candidates with IoU > th_pos" },
    "th-iou": { type: "number", default: 1, help: "NMS IoU threshold (≥ 1: no NMS)" },
    "output-folder": { type: "string", default: "./data/results/gcn_ub/", help: "output folder" },
    "output-name": { type: "string", default: "ub", help: "output file prefix" },
  },
};

function main(args: CliArgs): void {
  const timings = new Timings();
  const paths = args.strs("cluster-path");
  const gtPath = args.reqStr("gt-labels");
  const gt = readLabels(gtPath);
  const clusters = timings.step("read", () => readCandidateClusters(paths));
  // A candidate node past the ground truth means the two files describe different datasets: say which file.
  let maxNode = -1;
  for (const c of clusters) for (const v of c) if (v > maxNode) maxNode = v;
  if (maxNode >= gt.length) {
    throw new LtcError(`${gtPath}: has ${gt.length} labels, but the candidates hold node ${maxNode}`);
  }
  const thPos = args.num("th-pos"), thIou = args.num("th-iou");
  const res = timings.step("upper_bound", () => upperBound(clusters, gt, { thPos, thIou }));
  const fmt = (name: string, v: number) => args.given(name) ? pyFloatStr(v) : String(v);
  const out = join(
    args.reqStr("output-folder"),
    `${args.str("output-name")}_th_iou_${fmt("th-iou", thIou)}_pos_${fmt("th-pos", thPos)}_pred_labels.txt`,
  );
  ensureWritable(out);
  writeLabels(out, res.labels);
  const inputs = [gtPath, ...paths.filter((p) => !isDir(p.replaceAll("\\", "")))];
  writeSidecar(out, {
    stage: "upper-bound",
    params: { cluster_path: paths, th_pos: thPos, th_iou: thIou },
    inputs,
    timings,
    extra: { metrics: res.metrics, n_candidates: clusters.length, clusters: countClusters(res.labels) },
  });
  console.log(`${clusters.length} candidates → ${countClusters(res.labels)} clusters, written to ${out}`);
  console.log(formatMetrics(res.metrics));
}

if (import.meta.main) {
  await runMain(() => main(parseCli(spec, Deno.args)));
}
