/**
 * Writing artifacts safely and describing them: atomic writes (temp name + rename, so an interrupted stage never
 * leaves a file a later stage would trust), sha256 of inputs, and the JSON sidecar `<artifact>.meta.json` that
 * records stage, parameters, inputs with hashes, tool versions, backend and wall time per step.
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { LtcError } from "./errors.ts";

/** Version of this tool, recorded in every sidecar. */
export const LTC_VERSION = "0.1.0";

/** Folders whose leftover temp files this process has already cleared. */
const clearedDirs = new Set<string>();

/**
 * Create the parent folder of `path` (and its parents) — one clear error when that is not possible — and, once per
 * folder and process, remove what killed runs left there ({@linkcode removeStaleTemps}).
 */
export function ensureParent(path: string): void {
  const dir = dirname(path);
  makeDir(dir);
  if (!clearedDirs.has(dir)) {
    clearedDirs.add(dir);
    removeStaleTemps(dir);
  }
}

/** `mkdir -p` with one clear error naming the folder. */
function makeDir(dir: string): void {
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) throw new LtcError(`${dir}: exists and is not a folder`);
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new LtcError(`${dir}: cannot create folder (permission denied)`);
    }
    if (err instanceof Deno.errors.NotADirectory) throw new LtcError(`${dir}: a parent of this folder is a file`);
    throw new LtcError(`${dir}: cannot create folder (${(err as Error).message})`);
  }
}

/**
 * Check, before any work, that `path` can be written: its folder exists or can be made, and a file can be created
 * in it. Stages call this for every output first, so a read-only destination fails in a second, not after the
 * compute.
 */
export function ensureWritable(path: string): void {
  ensureParent(path);
  const probe = tempPath(path);
  try {
    Deno.writeFileSync(probe, new Uint8Array(0));
    Deno.removeSync(probe);
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new LtcError(`${dirname(path)}: cannot write ${path} here (permission denied)`);
    }
    throw new LtcError(`${dirname(path)}: cannot write ${path} here (${(err as Error).message})`);
  }
}

/** This machine's name as temp names carry it (characters other than letters, digits, `.`, `-` become `_`). */
function hostTag(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys: one name for every process of this run */ }
  return host.replace(/[^A-Za-z0-9.-]/g, "_");
}
const HOST = hostTag();

/**
 * The temp name beside `path` that this process writes before renaming: `<path>.<kind>-<pid>@<host>`. The host is
 * part of it because stages of one run may write into one shared folder from several machines (Slurm job arrays on
 * a network filesystem), where a process id says nothing about another machine's processes.
 */
export function tempPath(path: string, kind: "tmp" | "old" = "tmp"): string {
  return `${path}.${kind}-${Deno.pid}@${HOST}`;
}

/** Whether process `pid` is alive; where that cannot be told (no `/proc`), assume it is. */
function processAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync("/proc/self");
  } catch {
    return true;
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Remove the temp files and folders ({@linkcode tempPath}: `<name>.tmp-<pid>@<host>`, `<name>.old-<pid>@<host>`) that
 * processes of this machine which no longer run left in `dir` — what a SIGKILL during a write leaves behind. Never
 * touches a live process's temps, nor another machine's.
 */
export function removeStaleTemps(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    // `.tmp-<pid>@<host>` (and the older `.tmp-<pid>`, taken as this machine's); another machine's temps are left
    // alone: whether their process still runs cannot be told from here
    const m = /\.(?:tmp|old)-(\d+)(?:@([A-Za-z0-9._-]+))?$/.exec(e.name);
    if (!m || (m[2] !== undefined && m[2] !== HOST) || processAlive(Number(m[1]))) continue;
    try {
      Deno.removeSync(join(dir, e.name), { recursive: true });
    } catch { /* raced with another cleaner, or not ours to remove */ }
  }
}

/**
 * Build a whole folder atomically: `fill` writes into a temp folder beside `folder`, which then replaces `folder`
 * (the old one, if any, is moved aside and deleted). Readers see either the old complete folder, nothing, or the
 * new complete folder — never a partly written one.
 */
export function writeFolderAtomic<T>(folder: string, fill: (tmpFolder: string) => T): T {
  ensureParent(folder);
  const tmp = tempPath(folder);
  const old = tempPath(folder, "old");
  try {
    Deno.removeSync(tmp, { recursive: true });
  } catch { /* none */ }
  makeDir(tmp);
  let result: T;
  try {
    result = fill(tmp);
    let hadOld = false;
    try {
      Deno.renameSync(folder, old);
      hadOld = true;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    Deno.renameSync(tmp, folder);
    if (hadOld) Deno.removeSync(old, { recursive: true });
  } catch (err) {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* already gone */ }
    if (err instanceof Deno.errors.PermissionDenied) throw new LtcError(`${folder}: permission denied`);
    throw err;
  }
  return result;
}

