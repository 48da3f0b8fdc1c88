/**
 * Sharded GCN-D detection: `detect --shard I/S` scores one part of the proposals into
 * `<ckpt-name>.part_<I>_of_<S>.npz`, and `detect-merge` checks the S parts, joins them into the scores file an
 * unsharded run writes — the same bytes — and finishes as detect does (de-overlap, evaluation).
 *
 * Why parts are cut where they are: a proposal's score can differ in the last bit with the other proposals of its
 * engine call (the CPU twin pads each proposal to the largest of its size group, and onnxruntime's products round
 * differently for other shapes; measured on the sref fixtures: 15 of 217 proposals score differently alone than in
 * their chunk). So every part computes the unsharded run's plan from the whole proposal list ({@linkcode planChunks}:
 * locality order, chunks of `chunk_rows` packed rows) and scores whole chunks of it: part I takes positions
 * [start, end) of the plan's order, the chunk bounds nearest to ⌊I·P/S⌋ and ⌊(I+1)·P/S⌋. Each part therefore reads
 * every node file (the plan needs them; they are small) but only its own proposals' edge files, and computes the
 * first-layer table only for its own proposals' nodes.
 *
 * A part file holds `data` (float32 scores, in plan order) and `index` (int32 file-order proposal index of each);
 * its sidecar (stage `detect-part`) records the shard, its span, P, the chunk rows, and the same params and hashed
 * inputs as detect's scores sidecar.
 * @module
 */
import { join } from "node:path";
import {
  ensureWritable,
  markInProgress,
  readSidecar,
  type RecordedInput,
  sha256File,
  type SidecarRecord,
  Timings,
  writeSidecar,
} from "../shared/artifact.ts";
import { LtcError } from "../shared/errors.ts";
import { type Shard, shardPartPath } from "../shared/shard.ts";
import { readLabels } from "../shared/meta.ts";
import { readNpzArray, writeNpz } from "../shared/npy.ts";
import { log } from "../shared/progress.ts";
import { listProposalFiles } from "../shared/proposal_io.ts";
import { checkpointName, createEngine, planChunks, planSpan, readAllNodes, scoreProposals } from "../gpu/gcn/mod.ts";
import {
  checkScoresFinite,
  type DetectOptions,
  type DetectResult,
  finishDetect,
  type FinishOptions,
  prepareScoring,
} from "./detect.ts";

/** The part file of shard `index` of `count` for a checkpoint name, in `workDir`. */
export function partPath(workDir: string, name: string, shard: Shard): string {
  return shardPartPath(join(workDir, `${name}.npz`), shard);
}

/** What {@linkcode detectShard} produced. */
export interface ShardResult {
  partPath: string;
  /** positions [start, end) of the plan's order this part scored */
  start: number;
  end: number;
  /** proposals over all folders */
  total: number;
  backend: string;
  timings: Timings;
}

/**
 * Score one part of the proposals (see the module notes for which) and write its part file and sidecar. No labels,
 * no de-overlap: `detect-merge` does that once for all parts.
 */
export async function detectShard(options: DetectOptions & { shard: Shard }): Promise<ShardResult> {
  const { shard } = options;
  const timings = new Timings();
  const name = checkpointName(options.loadFrom);
  const out = partPath(options.workDir, name, shard);
  const inp = prepareScoring({ ...options, labelPath: undefined }, { timings, outputs: [out] });
  const { feats, files, nodes } = inp;
  const chunkRows = options.chunkRows ?? 32768;
  const plan = timings.step("plan", () => planChunks(nodes, feats.n, { chunkRows }));
  const span = planSpan(plan, shard.index, shard.count);
  const index = plan.order.slice(span.start, span.end);
  const engine = await createEngine(inp.weights, options.backend ?? "auto");
  let scores: Float32Array;
  try {
    log(
      `detect: part ${shard.index}/${shard.count}: ${index.length} of ${files.length} proposals ` +
        `(plan positions ${span.start}…${span.end}), ${feats.n} instances, ${engine.backend}`,
    );
    scores = await timings.stepAsync("score", () =>
      scoreProposals(engine, feats, files, nodes, {
        woWeight: options.woWeight,
        normAdj: options.normAdj,
        plan,
        span,
        progressLabel: `detect ${shard.index}/${shard.count}`,
      }));
  } finally {
    engine.dispose();
  }
  checkScoresFinite(scores, files, index);
  const data = Float32Array.from(index, (p) => scores[p]!);
  markInProgress(out, "detect-part");
  writeNpz(out, {
    data: { dtype: "f4", shape: [data.length], data },
    index: { dtype: "i4", shape: [index.length], data: index },
  });
  writeSidecar(out, {
    stage: "detect-part",
    params: { ...inp.params, chunk_rows: chunkRows },
    inputs: inp.inputs,
    backend: engine.backend,
    timings,
    extra: {
      shard: { index: shard.index, count: shard.count, start: span.start, end: span.end },
      proposal_folders: options.proposalFolders,
      tot_inst_num: feats.n,
      proposal_count: files.length,
      checkpoint: inp.checkpointInfo,
    },
  });
  return { partPath: out, ...span, total: files.length, backend: engine.backend, timings };
}

