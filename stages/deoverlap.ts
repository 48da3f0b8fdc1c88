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
 * @module
 */
import { Timings, writeSidecar } from "../shared/artifact.ts";
import { type CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { deoverlap } from "../shared/deoverlap.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { countClusters, evaluateAll, formatMetrics } from "../shared/metrics.ts";
import { toNumbers } from "../shared/ndarray.ts";
import { NpzFile } from "../shared/npy.ts";
import { listProposalFiles, readProposalNodes } from "../shared/proposal_io.ts";
import { pyFloatStr } from "./proposals.ts";

/** Scores of a prediction file and what it says about its proposals. */
export interface PredScores {
  scores: Float64Array;
  proposalFolders?: string[];
  totInstNum?: number;
}

function fromMeta(value: unknown, path: string): { folders?: string[]; n?: number } {
  const get = (key: string): unknown => {
    if (value instanceof Map) return value.get(key);
    if (value && typeof value === "object") return (value as Record<string, unknown>)[key];
    return undefined;
  };
  const folders = get("proposal_folders");
  const n = get("tot_inst_num");
  const out: { folders?: string[]; n?: number } = {};
  if (folders !== undefined) {
    if (!Array.isArray(folders) || folders.some((f) => typeof f !== "string")) {
      throw new LtcError(`${path}: proposal_folders is not a list of paths (a pickled callable cannot be read)`);
    }
    out.folders = folders as string[];
  }
  if (n !== undefined) {
    const v = typeof n === "bigint" ? Number(n) : n;
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new LtcError(`${path}: bad tot_inst_num ${n}`);
    out.n = v;
  }
  return out;
}

/** Read a detection output: `data` scores plus proposal folders / instance count from its sidecar or `meta`. */
export function readPredScores(path: string): PredScores {
  const npz = new NpzFile(path);
  const data = npz.get("data");
  if (data.dtype === "O") throw new LtcError(`${path}: 'data' is an object array (segmentation output?), not scores`);
  if (data.shape.length !== 1) throw new LtcError(`${path}: 'data' must be 1-D scores, got (${data.shape.join(", ")})`);
  const scores = toNumbers(data);
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i]!)) throw new LtcError(`${path}: score of proposal ${i} is NaN`);
  }
  const out: PredScores = { scores };
  let side: { folders?: string[]; n?: number } = {};
  try {
    const json = JSON.parse(Deno.readTextFileSync(`${path}.meta.json`));
    side = fromMeta({ ...(json.extra ?? {}), ...json }, `${path}.meta.json`);
  } catch (err) {
    if (err instanceof LtcError) throw err;
  }
  let meta: { folders?: string[]; n?: number } = {};
  if (npz.has("meta")) {
    const m = npz.get("meta");
    const value = m.dtype === "O" && m.shape.length === 0 ? (m.data as unknown[])[0] : undefined;
    if (value === undefined) throw new LtcError(`${path}: 'meta' is not a pickled dict`);
    meta = fromMeta(value, `${path}:meta`);
  }
  out.proposalFolders = side.folders ?? meta.folders;
  out.totInstNum = side.n ?? meta.n;
  return out;
}

/** The original's output name for a de-overlap run. */
export function deoverlapOutputName(predScore: string, thIou: number, thPos: number): string {
  const stem = predScore.endsWith(".npz") ? predScore.slice(0, -4) : predScore;
  return `${stem}_th_iou_${pyFloatStr(thIou)}_pos_${pyFloatStr(thPos)}_pred_label.txt`;
}

/** De-overlap the proposals of `folders` (original file order) with `scores`; returns the `write_meta` labels. */
export function deoverlapFolders(
  scores: ArrayLike<number>,
  folders: string[],
  options: { n: number; thPos?: number; thIou?: number },
): Int32Array {
  if (folders.length === 0) throw new LtcError("deoverlap: no proposal folders");
  const files = listProposalFiles(folders);
  if (files.length !== scores.length) {
    throw new LtcError(
      `deoverlap: ${scores.length} scores but ${files.length} proposals in ${folders.join(", ")} — the scores must ` +
        `come from exactly these folders`,
    );
  }
  const clusters = files.map((f) => readProposalNodes(f.node));
  return deoverlap(scores, clusters, options.n, { thPos: options.thPos ?? -1, thIou: options.thIou ?? 1 });
}

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
  const thPos = args.num("th-pos"), thIou = args.num("th-iou");
  const labels = timings.step("deoverlap", () => deoverlapFolders(pred.scores, folders, { n, thPos, thIou }));
  const out = args.str("output") ?? deoverlapOutputName(predScore, thIou, thPos);
  writeLabels(out, labels);
  let metrics;
  const gtPath = args.str("gt-labels");
  if (gtPath) metrics = evaluateAll(readLabels(gtPath), labels);
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