/**
 * Write `data` (one buffer, a list of chunks, or text) to `path` atomically: it lands under a temp name in the same
 * folder and is renamed over `path` only once complete.
 */
export function writeFileAtomic(path: string, data: Uint8Array | Uint8Array[] | string): void {
  ensureParent(path);
  const tmp = tempPath(path);
  try {
    if (typeof data === "string") Deno.writeTextFileSync(tmp, data);
    else if (data instanceof Uint8Array) Deno.writeFileSync(tmp, data);
    else {
      const f = Deno.openSync(tmp, { write: true, create: true, truncate: true });
      try {
        for (const chunk of data) {
          let off = 0;
          while (off < chunk.length) off += f.writeSync(chunk.subarray(off));
        }
      } finally {
        f.close();
      }
    }
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    if (err instanceof Deno.errors.PermissionDenied) throw new LtcError(`${path}: permission denied`);
    throw err;
  }
}

const hashMemo = new Map<string, { size: number; mtime: number; hash: string }>();

/**
 * sha256 of a file's bytes, hex, streamed so large feature files need no extra memory. Memoised per process by
 * path, size and mtime (stages hash the same inputs for up-to-date checks and sidecars).
 */
export function sha256File(path: string): string {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    throw new LtcError(`${path}: no such file`);
  }
  const mtime = st.mtime?.getTime() ?? -1;
  const memo = hashMemo.get(path);
  if (memo && memo.size === st.size && memo.mtime === mtime) return memo.hash;
  const hash = hashFileBytes(path);
  hashMemo.set(path, { size: st.size, mtime, hash });
  return hash;
}

function hashFileBytes(path: string): string {
  const hash = createHash("sha256");
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch {
    throw new LtcError(`${path}: no such file`);
  }
  try {
    const buf = new Uint8Array(1 << 22);
    for (;;) {
      const n = f.readSync(buf);
      if (n === null || n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    f.close();
  }
  return hash.digest("hex");
}

/** Wall-clock timings of a stage's named steps, in seconds. */
export class Timings {
  readonly steps: Record<string, number> = {};
  readonly #start = performance.now();
  /** Run `fn` and record its wall time under `name` (added to any earlier time of the same name). */
  step<T>(name: string, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.steps[name] = (this.steps[name] ?? 0) + (performance.now() - t0) / 1000;
    }
  }
  /** Async variant of {@linkcode Timings.step}. */
  async stepAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.steps[name] = (this.steps[name] ?? 0) + (performance.now() - t0) / 1000;
    }
  }
  /** Seconds since this object was made. */
  total(): number {
    return (performance.now() - this.#start) / 1000;
  }
}

/** What a sidecar records. */
export interface SidecarInput {
  /** stage name, e.g. `knn` */
  stage: string;
  /** the parameters that determine the artifact */
  params: Record<string, unknown>;
  /** input files; each is hashed */
  inputs: string[];
  /** compute backend that ran (`cpu`, `webgpu: <adapter>`) */
  backend?: string;
  /** per-step timings */
  timings?: Timings;
  /** anything else worth keeping (counts, recall, …) */
  extra?: Record<string, unknown>;
}

/** Sidecar path of an artifact. */
export function sidecarPath(artifact: string): string {
  return `${artifact}.meta.json`;
}

/** Tool versions recorded in sidecars. */
export function toolVersions(): Record<string, string> {
  return { ltc: LTC_VERSION, deno: Deno.version.deno, v8: Deno.version.v8, typescript: Deno.version.typescript };
}

/** Write `<artifact>.meta.json` atomically. Inputs are hashed here (so a later run can tell whether they changed). */
export function writeSidecar(artifact: string, info: SidecarInput): void {
  const body = {
    stage: info.stage,
    artifact,
    params: info.params,
    inputs: info.inputs.map((p) => ({ path: p, sha256: sha256File(p), bytes: Deno.statSync(p).size })),
    tools: toolVersions(),
    backend: info.backend ?? "cpu",
    timings_s: info.timings ? { ...info.timings.steps, total: info.timings.total() } : undefined,
    ...info.extra,
  };
  writeFileAtomic(sidecarPath(artifact), JSON.stringify(body, null, 2) + "\n");
}