/** Options of {@linkcode mergeDetectParts}. */
export interface MergeOptions extends Omit<FinishOptions, "name" | "proposalFolders"> {
  /** the checkpoint the parts were scored with (names the files; its bytes must be the recorded ones) */
  loadFrom?: string;
  /** the number of parts */
  shards: number;
  labelPath?: string;
}

/** One checked part: its sidecar and arrays. */
interface Part {
  path: string;
  side: SidecarRecord;
  start: number;
  end: number;
  data: Float32Array;
  index: Int32Array;
  seconds: number;
}

/** Read one part and check it on its own: present, finished, the right shard, arrays matching its span. */
function readPart(path: string, shard: Shard): Part {
  const hint = `run detect --shard ${shard.index}/${shard.count} (with the other parts' options)`;
  let side: SidecarRecord | undefined;
  try {
    Deno.statSync(path);
    side = readSidecar(path);
  } catch (err) {
    if (err instanceof LtcError) throw err;
    throw new LtcError(`${path}: part ${shard.index} of ${shard.count} is missing; ${hint}`);
  }
  if (!side) throw new LtcError(`${path}: has no sidecar (.meta.json), so nothing says what it holds; ${hint}`);
  if (side.in_progress) throw new LtcError(`${path}: its run was interrupted before it finished; ${hint}`);
  if (side.stage !== "detect-part") {
    throw new LtcError(`${path}: is not a detect part (its sidecar says stage '${side.stage}')`);
  }
  const s = side.shard as { index?: unknown; count?: unknown; start?: unknown; end?: unknown } | undefined;
  if (s?.count !== shard.count || s?.index !== shard.index) {
    throw new LtcError(
      `${path}: its sidecar says part ${s?.index} of ${s?.count}, not part ${shard.index} of ${shard.count}`,
    );
  }
  const start = s.start, end = s.end;
  if (!Number.isInteger(start) || !Number.isInteger(end) || (end as number) < (start as number)) {
    throw new LtcError(`${path}: its sidecar records no valid proposal range`);
  }
  const data = readNpzArray(path, "data"), index = readNpzArray(path, "index");
  const count = (end as number) - (start as number);
  if (data.dtype !== "f4" || index.dtype !== "i4" || data.data.length !== count || index.data.length !== count) {
    throw new LtcError(
      `${path}: holds ${data.data.length} scores and ${index.data.length} indices, but its range ` +
        `[${start}, ${end}) has ${count}`,
    );
  }
  const timings = side.timings_s as Record<string, number> | undefined;
  return {
    path,
    side,
    start: start as number,
    end: end as number,
    data: data.data as Float32Array,
    index: index.data as Int32Array,
    seconds: timings?.total ?? 0,
  };
}

/** Check that `part` was scored like `first`: same params, inputs, backend, proposal count; names the difference. */
function checkSameRun(part: Part, first: Part): void {
  const a = part.side, b = first.side;
  const pa = a.params ?? {}, pb = b.params ?? {};
  for (const key of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
    if (JSON.stringify(pa[key]) !== JSON.stringify(pb[key])) {
      throw new LtcError(
        `${part.path}: was scored with ${key} = ${JSON.stringify(pa[key])}, but ${first.path} with ` +
          `${JSON.stringify(pb[key])}; score every part with the same options`,
      );
    }
  }
  const ia = a.inputs ?? [], ib = b.inputs ?? [];
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    if (ia[i]?.sha256 !== ib[i]?.sha256) {
      throw new LtcError(
        `${part.path}: was scored from ${ia[i]?.path ?? "nothing"} (sha256 ${ia[i]?.sha256?.slice(0, 12)}…), but ` +
          `${first.path} from ${ib[i]?.path ?? "nothing"} (sha256 ${ib[i]?.sha256?.slice(0, 12)}…)`,
      );
    }
  }
  if (a.backend !== b.backend) {
    throw new LtcError(
      `${part.path}: was scored on ${a.backend}, but ${first.path} on ${b.backend}; backends differ in the last ` +
        "bits, so the merged scores would match no unsharded run",
    );
  }
  if (a.proposal_count !== b.proposal_count || a.tot_inst_num !== b.tot_inst_num) {
    throw new LtcError(
      `${part.path}: was scored over ${a.proposal_count} proposals of ${a.tot_inst_num} instances, but ` +
        `${first.path} over ${b.proposal_count} of ${b.tot_inst_num}`,
    );
  }
}

