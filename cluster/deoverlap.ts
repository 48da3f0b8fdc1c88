/**
 * De-overlap (reference §6): rank clusters by score, optionally suppress by IoU (NMS), and give every node the label
 * of the highest-ranked cluster containing it; nodes in no cluster become singletons (`write_meta` semantics).
 * Shared by `deoverlap`, `detect` and `upper-bound`.
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import { relabelLikeWriteMeta } from "../shared/meta.ts";
import { toNumbers } from "../shared/ndarray.ts";
import { NpzFile } from "../shared/npy.ts";
import { listProposalFiles, readProposalNodes } from "../shared/proposal_io.ts";
import { pyFloatStr } from "../shared/py_format.ts";

/** Options of {@linkcode deoverlap}. */
export interface DeoverlapOptions {
  /** keep clusters with score ≥ thPos (default −1: all) */
  thPos?: number;
  /** NMS IoU threshold; ≥ 1 disables suppression (default 1) */
  thIou?: number;
  /** compare with `>` instead of `≥` against thPos (the upper bound uses `iou > th_pos`) */
  strictPos?: boolean;
}

/** Stable ranking of cluster indices by descending score, keeping those passing the threshold. */
export function rankByScore(scores: ArrayLike<number>, thPos: number, strict = false): number[] {
  const order: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (Number.isNaN(s)) throw new LtcError(`score of proposal ${i} is NaN`);
    if (strict ? s > thPos : s >= thPos) order.push(i);
  }
  // Array.prototype.sort is stable: ties keep proposal order, as Python's sorted() does.
  return order.sort((a, b) => scores[b]! - scores[a]!);
}

/**
 * Greedy NMS over clusters in rank order: each kept cluster suppresses every later one with IoU > thIou.
 * Returns the kept clusters, in order. thIou ≥ 1 keeps everything (the original skips NMS then).
 */
export function nms(clusters: ArrayLike<number>[], thIou: number): ArrayLike<number>[] {
  if (thIou >= 1) return clusters;
  const owners = new Map<number, number[]>();
  clusters.forEach((c, ci) => {
    for (let t = 0; t < c.length; t++) {
      const list = owners.get(c[t]!);
      if (list) list.push(ci);
      else owners.set(c[t]!, [ci]);
    }
  });
  const suppressed = new Uint8Array(clusters.length);
  const kept: ArrayLike<number>[] = [];
  for (let i = 0; i < clusters.length; i++) {
    if (suppressed[i]) continue;
    const ci = clusters[i]!;
    kept.push(ci);
    const inter = new Map<number, number>();
    for (let t = 0; t < ci.length; t++) {
      for (const j of owners.get(ci[t]!)!) if (j > i) inter.set(j, (inter.get(j) ?? 0) + 1);
    }
    for (const [j, common] of inter) {
      const iou = common / (ci.length + clusters[j]!.length - common);
      if (iou > thIou) suppressed[j] = 1;
    }
  }
  return kept;
}

/** Label assignment after ranking: the first (best) kept cluster containing a node gives its label. */
export function assignFirst(clusters: ArrayLike<number>[], n: number): Int32Array {
  const idx2lb = new Map<number, number>();
  clusters.forEach((c, lb) => {
    for (let t = 0; t < c.length; t++) if (!idx2lb.has(c[t]!)) idx2lb.set(c[t]!, lb);
  });
  return relabelLikeWriteMeta(idx2lb, n);
}

/**
 * The original `deoverlap(scores, proposals, tot_inst_num, th_pos, th_iou)`: returns the `write_meta` labels of
 * all `n` nodes. `clusters[i]` holds proposal i's node indices; `scores[i]` its predicted IoU.
 */
export function deoverlap(
  scores: ArrayLike<number>,
  clusters: ArrayLike<number>[],
  n: number,
  options: DeoverlapOptions = {},
): Int32Array {
  if (scores.length !== clusters.length) {
    throw new LtcError(`${scores.length} scores for ${clusters.length} proposals: they must match one to one`);
  }
  const order = rankByScore(scores, options.thPos ?? -1, options.strictPos);
  const ranked = order.map((i) => clusters[i]!);
  for (const c of ranked) {
    for (let t = 0; t < c.length; t++) {
      if (c[t]! >= n) throw new LtcError(`proposal holds node ${c[t]}, but there are only ${n} instances`);
    }
  }
  return assignFirst(nms(ranked, options.thIou ?? 1), n);
}

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
