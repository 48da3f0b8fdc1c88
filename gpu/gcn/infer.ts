/**
 * Scoring proposal folders with a GCN-D engine: read every node file, compute the shared first-layer table for the
 * union of their nodes once (the CPU twin: once per chunk, see {@linkcode localityOrder}), then stream the edge files
 * in chunks of packed proposals, queued in runs of chunks whose scores are read once per run (after the next run was
 * queued, so edge files are read while the device scores).
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import type { Features } from "../../shared/features.ts";
import { Progress } from "../../shared/progress.ts";
import { type ProposalFiles, readProposalEdges, readProposalNodes } from "../../shared/proposal_io.ts";
import type { GcnEngine, Pending } from "./engine.ts";
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

/**
 * An order of the proposals in which overlapping ones are adjacent (breadth-first over the "shares a node" graph,
 * starting from each unvisited proposal in file order), so that a chunk's proposals share many nodes and the
 * first-layer product of a shared node is computed once per chunk.
 */
export function localityOrder(nodes: Int32Array[], n: number): Int32Array {
  const start = new Int32Array(n + 1);
  for (const list of nodes) for (const v of list) start[v + 1]!++;
  for (let v = 0; v < n; v++) start[v + 1]! += start[v]!;
  const fill = start.slice(0, n);
  const owners = new Int32Array(start[n]!);
  nodes.forEach((list, p) => {
    for (const v of list) owners[fill[v]!++] = p;
  });
  const seen = new Uint8Array(nodes.length);
  const order = new Int32Array(nodes.length);
  let head = 0, tail = 0;
  for (let p0 = 0; p0 < nodes.length; p0++) {
    if (seen[p0]) continue;
    seen[p0] = 1;
    order[tail++] = p0;
    while (head < tail) {
      const p = order[head++]!;
      for (const v of nodes[p]!) {
        for (let k = start[v]!; k < start[v + 1]!; k++) {
          const q = owners[k]!;
          if (!seen[q]) seen[q] = 1, order[tail++] = q;
        }
      }
    }
  }
  return order;
}

/** Options of {@linkcode scoreProposals}. */
export interface ScoreOptions {
  woWeight?: boolean;
  normAdj?: boolean;
  /** packed node rows per chunk (one dispatch chain; default 32768) */
  chunkRows?: number;
  /** packed node rows per queued run of chunks, read back once (default 524288) */
  runRows?: number;
  /** show a progress bar with this label */
  progressLabel?: string;
}

/**
 * The eval-mode prediction of every proposal, in file order. `nodes[i]` are the nodes of `files[i]` (from
 * {@linkcode readAllNodes}).
 */
export function scoreProposals(
  engine: GcnEngine,
  features: Features,
  files: ProposalFiles[],
  nodes: Int32Array[],
  options: ScoreOptions = {},
): Promise<Float32Array> {
  const index = new LocalIndex(features.n);
  const graphOf = (p: number) =>
    buildProposalGraph(nodes[p]!, readProposalEdges(files[p]!.edge), index, {
      woWeight: options.woWeight,
      normAdj: options.normAdj,
      path: files[p]!.edge,
    });
  return scoreGraphs(engine, features, nodes, graphOf, options);
}

/**
 * The eval-mode prediction of every proposal given by its nodes and a builder of its graph (called once per
 * proposal, in the order chunks are filled), in proposal order.
 */
export async function scoreGraphs(
  engine: GcnEngine,
  features: Features,
  nodes: Int32Array[],
  graphOf: (proposal: number) => ProposalGraph,
  options: Pick<ScoreOptions, "chunkRows" | "runRows" | "progressLabel"> = {},
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

  const scores = new Float32Array(nodes.length);
  const chunkRows = options.chunkRows ?? 32768;
  const runRows = Math.max(chunkRows, options.runRows ?? 1 << 19);
  const progress = options.progressLabel ? new Progress(options.progressLabel, nodes.length) : null;
  const source = (v: number) => tableRow[v]!;
  const order = localityOrder(nodes, n);
  /** Build and queue the chunks of one run from `start` in `order`; returns the run's end and its pending scores. */
  const queueRun = (start: number) => {
    const chunks: PackedBatch[] = [];
    let end = start, runPacked = 0;
    while (end < order.length && runPacked < runRows) {
      const graphs: ProposalGraph[] = [];
      let packed = 0;
      while (end < order.length && (graphs.length === 0 || packed + nodes[order[end]!]!.length <= chunkRows)) {
        const p = order[end]!;
        graphs.push(graphOf(p));
        packed += nodes[p]!.length;
        end++;
      }
      chunks.push(packGraphs(graphs, { source }));
      runPacked += packed;
    }
    return { start, end, pending: engine.queuePredict(chunks) };
  };
  let run: { start: number; end: number; pending: Promise<Pending<Float32Array[]>> } | null = order.length
    ? queueRun(0)
    : null;
  while (run) {
    const pending = await run.pending;
    const next = run.end < order.length ? queueRun(run.end) : null;
    let i = run.start;
    for (const result of await pending.read()) for (const score of result) scores[order[i++]!] = score;
    progress?.tick(run.end - run.start);
    run = next;
  }
  progress?.done();
  return scores;
}