/**
 * Check the parts of a sharded detect run, join their scores into `<ckpt-name>.npz` (byte-identical to the
 * unsharded run's), then de-overlap and evaluate once, exactly as detect does. Any missing, foreign or inconsistent
 * part is one error naming its file.
 */
export function mergeDetectParts(options: MergeOptions): DetectResult {
  const timings = new Timings();
  const name = checkpointName(options.loadFrom);
  if (!Number.isInteger(options.shards) || options.shards < 1) {
    throw new LtcError(`detect-merge: --shards must be a positive integer, got ${options.shards}`);
  }
  ensureWritable(join(options.workDir, "pred_labels.txt"));
  const parts: Part[] = [];
  timings.step("read_parts", () => {
    for (let i = 0; i < options.shards; i++) {
      const part = readPart(partPath(options.workDir, name, { index: i, count: options.shards }), {
        index: i,
        count: options.shards,
      });
      if (parts.length > 0) checkSameRun(part, parts[0]!);
      const expectStart = i === 0 ? 0 : parts[i - 1]!.end;
      if (part.start !== expectStart) {
        throw new LtcError(
          `${part.path}: covers proposals [${part.start}, ${part.end}) of the plan, but the previous part ends at ` +
            `${expectStart}; the parts must meet`,
        );
      }
      parts.push(part);
    }
  });
  const first = parts[0]!;
  const side = first.side;
  const params = side.params ?? {};
  const total = side.proposal_count as number, n = side.tot_inst_num as number;
  const last = parts[parts.length - 1]!;
  if (last.end !== total) {
    throw new LtcError(`${last.path}: the parts cover proposals [0, ${last.end}) of ${total}; the rest is missing`);
  }
  // The checkpoint given must be the one the parts were scored with (same bytes), and the inputs unchanged since.
  // a part's sidecar records the features, then the checkpoint (none for a random model)
  const featRec: RecordedInput | undefined = side.inputs?.[0], ckptRec: RecordedInput | undefined = side.inputs?.[1];
  if (options.loadFrom) {
    const sha = sha256File(options.loadFrom);
    if (!ckptRec || ckptRec.sha256 !== sha) {
      throw new LtcError(
        `${first.path}: was scored with ${ckptRec ? `checkpoint ${ckptRec.path}` : "a random model"}, whose bytes ` +
          `differ from --load-from ${options.loadFrom}`,
      );
    }
  } else if (ckptRec) {
    throw new LtcError(`${first.path}: was scored with checkpoint ${ckptRec.path}; pass it as --load-from`);
  }
  const featPath = params.feat_path as string;
  if (!featRec || sha256File(featPath) !== featRec.sha256) {
    throw new LtcError(`${first.path}: was scored from ${featPath}, which has changed since; score the parts again`);
  }
  const chunkRows = params.chunk_rows as number;
  const folders = params.proposal_folders as string[];
  const files = listProposalFiles(folders, { features: featPath });
  if (files.length !== total) {
    throw new LtcError(
      `${first.path}: the parts scored ${total} proposals, but ${folders.join(", ")} now hold ${files.length}`,
    );
  }
  const gt = options.labelPath ? readLabels(options.labelPath) : null;
  if (gt && gt.length !== n) {
    throw new LtcError(`${options.labelPath}: has ${gt.length} labels but the parts' ${featPath} has ${n} rows`);
  }
  const nodes = timings.step("read_nodes", () => readAllNodes(files, n));
  // Each part must hold exactly the plan's proposals of its range (a changed proposal folder would move them).
  const plan = timings.step("plan", () => planChunks(nodes, n, { chunkRows }));
  const scores = new Float32Array(total);
  for (const part of parts) {
    for (let k = 0; k < part.index.length; k++) {
      if (part.index[k] !== plan.order[part.start + k]) {
        throw new LtcError(
          `${part.path}: its proposals are not the plan's [${part.start}, ${part.end}) of ${folders.join(", ")}; ` +
            "the proposals changed since it was scored",
        );
      }
      scores[part.index[k]!] = part.data[k]!;
    }
  }
  checkScoresFinite(scores, files);
  const merge = { ...params };
  delete merge.chunk_rows;
  return finishDetect({
    scores,
    nodes,
    n,
    gt,
    params: merge,
    inputs: [featPath, ...(options.loadFrom ? [options.loadFrom] : [])],
    backend: side.backend as string,
    timings,
    checkpointInfo: side.checkpoint,
    extra: {
      shards: {
        count: options.shards,
        chunk_rows: chunkRows,
        parts: parts.map((p) => ({ file: p.path, start: p.start, end: p.end, seconds: p.seconds })),
        merge_s: timings.total(),
      },
    },
  }, { ...options, name, proposalFolders: folders });
}
