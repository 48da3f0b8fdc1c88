/**
 * Proposal parameter sets (reference §3.6): the iter-0 / iter-1 parameters, the original's folder names built from
 * them, their checks, and the multi-scale config (`proposal_params`) parser.
 * @module
 */
import { basename } from "node:path";
import { checkKeys, type ConfigObject, loadYaml } from "../../shared/config.ts";
import { LtcError } from "../../shared/errors.ts";
import { pyFloatStr } from "../../shared/py_format.ts";
import { KNN_METHODS, type KnnMethod } from "../knn_source.ts";

/** Parameters of one iteration-0 proposal set. */
export interface BasicProposalParams {
  knnMethod: KnnMethod;
  k: number;
  thKnn: number;
  thStep: number;
  minsz: number;
  maxsz: number;
}

/** Parameters of one iteration-1 proposal set (clustering super vertices). */
export interface IterProposalParams extends BasicProposalParams {
  /** keep clusters of at least this many super vertices (≥ 2) */
  svMinsz: number;
  /** at most this many super vertices per cluster */
  svMaxsz: number;
}

/** One parameter set of the multi-scale driver: an iter-0 set and the iter-1 sets built on it. */
export interface ProposalParamSet extends BasicProposalParams {
  /** whether the iter-0 folder itself is one of the outputs (the original's `iter0`) */
  iter0: boolean;
  iter1: IterProposalParams[];
}

/** `<method>_k_<k>_th_<th>_step_<step>_minsz_<minsz>_maxsz_<maxsz>` */
function paramStem(p: BasicProposalParams): string {
  return `${p.knnMethod}_k_${p.k}_th_${pyFloatStr(p.thKnn)}_step_${
    pyFloatStr(p.thStep)
  }_minsz_${p.minsz}_maxsz_${p.maxsz}`;
}

/** The original's iter-0 folder name, e.g. `faiss_k_80_th_0.7_step_0.05_minsz_3_maxsz_300_iter_0`. */
export function basicFolderName(p: BasicProposalParams): string {
  return `${paramStem(p)}_iter_0`;
}

/** The original's iter-n folder name (`..._sv_minsz_<a>_maxsz_<b>_iter_<n>`). */
export function iterFolderName(p: IterProposalParams, iter: number): string {
  return `${paramStem(p)}_sv_minsz_${p.svMinsz}_maxsz_${p.svMaxsz}_iter_${iter}`;
}

/** What a proposal folder name says: kNN method, k and iteration. */
export function parseProposalFolderName(folder: string): { knnMethod: KnnMethod; k: number; iter: number } {
  const name = basename(folder.replace(/[/\\]+$/, ""));
  const m = /^([a-z_]+?)_k_(\d+)_th_.*_iter_(\d+)$/.exec(name);
  if (!m || !(KNN_METHODS as readonly string[]).includes(m[1]!)) {
    throw new LtcError(`${folder}: not a proposal folder name (<method>_k_<k>_th_…_iter_<n>)`);
  }
  return { knnMethod: m[1] as KnnMethod, k: Number(m[2]), iter: Number(m[3]) };
}

export function checkParams(p: BasicProposalParams, where: string): void {
  const ok = (c: boolean, what: string) => {
    if (!c) throw new LtcError(`${where}: ${what}`);
  };
  ok(
    (KNN_METHODS as readonly string[]).includes(p.knnMethod),
    `knn_method must be one of ${KNN_METHODS.join(", ")}, got ${p.knnMethod}`,
  );
  ok(Number.isInteger(p.k) && p.k >= 1, `k must be a positive integer, got ${p.k}`);
  ok(Number.isFinite(p.thKnn) && p.thKnn >= 0 && p.thKnn <= 1, `th_knn must be a similarity in [0, 1], got ${p.thKnn}`);
  ok(Number.isFinite(p.thStep) && p.thStep > 0 && p.thStep <= 1, `th_step must be in (0, 1], got ${p.thStep}`);
  ok(Number.isInteger(p.minsz) && p.minsz >= 1, `minsz must be a positive integer, got ${p.minsz}`);
  ok(Number.isInteger(p.maxsz) && p.maxsz >= p.minsz, `maxsz must be an integer ≥ minsz, got ${p.maxsz}`);
}

