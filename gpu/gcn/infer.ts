/**
 * Scoring proposal folders with a GCN-D engine: read every node file, compute the shared first-layer table for the
 * union of their nodes once, then stream the edge files in chunks of packed proposals (the next chunk is read and
 * built while the engine works on the current one).
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { Progress } from "../../shared/progress.ts";
import { type ProposalFiles, readProposalEdges, readProposalNodes } from "../../shared/proposal_io.ts";
import type { GcnEngine } from "./engine.ts";
import { buildProposalGraph, LocalIndex, type PackedBatch, packGraphs, type ProposalGraph } from "./graph.ts";

/** Read the node file of every proposal (the original asserts each has more than one node). */
export function readAllNodes(files: ProposalFiles[], n: number): Int32Array[] {
  return files.map((f) => {
    const nodes = readProposalNodes(f.node);
    if (nodes.length < 2) {
      throw new LtcError(`${f.node}: a proposal needs at least 2 nodes, this one has ${nodes.length}`);
    }
    for (const v of nodes) {
      if (v >= n) throw new LtcError(`${f.node}: node ${v} is outside the ${n} feature rows`);
    }
    return nodes;
  });
}

/** Options of {@linkcode scoreProposals}. */
export interface ScoreOptions {
  woWeight?: boolean;
  normAdj?: boolean;
  /** packed node rows per engine call (default 32768) */
  chunkRows?: number;
  /** show a progress bar with this label */
  progressLabel?: string;
}

/**
 * The eval-mode prediction of every proposal, in file order. `nodes[i]` are the nodes of `files[i]` (from
 * {@linkcode readAllNodes}).
 */
export async function scoreProposals(
  engine: GcnEngine,
  features: Features,
  files: ProposalFiles[],
  nodes: Int32Array[],
  options: ScoreOptions = {},
): Promise<Float32Array> {
  const n = features.n;
  // Distinct nodes, in id order, and each one's row in the first-layer table.
  const tableRow = new Int32Array(n).fill(-1);
  for (const list of nodes) for (const v of list) tableRow[v] = 0;
  let distinct = 0;
  for (let v = 0; v < n; v++) if (tableRow[v] === 0) tableRow[v] = distinct++;
  const rows = new Int32Array(distinct);
  for (let v = 0; v < n; v++) if (tableRow[v]! >= 0) rows[tableRow[v]!] = v;
  await engine.setFirstLayerRows(features.data, rows);

  const scores = new Float32Array(files.length);
  const index = new LocalIndex(n);
  const chunkRows = options.chunkRows ?? 32768;
  const progress = options.progressLabel ? new Progress(options.progressLabel, files.length) : null;
  const source = (v: number) => tableRow[v]!;
  let inflight: { start: number; count: number; result: Promise<Float32Array> } | null = null;
  const settle = async () => {
    if (!inflight) return;
    scores.set(await inflight.result, inflight.start);
    progress?.tick(inflight.count);
    inflight = null;
  };
  for (let start = 0; start < files.length;) {
    const graphs: ProposalGraph[] = [];
    let packed = 0;
    let end = start;
    while (end < files.length && (graphs.length === 0 || packed + nodes[end]!.length <= chunkRows)) {
      const f = files[end]!;
      graphs.push(
        buildProposalGraph(nodes[end]!, readProposalEdges(f.edge), index, {
          woWeight: options.woWeight,
          normAdj: options.normAdj,
          path: f.edge,
        }),
      );
      packed += nodes[end]!.length;
      end++;
    }
    const batch: PackedBatch = packGraphs(graphs, { source });
    await settle();
    inflight = { start, count: end - start, result: engine.predict(batch) };
    start = end;
  }
  await settle();
  progress?.done();
  return scores;
}
