/**
 * Proposal folders as the original writes them (reference §1.6): node order from CPython's set iteration, the
 * edge rows of `save_proposals`, the `<i>_node.npz` / `<i>_edge.npz` files, and size filtering.
 * @module
 */
import { writeFolderAtomic } from "../../shared/artifact.ts";
import { LtcError } from "../../shared/errors.ts";
import type { KnnGraph } from "../../shared/knn_file.ts";
import { Progress } from "../../shared/progress.ts";
import { type ProposalEdges, writeProposal } from "../../shared/proposal_io.ts";
import type { ClusterMembers } from "../graph.ts";

/**
 * Iteration order of CPython's `set` built by adding `keys` (non-negative ints, hash = value) one by one — what
 * the original's `list(set(nodes))` yields: open addressing with 9 linear probes then perturbed probing, and a
 * resize to the smallest power of two above 4·used once the table is 60 % full. Matches CPython 3.7–3.12.
 */
export function pySetOrder(keys: ArrayLike<number>): Int32Array {
  let mask = 7;
  let table = new Int32Array(8).fill(-1);
  let fill = 0;
  const insertClean = (tab: Int32Array, m: number, key: number) => {
    let i = key & m, perturb = key;
    for (;;) {
      if (tab[i] === -1) return void (tab[i] = key);
      if (i + 9 <= m) {
        for (let j = 1; j <= 9; j++) if (tab[i + j] === -1) return void (tab[i + j] = key);
      }
      perturb = Math.floor(perturb / 32);
      i = (i * 5 + 1 + perturb) & m;
    }
  };
  for (let t = 0; t < keys.length; t++) {
    const key = keys[t]!;
    let i = key & mask, perturb = key;
    let placed = false, present = false;
    while (!placed && !present) {
      const probes = i + 9 <= mask ? 9 : 0;
      for (let j = i; j <= i + probes; j++) {
        if (table[j] === -1) {
          table[j] = key;
          placed = true;
          break;
        }
        if (table[j] === key) {
          present = true;
          break;
        }
      }
      perturb = Math.floor(perturb / 32);
      i = (i * 5 + 1 + perturb) & mask;
    }
    if (present) continue;
    fill++;
    if (fill * 5 < mask * 3) continue;
    const minUsed = fill > 50000 ? fill * 2 : fill * 4;
    let size = 8;
    while (size <= minUsed) size *= 2;
    const old = table;
    table = new Int32Array(size).fill(-1);
    mask = size - 1;
    for (let j = 0; j < old.length; j++) if (old[j] !== -1) insertClean(table, mask, old[j]!);
  }
  const out = new Int32Array(fill);
  let p = 0;
  for (let j = 0; j < table.length; j++) if (table[j] !== -1) out[p++] = table[j]!;
  return out;
}

/**
 * The edge rows of a proposal as the original's `save_proposals` writes them from a dense (float64) kNN file
 * (reference §1.6): for each node in `nodes` order and each of its kNN neighbours in stored order that is another
 * member, a row `[min, max, dist]`. The original's de-duplication key mixes an int and a float (`"3545-4193.0"` from
 * one row, `"3545.0-4193"` from the other), so a pair met from both rows appears twice; only a neighbour repeated
 * within one row is dropped. `mark` is scratch of length N filled with −1 (restored on return).
 */
export function proposalEdges(nodes: ArrayLike<number>, knn: KnnGraph, mark: Int32Array): ProposalEdges {
  const s = nodes.length;
  const { k, nbrs, dists } = knn;
  for (let t = 0; t < s; t++) mark[nodes[t]!] = -2;
  let e = 0;
  let e1 = new Int32Array(Math.min(s * k, 1 << 16)), e2 = new Int32Array(e1.length);
  let dist = new Float64Array(e1.length);
  for (let t = 0; t < s; t++) {
    const u = nodes[t]!;
    const row = u * k;
    for (let c = 0; c < k; c++) {
      const v = nbrs[row + c]!;
      // mark[v]: −1 not a member, −2 member not yet met in this row, u: already met in this row.
      if (v < 0 || v === u || mark[v] === -1 || mark[v] === u) continue;
      mark[v] = u;
      if (e === e1.length) {
        const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
          const b = make(a.length * 2);
          b.set(a as never);
          return b;
        };
        e1 = grow(e1, (n) => new Int32Array(n));
        e2 = grow(e2, (n) => new Int32Array(n));
        dist = grow(dist, (n) => new Float64Array(n));
      }
      e1[e] = u < v ? u : v;
      e2[e] = u < v ? v : u;
      dist[e] = dists[row + c]!;
      e++;
    }
    // Back to "member, not met" for the next row.
    for (let c = 0; c < k; c++) {
      const v = nbrs[row + c]!;
      if (v >= 0 && mark[v] === u) mark[v] = -2;
    }
  }
  for (let t = 0; t < s; t++) mark[nodes[t]!] = -1;
  return { e1: e1.slice(0, e), e2: e2.slice(0, e), dist: dist.slice(0, e) };
}

/**
 * Write clusters as `<folder>/<i>_node.npz` / `<i>_edge.npz`, i = 0, 1, … in the given order, replacing whatever the
 * folder held (atomically: see `writeFolderAtomic`). Each cluster's members are given in the order the original builds its node list from;
 * they are written in the order of `list(set(members))` ({@linkcode pySetOrder}). Returns the number written.
 */
export function writeProposalFolder(folder: string, clusters: ClusterMembers, knn: KnnGraph): number {
  const count = clusters.offsets.length - 1;
  for (let c = 0; c < count; c++) {
    for (let t = clusters.offsets[c]!; t < clusters.offsets[c + 1]!; t++) {
      const node = clusters.members[t]!;
      if (node >= knn.n) throw new LtcError(`proposal ${c} holds node ${node}, but the kNN graph has ${knn.n} rows`);
    }
  }
  // Written into a temp folder that replaces `folder` only when complete: a killed run never leaves a folder that
  // holds some of the proposals.
  return writeFolderAtomic(folder, (tmp) => {
    const pos = new Int32Array(knn.n).fill(-1);
    const progress = new Progress("proposals", count);
    for (let c = 0; c < count; c++) {
      const nodes = pySetOrder(clusters.members.subarray(clusters.offsets[c]!, clusters.offsets[c + 1]!));
      writeProposal(tmp, c, nodes, proposalEdges(nodes, knn, pos), { level: 1 });
      progress.tick();
    }
    progress.done();
    return count;
  });
}

/** Keep the clusters whose size lies in [minsz, maxsz] (the original's `filter_clusters`), in order. */
export function filterClusters(clusters: ClusterMembers, minsz: number, maxsz = Infinity): ClusterMembers {
  const keep: number[] = [];
  for (let c = 0; c + 1 < clusters.offsets.length; c++) {
    const sz = clusters.offsets[c + 1]! - clusters.offsets[c]!;
    if (sz >= minsz && sz <= maxsz) keep.push(c);
  }
  const offsets = new Int32Array(keep.length + 1);
  keep.forEach((c, t) => offsets[t + 1] = offsets[t]! + clusters.offsets[c + 1]! - clusters.offsets[c]!);
  const members = new Int32Array(offsets[keep.length]!);
  keep.forEach((c, t) =>
    members.set(clusters.members.subarray(clusters.offsets[c]!, clusters.offsets[c + 1]!), offsets[t]!)
  );
  return { offsets, members };
}
