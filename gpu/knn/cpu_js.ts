/**
 * Plain TypeScript exact kNN and similarity pairs: the last-resort CPU path (when neither onnxruntime build loads)
 * and the brute-force reference the tests compare the fast backends with. Blocked so the N×N similarity matrix is
 * never held; each dot product is accumulated in float64 and rounded to float32.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import { RowTopK } from "./topk.ts";
import type { PairList } from "./pairs.ts";
import { PairBuilder } from "./pairs.ts";

const QUERY_BLOCK = 32;
const BASE_BLOCK = 512;

/** Similarities of query rows [q0, q1) × base rows [c0, c1) into `out` (row-major, width c1 − c0). */
export function simBlock(
  queries: Features,
  base: Features,
  range: { q0: number; q1: number; c0: number; c1: number },
  out: Float32Array,
): void {
  const { q0, q1, c0, c1 } = range;
  const d = base.dim;
  const qd = queries.data, bd = base.data;
  const w = c1 - c0;
  for (let q = q0; q < q1; q++) {
    const qo = q * d;
    const oo = (q - q0) * w;
    for (let c = c0; c < c1; c++) {
      const co = c * d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let t = 0;
      for (; t + 3 < d; t += 4) {
        s0 += qd[qo + t]! * bd[co + t]!;
        s1 += qd[qo + t + 1]! * bd[co + t + 1]!;
        s2 += qd[qo + t + 2]! * bd[co + t + 2]!;
        s3 += qd[qo + t + 3]! * bd[co + t + 3]!;
      }
      for (; t < d; t++) s0 += qd[qo + t]! * bd[co + t]!;
      out[oo + c - c0] = (s0 + s1) + (s2 + s3);
    }
  }
}

/** Exact top-k by inner product of every query row against every base row, in TypeScript. */
export function knnJs(
  base: Features,
  queries: Features,
  k: number,
  onRows?: (done: number) => void,
): { nbrs: Int32Array; dists: Float32Array } {
  const nq = queries.n;
  const nbrs = new Int32Array(nq * k);
  const dists = new Float32Array(nq * k);
  const block = new Float32Array(QUERY_BLOCK * BASE_BLOCK);
  for (let q0 = 0; q0 < nq; q0 += QUERY_BLOCK) {
    const q1 = Math.min(nq, q0 + QUERY_BLOCK);
    const top = new RowTopK(q1 - q0, k);
    for (let c0 = 0; c0 < base.n; c0 += BASE_BLOCK) {
      const c1 = Math.min(base.n, c0 + BASE_BLOCK);
      simBlock(queries, base, { q0, q1, c0, c1 }, block);
      const w = c1 - c0;
      for (let r = 0; r < q1 - q0; r++) top.offerBlock(r, block, r * w, w, c0);
    }
    top.finishInto(nbrs, dists, q0);
    onRows?.(q1 - q0);
  }
  return { nbrs, dists };
}

/** Every pair i < j with inner product ≥ minSim, in TypeScript (ascending i, then j). */
export function pairsJs(features: Features, minSim: number): PairList {
  const n = features.n;
  const out = new PairBuilder();
  const block = new Float32Array(QUERY_BLOCK * BASE_BLOCK);
  for (let q0 = 0; q0 < n; q0 += QUERY_BLOCK) {
    const q1 = Math.min(n, q0 + QUERY_BLOCK);
    // rows of this block, each scanning base columns > itself in ascending order
    const rowsPairs: { j: number[]; s: number[] }[] = [];
    for (let r = q0; r < q1; r++) rowsPairs.push({ j: [], s: [] });
    for (let c0 = q0; c0 < n; c0 += BASE_BLOCK) {
      const c1 = Math.min(n, c0 + BASE_BLOCK);
      const w = c1 - c0;
      simBlock(features, features, { q0, q1, c0, c1 }, block);
      for (let r = q0; r < q1; r++) {
        const acc = rowsPairs[r - q0]!;
        for (let c = Math.max(c0, r + 1); c < c1; c++) {
          const s = block[(r - q0) * w + c - c0]!;
          if (s >= minSim) {
            acc.j.push(c);
            acc.s.push(s);
          }
        }
      }
    }
    for (let r = q0; r < q1; r++) {
      const acc = rowsPairs[r - q0]!;
      for (let t = 0; t < acc.j.length; t++) out.push(r, acc.j[t]!, acc.s[t]!);
    }
  }
  return out.finish();
}
