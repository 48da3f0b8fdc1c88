/**
 * Proposal folders in the original layout: `<folder>/<i>_node.npz` (1-D int64 global indices) and
 * `<folder>/<i>_edge.npz` ((E, 3) float64 rows `[idx1, idx2, dist]`, idx1 < idx2), key `data`, compressed.
 * Enumeration order matters (scores are aligned to files by position): per folder, in the given folder order, files
 * sorted lexicographically by full path — so `10_node.npz` comes before `1_node.npz`, as Python's `sorted(glob())`.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { checkFresh, readSidecar } from "./artifact.ts";
import { LtcError } from "./errors.ts";
import { type NdArray, toNumbers } from "./ndarray.ts";
import { readNpzArray, writeNpz } from "./npy.ts";

/** One proposal's two files. */
export interface ProposalFiles {
  node: string;
  edge: string;
}

/** Python-style string comparison (code points; equal to UTF-16 order for the ASCII names used here). */
function pyCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of {@linkcode listProposalFiles}. */
export interface ListProposalsOptions {
  /** the features file of this run: the proposals must have been built from the same bytes */
  features?: string;
}

/**
 * List the proposals of each folder in the original's order. A missing folder or one without proposals is an error
 * naming it; node and edge files must pair up. A folder this tool wrote (`<param folder>/proposals` with a
 * `pred_labels.txt` sidecar beside it) must be complete — its run finished, its file count the one recorded — and
 * built from inputs that have not changed since ({@linkcode checkFresh}); the original's folders carry no sidecar
 * and are taken as they are.
 */
export function listProposalFiles(folders: string[], options: ListProposalsOptions = {}): ProposalFiles[] {
  const out: ProposalFiles[] = [];
  for (const folder of folders) {
    let names: string[];
    try {
      names = [...Deno.readDirSync(folder)].filter((e) => e.isFile).map((e) => e.name);
    } catch {
      throw new LtcError(`${folder}: proposal folder does not exist`);
    }
    const nodes = names.filter((n) => n.endsWith("_node.npz")).map((n) => join(folder, n)).sort(pyCompare);
    const edges = names.filter((n) => n.endsWith("_edge.npz")).map((n) => join(folder, n)).sort(pyCompare);
    if (nodes.length === 0) throw new LtcError(`${folder}: proposal folder holds no *_node.npz files`);
    if (nodes.length !== edges.length) {
      throw new LtcError(`${folder}: ${nodes.length} node files but ${edges.length} edge files`);
    }
    checkOurFolder(folder, nodes.length, options);
    for (let i = 0; i < nodes.length; i++) {
      const a = nodes[i]!.slice(0, nodes[i]!.lastIndexOf("_"));
      const b = edges[i]!.slice(0, edges[i]!.lastIndexOf("_"));
      if (a !== b) throw new LtcError(`${folder}: node file ${nodes[i]} has no matching edge file`);
      out.push({ node: nodes[i]!, edge: edges[i]! });
    }
  }
  return out;
}

/** The completeness and freshness checks of a proposal folder this tool wrote (see {@linkcode listProposalFiles}). */
function checkOurFolder(folder: string, count: number, options: ListProposalsOptions): void {
  const trimmed = folder.replace(/[/\\]+$/, "");
  if (basename(trimmed) !== "proposals") return;
  const predLabels = join(dirname(trimmed), "pred_labels.txt");
  const side = readSidecar(predLabels);
  if (!side) return;
  const hint = "rerun the proposals stage (with --force)";
  checkFresh(predLabels, { features: options.features, hint });
  if (side.num_proposals !== count) {
    throw new LtcError(
      `${folder}: holds ${count} proposals but ${predLabels}'s sidecar records ${side.num_proposals}; ${hint}`,
    );
  }
}

/** Read a `<i>_node.npz`: the proposal's global node indices, in stored order. */
export function readProposalNodes(path: string): Int32Array {
  const arr = readNpzArray(path);
  if (arr.shape.length !== 1) throw new LtcError(`${path}: node array must be 1-D, got (${arr.shape.join(", ")})`);
  const v = toNumbers(arr);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isInteger(v[i]!) || v[i]! < 0) throw new LtcError(`${path}: bad node index ${v[i]}`);
    out[i] = v[i]!;
  }
  return out;
}

/** Edges of a proposal: parallel arrays of endpoints and distances. */
export interface ProposalEdges {
  e1: Int32Array;
  e2: Int32Array;
  dist: Float64Array;
}

/** Read a `<i>_edge.npz` ((E, 3) rows, or an empty array). */
export function readProposalEdges(path: string): ProposalEdges {
  const arr = readNpzArray(path);
  const v = toNumbers(arr);
  if (v.length === 0) return { e1: new Int32Array(0), e2: new Int32Array(0), dist: new Float64Array(0) };
  if (arr.shape.length !== 2 || arr.shape[1] !== 3) {
    throw new LtcError(`${path}: edge array must be (E, 3), got (${arr.shape.join(", ")})`);
  }
  const e = arr.shape[0]!;
  const out = { e1: new Int32Array(e), e2: new Int32Array(e), dist: new Float64Array(e) };
  for (let i = 0; i < e; i++) {
    out.e1[i] = v[3 * i]!;
    out.e2[i] = v[3 * i + 1]!;
    out.dist[i] = v[3 * i + 2]!;
  }
  return out;
}

/**
 * Write one proposal (`<lb>_node.npz`, `<lb>_edge.npz`) into `folder`, atomically, in the original's dtypes.
 * `level` is the zlib level (default 6, numpy's); the proposals stage uses 1: the same arrays, files ~40 % larger,
 * written ~7× faster — at part1 scale the edge files hold ~1 GB of raw rows.
 */
export function writeProposal(
  folder: string,
  lb: number,
  nodes: ArrayLike<number>,
  edges: ProposalEdges,
  options: { level?: number } = {},
): void {
  const ids = new BigInt64Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) ids[i] = BigInt(nodes[i]!);
  const nodeArr: NdArray = { dtype: "i8", shape: [nodes.length], data: ids };
  const e = edges.e1.length;
  const flat = new Float64Array(e * 3);
  for (let i = 0; i < e; i++) {
    flat[3 * i] = edges.e1[i]!;
    flat[3 * i + 1] = edges.e2[i]!;
    flat[3 * i + 2] = edges.dist[i]!;
  }
  const edgeArr: NdArray = { dtype: "f8", shape: e ? [e, 3] : [0], data: flat };
  writeNpz(join(folder, `${lb}_node.npz`), { data: nodeArr }, { level: options.level });
  writeNpz(join(folder, `${lb}_edge.npz`), { data: edgeArr }, { level: options.level });
}