export function checkIterParams(p: IterProposalParams, where: string): void {
  checkParams(p, where);
  if (!(Number.isInteger(p.svMinsz) && p.svMinsz >= 2)) {
    throw new LtcError(`${where}: sv_minsz must be an integer ≥ 2 (a one-super-vertex proposal repeats iter 0)`);
  }
  if (!(Number.isInteger(p.svMaxsz) && p.svMaxsz >= p.svMinsz)) {
    throw new LtcError(`${where}: sv_maxsz must be an integer ≥ sv_minsz, got ${p.svMaxsz}`);
  }
}

const SET_KEYS = ["knn_method", "k", "th_knn", "th_step", "minsz", "maxsz", "iter0", "iter1_params"] as const;
const ITER_KEYS = ["knn_method", "k", "th_knn", "th_step", "minsz", "maxsz", "sv_minsz", "sv_maxsz"] as const;

function num(obj: ConfigObject, key: string, where: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new LtcError(`${where}: '${key}' must be a number`);
  return v;
}

/**
 * Parse the `proposal_params` list of a config (the original's `proposal_params`: dicts with `k`, `th_knn`,
 * `th_step`, `minsz`, `maxsz`, `knn_method`, `iter0`, `iter1_params`). Iter-1 entries inherit `knn_method` and
 * `th_step` from their set unless given, and default to the original's iter-1 values (th_knn 0.4, minsz 3,
 * maxsz 500, sv_minsz 2). Unknown keys are errors.
 */
export function parseProposalParams(list: unknown, where: string): ProposalParamSet[] {
  if (!Array.isArray(list) || list.length === 0) throw new LtcError(`${where}: must be a non-empty list`);
  return list.map((raw, i) => {
    const w = `${where}[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new LtcError(`${w}: must be a mapping`);
    const o = raw as ConfigObject;
    checkKeys(o, SET_KEYS, w);
    const knnMethod = String(o.knn_method ?? "faiss") as KnnMethod;
    const set: ProposalParamSet = {
      knnMethod,
      k: num(o, "k", w, 80),
      thKnn: num(o, "th_knn", w),
      thStep: num(o, "th_step", w, 0.05),
      minsz: num(o, "minsz", w, 3),
      maxsz: num(o, "maxsz", w, 300),
      iter0: o.iter0 === undefined ? true : o.iter0 === true,
      iter1: [],
    };
    if (o.iter0 !== undefined && typeof o.iter0 !== "boolean") throw new LtcError(`${w}: 'iter0' must be true/false`);
    checkParams(set, w);
    const it = o.iter1_params ?? [];
    if (!Array.isArray(it)) throw new LtcError(`${w}: 'iter1_params' must be a list`);
    set.iter1 = it.map((r, j) => {
      const wj = `${w}.iter1_params[${j}]`;
      if (typeof r !== "object" || r === null || Array.isArray(r)) throw new LtcError(`${wj}: must be a mapping`);
      const q = r as ConfigObject;
      checkKeys(q, ITER_KEYS, wj);
      const ip: IterProposalParams = {
        knnMethod: String(q.knn_method ?? knnMethod) as KnnMethod,
        k: num(q, "k", wj),
        thKnn: num(q, "th_knn", wj, 0.4),
        thStep: num(q, "th_step", wj, set.thStep),
        minsz: num(q, "minsz", wj, 3),
        maxsz: num(q, "maxsz", wj, 500),
        svMinsz: num(q, "sv_minsz", wj, 2),
        svMaxsz: num(q, "sv_maxsz", wj),
      };
      checkIterParams(ip, wj);
      return ip;
    });
    if (!set.iter0 && set.iter1.length === 0) {
      throw new LtcError(`${w}: iter0 is false and there are no iter1_params, so this set yields no proposals`);
    }
    return set;
  });
}

/** Read a proposal config file (top-level keys: `proposal_params`, optional `description`). */
export function loadProposalConfig(path: string): ProposalParamSet[] {
  const cfg = loadYaml(path);
  checkKeys(cfg, ["proposal_params", "description"], path);
  return parseProposalParams(cfg.proposal_params, `${path}: proposal_params`);
}
