/**
 * Writing artifacts safely and describing them: atomic writes (temp name + rename, so an interrupted stage never
 * leaves a file a later stage would trust), sha256 of inputs, and the JSON sidecar `<artifact>.meta.json` that
 * records stage, parameters, inputs with hashes, tool versions, backend and wall time per step.
 * @module
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { LtcError } from "./errors.ts";

/** Version of this tool, recorded in every sidecar. */
export const LTC_VERSION = "0.1.0";

/** Create the parent folder of `path` (and its parents). */
export function ensureParent(path: string): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
}

/**
 * Write `data` (one buffer, a list of chunks, or text) to `path` atomically: it lands under a temp name in the same
 * folder and is renamed over `path` only once complete.
 */
export function writeFileAtomic(path: string, data: Uint8Array | Uint8Array[] | string): void {
  ensureParent(path);
  const tmp = `${path}.tmp-${Deno.pid}`;
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
