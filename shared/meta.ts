/**
 * Label files `.meta` / `pred_labels.txt`: one integer per line, line i = label of row i. The writer follows the
 * original `write_meta` exactly: labels renumbered 0, 1, … by first appearance in index order, indices without a
 * label become singletons (`cls_num + counter`), and the length is `inst_num` when given, else max index + 1.
 * @module
 */
import { writeFileAtomic } from "./artifact.ts";
import { LtcError, readTextChecked } from "./errors.ts";

/** Labels read from a `.meta` file. */
export interface Meta {
  /** label of each row */
  labels: Int32Array;
  /** label → row indices, labels in order of first appearance (the original's `lb2idxs`) */
  lb2idxs: Map<number, number[]>;
}

/** Parse label text; `path` names the file in errors. */
export function parseMeta(text: string, path: string): Meta {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  if (lines.length === 0) throw new LtcError(`${path}: label file is empty`);
  const labels = new Int32Array(lines.length);
  const lb2idxs = new Map<number, number[]>();
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i]!.trim();
    const v = Number(s);
    if (s === "" || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new LtcError(`${path}: line ${i + 1} is not an integer label: '${s.slice(0, 40)}'`);
    }
    labels[i] = v;
    const list = lb2idxs.get(v);
    if (list) list.push(i);
    else lb2idxs.set(v, [i]);
  }
  return { labels, lb2idxs };
}

/** Read a `.meta` label file. */
export function readMeta(path: string): Meta {
  return parseMeta(readTextChecked(path), path);
}

/** Read only the label vector of a `.meta` file. */
export function readLabels(path: string): Int32Array {
  return readMeta(path).labels;
}

/**
 * The original `write_meta` relabelling of a partial index → label map. `instNum` defaults to max index + 1
 * (the original's behaviour without `inst_num`, which drops trailing unlabelled rows).
 */
export function relabelLikeWriteMeta(idx2lb: Map<number, number>, instNum?: number): Int32Array {
  let n = instNum;
  if (n === undefined) {
    n = 0;
    for (const k of idx2lb.keys()) n = Math.max(n, k + 1);
  }
  const clsNum = new Set(idx2lb.values()).size;
  const out = new Int32Array(n);
  const remap = new Map<number, number>();
  let discard = 0;
  for (let idx = 0; idx < n; idx++) {
    const lb = idx2lb.get(idx);
    if (lb === undefined) {
      out[idx] = clsNum + discard++;
      continue;
    }
    let nl = remap.get(lb);
    if (nl === undefined) remap.set(lb, nl = remap.size);
    out[idx] = nl;
  }
  return out;
}

/** Turn clusters (lists of indices) into the original's `idx2lb` map: cluster i's members get label i. */
export function clustersToIdx2lb(clusters: Iterable<ArrayLike<number>>): Map<number, number> {
  const idx2lb = new Map<number, number>();
  let lb = 0;
  for (const c of clusters) {
    for (let i = 0; i < c.length; i++) idx2lb.set(c[i]!, lb);
    lb++;
  }
  return idx2lb;
}

/** A dense label vector with `ignore` entries (e.g. −1 noise) treated as unassigned, relabelled like `write_meta`. */
export function relabelDense(labels: ArrayLike<number>, ignore?: number): Int32Array {
  const idx2lb = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) if (labels[i] !== ignore) idx2lb.set(i, labels[i]!);
  return relabelLikeWriteMeta(idx2lb, labels.length);
}

/** Write a label vector, one integer per line, atomically. */
export function writeLabels(path: string, labels: ArrayLike<number>): void {
  const parts: string[] = new Array(labels.length);
  for (let i = 0; i < labels.length; i++) parts[i] = String(labels[i]);
  writeFileAtomic(path, parts.join("\n") + (labels.length ? "\n" : ""));
}

/** `write_meta(ofn, idx2lb, inst_num)`: relabel and write; returns the written labels. */
export function writeMeta(path: string, idx2lb: Map<number, number>, instNum?: number): Int32Array {
  const labels = relabelLikeWriteMeta(idx2lb, instNum);
  writeLabels(path, labels);
  return labels;
}

/**
 * Read a predicted-label file and pad it to `n` rows with fresh singleton labels, as the original's
 * `write_meta(inst_num=N)` would have (basic proposals write files shorter than N).
 */
export function readLabelsPadded(path: string, n: number): Int32Array {
  const labels = readLabels(path);
  if (labels.length > n) throw new LtcError(`${path}: has ${labels.length} labels, more than the ${n} rows`);
  if (labels.length === n) return labels;
  const out = new Int32Array(n);
  out.set(labels);
  let next = 0;
  for (const v of labels) next = Math.max(next, v + 1);
  for (let i = labels.length; i < n; i++) out[i] = next++;
  return out;
}
