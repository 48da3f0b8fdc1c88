/**
 * De-overlap (reference §6): rank clusters by score, optionally suppress by IoU (NMS), and give every node the label
 * of the highest-ranked cluster containing it; nodes in no cluster become singletons (`write_meta` semantics).
 * Shared by `deoverlap`, `detect` and `upper-bound`.
 * @module
 */
import { LtcError } from "./errors.ts";
import { relabelLikeWriteMeta } from "./meta.ts";

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
