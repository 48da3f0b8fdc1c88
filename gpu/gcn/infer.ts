/**
 * Scoring proposal folders with a GCN-D engine: read every node file, compute the shared first-layer table for the
 * union of their nodes once (the CPU twin: once per chunk, see {@linkcode localityOrder}), then stream the edge files
 * in chunks of packed proposals, queued in runs of chunks whose scores are read once per run (after the next run was
 * queued, so edge files are read while the device scores). The chunks are fixed by a {@linkcode ScorePlan} of the
 * whole list, so a sharded run (each part scoring a span of whole chunks) gives the unsharded run's bits.
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

/**
 * How a proposal list is scored: the order (see {@linkcode localityOrder}) and the chunks cut from it. A proposal's
 * score can depend on the other proposals of its chunk in the last bit (the CPU twin pads each proposal to the
 * largest of its size group, and onnxruntime's products round differently for other shapes), so the plan is made
 * from the whole proposal list, always the same way, and every part of a sharded run scores whole chunks of it:
 * then each proposal meets the same chunk mates as in an unsharded run and gets the same bits.
 */
export interface ScorePlan {
  /** proposal indices in scoring order */
  order: Int32Array;
  /** positions in `order` where the chunks start, then `order.length` (just `[0]` for no proposals) */
  bounds: Int32Array;
}

/**
 * The scoring plan of a proposal list: chunks take proposals in {@linkcode localityOrder} while their packed node
 * rows stay within `chunkRows` (a chunk holds at least one proposal, however large).
 */
export function planChunks(nodes: Int32Array[], n: number, options: { chunkRows?: number } = {}): ScorePlan {
  const chunkRows = options.chunkRows ?? 32768;
  const order = localityOrder(nodes, n);
  const bounds = [0];
  let end = 0;
  while (end < order.length) {
    const start = end;
    let packed = 0;
    while (end < order.length && (end === start || packed + nodes[order[end]!]!.length <= chunkRows)) {
      packed += nodes[order[end]!]!.length;
      end++;
    }
    bounds.push(end);
  }
  return { order, bounds: Int32Array.from(bounds) };
}

/**
 * Part `index` of `count` of a plan, as positions [start, end) of its order: the chunk bounds nearest to
 * ⌊index·P/count⌋ and ⌊(index+1)·P/count⌋ (the lower one on a tie). Consecutive parts meet, part 0 starts at 0 and
 * the last ends at P; a part is empty when a single chunk spans its share.
 */
export function planSpan(plan: ScorePlan, index: number, count: number): { start: number; end: number } {
  const p = plan.order.length;
  const cut = (i: number) => {
    const target = Math.floor((i * p) / count);
    let lo = 0, hi = plan.bounds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (plan.bounds[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    // bounds[lo] is the first bound ≥ target; the one before it may be nearer
    const above = plan.bounds[lo]!;
    const below = lo > 0 ? plan.bounds[lo - 1]! : above;
    return target - below <= above - target ? below : above;
  };
  return { start: cut(index), end: cut(index + 1) };
}

/** Options of {@linkcode scoreProposals}. */
export interface ScoreOptions {
  woWeight?: boolean;
  normAdj?: boolean;
  /** packed node rows per chunk (one dispatch chain; default 32768); ignored when `plan` is given */
  chunkRows?: number;
  /** packed node rows per queued run of chunks, read back once (default 524288) */
  runRows?: number;
  /** show a progress bar with this label */
  progressLabel?: string;
  /** the scoring plan (default: {@linkcode planChunks} with `chunkRows`) */
  plan?: ScorePlan;
  /**
   * score only the proposals at positions [start, end) of the plan's order (chunk bounds, e.g. from
   * {@linkcode planSpan}); the others' scores are left NaN and their edge files are not read
   */
  span?: { start: number; end: number };
}

/**
 * The eval-mode prediction of every proposal (or of a span of the plan), in file order. `nodes[i]` are the nodes of
 * `files[i]` (from {@linkcode readAllNodes}).
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
 * The eval-mode prediction of every proposal (or of a span of the plan) given by its nodes and a builder of its
 * graph (called once per scored proposal, in the order chunks are filled), in proposal order.
 */
export async function scoreGraphs(
  engine: GcnEngine,
  features: Features,
  nodes: Int32Array[],
  graphOf: (proposal: number) => ProposalGraph,
  options: Pick<ScoreOptions, "chunkRows" | "runRows" | "progressLabel" | "plan" | "span"> = {},
): Promise<Float32Array> {
  const n = features.n;
  const plan = options.plan ?? planChunks(nodes, n, { chunkRows: options.chunkRows });
  const { order, bounds } = plan;
  if (order.length !== nodes.length) {
    throw new Error(`scoreGraphs: the plan orders ${order.length} proposals, not ${nodes.length}`);
  }
  const span = options.span ?? { start: 0, end: order.length };
  // chunk index of each span end (the span must be cut at chunk bounds, or its chunks would not be the plan's)
  const firstChunk = bounds.indexOf(span.start), endChunk = bounds.indexOf(span.end);
  if (firstChunk < 0 || endChunk < firstChunk) {
    throw new Error(`scoreGraphs: span [${span.start}, ${span.end}) is not cut at the plan's chunk bounds`);
  }
  // Distinct nodes of the scored proposals, in id order, and each one's row in the first-layer table.
  const tableRow = new Int32Array(n).fill(-1);
  for (let i = span.start; i < span.end; i++) for (const v of nodes[order[i]!]!) tableRow[v] = 0;
  let distinct = 0;
  for (let v = 0; v < n; v++) if (tableRow[v] === 0) tableRow[v] = distinct++;
  const rows = new Int32Array(distinct);
  for (let v = 0; v < n; v++) if (tableRow[v]! >= 0) rows[tableRow[v]!] = v;
  await engine.setFirstLayerRows(features.data, rows);

  const scores = new Float32Array(nodes.length).fill(options.span ? NaN : 0);
  const chunkRows = options.chunkRows ?? 32768;
  const runRows = Math.max(chunkRows, options.runRows ?? 1 << 19);
  const progress = options.progressLabel ? new Progress(options.progressLabel, span.end - span.start) : null;
  const source = (v: number) => tableRow[v]!;
  /** Build and queue the chunks of one run from chunk `c0`; returns the run's end and its pending scores. */
  const queueRun = (c0: number) => {
    const chunks: PackedBatch[] = [];
    let c = c0, runPacked = 0;
    while (c < endChunk && runPacked < runRows) {
      const graphs: ProposalGraph[] = [];
      for (let i = bounds[c]!; i < bounds[c + 1]!; i++) {
        graphs.push(graphOf(order[i]!));
        runPacked += nodes[order[i]!]!.length;
      }
      chunks.push(packGraphs(graphs, { source }));
      c++;
    }
    return { start: bounds[c0]!, end: bounds[c]!, endChunk: c, pending: engine.queuePredict(chunks) };
  };
  type Run = ReturnType<typeof queueRun>;
  let run: Run | null = firstChunk < endChunk ? queueRun(firstChunk) : null;
  while (run) {
    const pending = await run.pending;
    const next = run.endChunk < endChunk ? queueRun(run.endChunk) : null;
    let i = run.start;
    for (const result of await pending.read()) for (const score of result) scores[order[i++]!] = score;
    progress?.tick(run.end - run.start);
    run = next;
  }
  progress?.done();
  return scores;
}
