/**
 * Plain TypeScript exact kNN and similarity pairs: the last-resort CPU path (when neither onnxruntime build loads)
 * and the brute-force reference the tests compare the fast backends with. Blocked so the N×N similarity matrix is
 * never held; each dot product is accumulated in float64 and rounded to float32.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import { backendLabel } from "../device.ts";
import type { ExactBackendEntry } from "./backend.ts";
import { PairBuilder, type PairList } from "./pairs.ts";
import { RowTopK } from "./topk.ts";

const QUERY_BLOCK = 32;
const BASE_BLOCK = 512;

/**
 * The float64 dot product of `a[ao .. ao + dim)` and `b[bo .. bo + dim)`, summed in four interleaved partial sums
 * combined as `(s0 + s1) + (s2 + s3)` (the tail goes into s0). Every scalar path that must agree bit for bit with
 * another (kNN reference, k-means decisions) uses this one order.
 */
export function dotAt(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let t = 0;
  for (; t + 3 < dim; t += 4) {
    s0 += a[ao + t]! * b[bo + t]!;
    s1 += a[ao + t + 1]! * b[bo + t + 1]!;
    s2 += a[ao + t + 2]! * b[bo + t + 2]!;
    s3 += a[ao + t + 3]! * b[bo + t + 3]!;
  }
  for (; t < dim; t++) s0 += a[ao + t]! * b[bo + t]!;
  return (s0 + s1) + (s2 + s3);
}

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
      out[oo + c - c0] = dotAt(qd, qo, bd, c * d, d);
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

/** The registry entry: this module's loops, which run anywhere (the last CPU choice). */
export const typescriptBackend: ExactBackendEntry = {
  name: "typescript",
  device: "cpu",
  open: () =>
    Promise.resolve({
      label: backendLabel({ kind: "cpu" }, "typescript"),
      knn: ({ base, queries, k, onProgress }) => {
        let rows = 0;
        return Promise.resolve(knnJs(base, queries, k, (n) => onProgress?.((rows += n) / queries.n)));
      },
      pairs: (features, { minSim }) => Promise.resolve(pairsJs(features, minSim)),
    }),
};