/**
 * Whether `artifact` exists and its sidecar says it was made from the same params and the same input bytes — the
 * test stages use to skip work. The original reuses any file that exists; this never reuses a stale one.
 */
export function isUpToDate(artifact: string, params: Record<string, unknown>, inputs: string[]): boolean {
  try {
    Deno.statSync(artifact);
    const side = JSON.parse(Deno.readTextFileSync(sidecarPath(artifact)));
    if (JSON.stringify(side.params) !== JSON.stringify(params)) return false;
    const recorded = side.inputs as { path: string; sha256: string; bytes: number }[];
    if (recorded.length !== inputs.length) return false;
    return inputs.every((p, i) => {
      const r = recorded[i]!;
      return r.path === p && r.bytes === Deno.statSync(p).size && r.sha256 === sha256File(p);
    });
  } catch {
    return false;
  }
}

/** Whether `path` is an existing regular file (false when missing or unreadable). */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Whether `path` is an existing directory (false when missing or unreadable). */
export function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** One input as a sidecar records it. */
export interface RecordedInput {
  path: string;
  sha256: string;
  bytes: number;
}

/** A sidecar as read back (the fields every stage writes; stages add their own). */
export interface SidecarRecord {
  stage?: string;
  params?: Record<string, unknown>;
  inputs?: RecordedInput[];
  /** set while the artifact is being rebuilt; a finished write replaces the whole sidecar */
  in_progress?: boolean;
  [key: string]: unknown;
}

/**
 * An artifact's sidecar, or undefined when it has none (the original's own files never do). A sidecar that is not
 * a JSON object is an error naming it.
 */
export function readSidecar(artifact: string): SidecarRecord | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(sidecarPath(artifact));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new LtcError(`${sidecarPath(artifact)}: cannot read (${(err as Error).message})`);
  }
  let side: unknown;
  try {
    side = JSON.parse(text);
  } catch {
    throw new LtcError(`${sidecarPath(artifact)}: not valid JSON (truncated or corrupt sidecar)`);
  }
  if (typeof side !== "object" || side === null || Array.isArray(side)) {
    throw new LtcError(`${sidecarPath(artifact)}: not a sidecar (expected a JSON object)`);
  }
  return side as SidecarRecord;
}

/**
 * Mark `artifact` as being rebuilt: its sidecar says `in_progress` until {@linkcode writeSidecar} replaces it, so
 * an artifact whose run was killed half-way is refused by every reader instead of trusted.
 */
export function markInProgress(artifact: string, stage: string): void {
  writeFileAtomic(sidecarPath(artifact), JSON.stringify({ stage, artifact, in_progress: true }, null, 2) + "\n");
}

/** Options of {@linkcode checkFresh}. */
export interface CheckFreshOptions {
  /** the features file this run uses: the artifact must have been built from the same bytes */
  features?: string;
  /** how to rebuild, for the error message (default: "rebuild it with --force") */
  hint?: string;
}

/**
 * Refuse an artifact that a later stage must not trust: one whose run was interrupted (`in_progress` sidecar), or
 * one built from inputs that have changed since — every input its sidecar records, and through their sidecars
 * theirs, must still hold the recorded bytes. With `features`, the feature file found along that chain must have
 * the same bytes as the one given. Artifacts without a sidecar (the original's downloads) are taken as they are.
 */
export function checkFresh(artifact: string, options: CheckFreshOptions = {}): void {
  const hint = options.hint ?? "rebuild it with --force";
  const seen = new Set<string>();
  const featureInputs: RecordedInput[] = [];
  const walk = (a: string, depth: number) => {
    if (seen.has(a) || depth > 8) return;
    seen.add(a);
    const side = readSidecar(a);
    if (!side) return;
    if (side.in_progress) throw new LtcError(`${a}: its run was interrupted before it finished; ${hint}`);
    for (const r of side.inputs ?? []) {
      if (r.path.endsWith(".bin")) featureInputs.push(r);
      if (!isFile(r.path)) continue; // moved or renamed since: nothing to compare with
      if (Deno.statSync(r.path).size !== r.bytes || sha256File(r.path) !== r.sha256) {
        throw new LtcError(`${a}: was built from ${r.path}, which has changed since; ${hint}`);
      }
      walk(r.path, depth + 1);
    }
  };
  walk(artifact, 0);
  const feats = options.features;
  if (feats && featureInputs.length > 0) {
    const sha = sha256File(feats);
    if (!featureInputs.some((r) => r.sha256 === sha)) {
      throw new LtcError(
        `${artifact}: was built from ${featureInputs[0]!.path}, whose bytes differ from ${feats} used now; ${hint}`,
      );
    }
  }
}
