/**
 * What the bad-input and interrupted-write tests share: a small dataset built once through the stages themselves
 * (so every artifact has the sidecars a real run leaves), per-case copies of it, running a stage in a case folder
 * (optionally as an unprivileged user, so file permissions apply even when the suite runs as root), snapshots of a
 * folder tree, and the file surgery the cases need.
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { type KnnGraph, knnToArray } from "../shared/knn_file.ts";
import type { NdArray } from "../shared/ndarray.ts";
import { encodeNpy, writeNpz } from "../shared/npy.ts";
import { Rng } from "../shared/random.ts";
import { buildZip, concat, readZip } from "../shared/zip.ts";
import { listTree } from "./_files.ts";

/** The repo root (stages are run by absolute path, with the case folder as working directory). */
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Rows and dimension of the base dataset: small enough that a stage run costs little more than Deno's start. */
export const N = 200, DIM = 16, K = 10;
/** The iteration-0 proposal folder the base run writes (th_knn 0.5). */
export const P0 = "data/cluster_proposals/t/faiss_k_10_th_0.5_step_0.05_minsz_3_maxsz_300_iter_0";
/** Its proposals. */
export const P0_PROPOSALS = `${P0}/proposals`;
/** Features, labels and kNN file of the base dataset, relative to a case folder. */
export const FEATS = "data/features/t.bin", LABELS = "data/labels/t.meta", KNN = "data/knns/t/faiss_k_10.npz";

/** Arguments shared by the stages that read the base dataset. */
export const DATA_ARGS = ["--prefix", "data", "--name", "t", "--dim", String(DIM)];
/** `proposals` on the base dataset (its outputs are up to date in every fresh copy). */
export const PROPOSAL_ARGS = [...DATA_ARGS, "--k", String(K), "--th-knn", "0.5", "--backend", "cpu"];
/** `detect` on the base proposals with a random model (writes into `work2/`, which the base does not have). */
export const DETECT_ARGS = [
  "--feat-path",
  FEATS,
  "--dim",
  String(DIM),
  "--proposal-folders",
  P0_PROPOSALS,
  "--random-init",
  "--work-dir",
  "work2",
  "--backend",
  "cpu",
];

/** A GCN-D training config for the base dataset (16-d model, one epoch). */
export function trainConfig(extra = ""): string {
  return [
    "model:",
    "  type: dsgcn",
    "  kwargs: {feature_dim: 16, hidden_dims: [8]}",
    "batch_size_per_gpu: 8",
    "total_epochs: 1",
    "prefix: data",
    "train_data:",
    "  feat_path: features/t.bin",
    "  label_path: labels/t.meta",
    `  proposal_folders: [${P0_PROPOSALS.slice("data/".length)}]`,
    extra,
  ].join("\n") + "\n";
}

/** Result of a stage run. */
export interface StageResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run a stage. */
export interface RunOptions {
  /** working directory (the case folder) */
  cwd: string;
  /** run as `nobody` (see {@linkcode unprivileged}) */
  unprivileged?: boolean;
  /** "null" discards the output (a run that will be killed) */
  output?: "piped" | "null";
}

/** A spawned stage that can be killed. */
export function spawnStage(stage: string, args: string[], options: RunOptions): Deno.ChildProcess {
  const deno = Deno.execPath();
  const argv = ["run", "-A", `${REPO}/stages/${stage}.ts`, ...args];
  const env: Record<string, string> = { NO_COLOR: "1" };
  let cmd: Deno.Command;
  if (options.unprivileged && Deno.uid() === 0) {
    const home = unprivilegedHome();
    env.HOME = home;
    env.DENO_DIR = join(home, "deno");
    cmd = new Deno.Command("setpriv", {
      args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", deno, ...argv],
      cwd: options.cwd,
      env,
      clearEnv: true,
      stdout: options.output ?? "piped",
      stderr: options.output ?? "piped",
    });
  } else {
    const output = options.output ?? "piped";
    cmd = new Deno.Command(deno, { args: argv, cwd: options.cwd, env, stdout: output, stderr: output });
  }
  return cmd.spawn();
}

/** Run a stage to the end. */
export async function runIn(stage: string, args: string[], options: RunOptions): Promise<StageResult> {
  const out = await spawnStage(stage, args, options).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

let nobodyHome: string | undefined;
/** A HOME / DENO_DIR the unprivileged user can write (Deno caches its transpiled modules there). */
function unprivilegedHome(): string {
  if (!nobodyHome) {
    nobodyHome = Deno.makeTempDirSync({ prefix: "ltc-nobody-" });
    Deno.chmodSync(nobodyHome, 0o777);
  }
  return nobodyHome;
}

/** Remove the unprivileged user's HOME (its Deno cache), if one was made. */
export function removeUnprivilegedHome(): void {
  if (nobodyHome) Deno.removeSync(nobodyHome, { recursive: true });
  nobodyHome = undefined;
}

/**
 * Whether cases that need file permissions to bite can run here, and if not why: as root they run under
 * `setpriv --reuid=nobody`, which needs setpriv and a Deno binary and repo that `nobody` can read.
 */
export async function unprivileged(): Promise<{ ok: true } | { ok: false; why: string }> {
  if (Deno.uid() !== 0) return { ok: true };
  const dir = Deno.makeTempDirSync({ prefix: "ltc-probe-" });
  Deno.chmodSync(dir, 0o755);
  try {
    const r = await runIn("evaluate", ["--help"], { cwd: dir, unprivileged: true });
    if (r.code === 0) return { ok: true };
    return {
      ok: false,
      why: `'setpriv --reuid=nobody deno' failed (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}`,
    };
  } catch (err) {
    return { ok: false, why: `cannot run setpriv: ${(err as Error).message}` };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Make a case folder readable by everyone (the unprivileged user must read the inputs, not write anywhere). */
export function openForReading(dir: string): void {
  Deno.chmodSync(dir, 0o755);
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) openForReading(p);
    else if (e.isFile) Deno.chmodSync(p, 0o644);
  }
}

/** Copy a folder tree (files and folders only). */
export function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    const a = join(from, e.name), b = join(to, e.name);
    if (e.isDirectory) copyTree(a, b);
    else if (e.isFile) Deno.copyFileSync(a, b);
  }
}

/** One file of a snapshot. */
export interface FileState {
  sha256: string;
  mtime: number;
}

/** Every file under `dir` (path relative to it → content hash and mtime), and every folder. */
export function snapshot(dir: string): { files: Map<string, FileState>; dirs: Set<string> } {
  const tree = listTree(dir);
  const files = new Map<string, FileState>();
  for (const rel of tree.files) {
    const p = join(dir, rel);
    const st = Deno.statSync(p);
    const hash = Deno.lstatSync(p).isFile
      ? createHash("sha256").update(Deno.readFileSync(p)).digest("hex")
      : "(not a file)";
    files.set(rel, { sha256: hash, mtime: st.mtime?.getTime() ?? 0 });
  }
  return { files, dirs: new Set(tree.dirs) };
}

/**
 * What changed between two snapshots: files that appeared (final artifacts or temp files left behind), files that
 * changed or vanished, and folders that appeared holding anything.
 */
export function snapshotChanges(
  before: ReturnType<typeof snapshot>,
  after: ReturnType<typeof snapshot>,
): string[] {
  const out: string[] = [];
  for (const [p, s] of after.files) {
    const b = before.files.get(p);
    if (!b) out.push(`new file ${p}`);
    else if (b.sha256 !== s.sha256) out.push(`changed ${p}`);
    else if (b.mtime !== s.mtime) out.push(`rewritten (same bytes) ${p}`);
  }
  for (const p of before.files.keys()) if (!after.files.has(p)) out.push(`removed ${p}`);
  return out;
}

/** Check a failed run: exit 2, one `error:` line, no stack trace. Returns the error line or what is wrong. */
export function oneErrorLine(r: StageResult): { line: string } | { problem: string } {
  if (r.code !== 2) return { problem: `exit ${r.code}, expected 2` };
  const lines = r.stderr.split("\n");
  const errors = lines.filter((l) => l.startsWith("error:"));
  if (errors.length !== 1) return { problem: `${errors.length} 'error:' lines, expected 1` };
  if (lines.some((l) => /^\s+at /.test(l) || /Uncaught|Stack backtrace/.test(l))) {
    return { problem: "a stack trace was printed" };
  }
  return { line: errors[0]! };
}

// ---- the base dataset -------------------------------------------------------------------------------------------

/** Clustered features (N × DIM, ten per identity, round-robin) and their labels. */
export function writeDataset(dir: string, options: { n?: number; dim?: number; seed?: number } = {}): void {
  const n = options.n ?? N, dim = options.dim ?? DIM;
  const rng = new Rng(options.seed ?? 7);
  const ids = Math.ceil(n / 10);
  const centres = Array.from({ length: ids }, () => Float32Array.from({ length: dim }, () => rng.normal()));
  const data = new Float32Array(n * dim);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % ids;
    labels.push(c);
    for (let j = 0; j < dim; j++) data[i * dim + j] = centres[c]![j]! + 0.3 * rng.normal();
  }
  Deno.mkdirSync(join(dir, "data/features"), { recursive: true });
  Deno.mkdirSync(join(dir, "data/labels"), { recursive: true });
  Deno.writeFileSync(join(dir, "data/features/t.bin"), new Uint8Array(data.buffer));
  Deno.writeTextFileSync(join(dir, "data/labels/t.meta"), labels.join("\n") + "\n");
}

/**
 * Build the base dataset in `dir` through the stages — features and labels, the kNN file, iteration-0 proposals,
 * a random-model detection (`work/`), a one-epoch training run (`train/latest.npz`, our checkpoint format) — and
 * fail loudly if any of them does not succeed, so that every bad-input case starts from inputs that work.
 */
export async function buildBase(dir: string): Promise<void> {
  writeDataset(dir);
  Deno.mkdirSync(join(dir, "configs"));
  Deno.writeTextFileSync(join(dir, "configs/train.yaml"), trainConfig());
  const steps: [string, string[]][] = [
    ["knn", [...DATA_ARGS, "--k", String(K), "--backend", "cpu"]],
    ["proposals", PROPOSAL_ARGS],
    ["detect", [...DETECT_ARGS.slice(0, -4), "--work-dir", "work", "--label-path", LABELS, "--backend", "cpu"]],
    ["train", ["--config", "configs/train.yaml", "--work-dir", "train", "--backend", "cpu"]],
  ];
  for (const [stage, args] of steps) {
    const r = await runIn(stage, args, { cwd: dir });
    if (r.code !== 0) throw new Error(`base dataset: ${stage} ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
  }
}

// ---- file surgery -----------------------------------------------------------------------------------------------

/** Cut a file to `keep` bytes (negative: drop that many from the end). */
export function truncateFile(path: string, keep: number): void {
  const b = Deno.readFileSync(path);
  Deno.writeFileSync(path, b.subarray(0, keep < 0 ? b.length + keep : keep));
}

/** XOR one byte of a file (negative offsets count from the end). */
export function flipByte(path: string, offset: number, options: { xor?: number } = {}): void {
  const xor = options.xor ?? 0xff;
  const b = Deno.readFileSync(path);
  const at = offset < 0 ? b.length + offset : offset;
  b[at] = b[at]! ^ xor;
  Deno.writeFileSync(path, b);
}

/** Set float32 element `at` of a raw `.bin` file to `to`. */
export function setFloat(path: string, where: { at: number; to: number }): void {
  const b = Deno.readFileSync(path);
  new DataView(b.buffer).setFloat32(4 * where.at, where.to, true);
  Deno.writeFileSync(path, b);
}

/** Replace bytes `find` (text, first occurrence) by `repl` of the same length. */
export function patchText(bytes: Uint8Array, edit: { find: string; repl: string }): Uint8Array {
  const { find, repl } = edit;
  if (find.length !== repl.length) throw new Error("patchText keeps lengths");
  const hay = new TextDecoder("latin1").decode(bytes);
  const at = hay.indexOf(find);
  if (at < 0) throw new Error(`'${find}' not found`);
  const out = bytes.slice();
  out.set(new TextEncoder().encode(repl), at);
  return out;
}

/**
 * Rewrite member `member` of a zip archive (`.npz`, zip `.pth`) with `edit` (null drops it) and re-pack the archive
 * with valid CRCs, so the member's own parser is what meets the damage.
 */
export function editZipMember(
  path: string,
  change: { member: string; edit: (bytes: Uint8Array) => Uint8Array | null },
): void {
  const { member, edit } = change;
  const bytes = Deno.readFileSync(path);
  const entries = [...readZip(bytes, path).values()];
  const compress = entries.some((e) => e.method === 8);
  const members = [];
  let found = false;
  for (const e of entries) {
    if (e.name !== member && !e.name.endsWith(`/${member}`)) {
      members.push({ name: e.name, chunks: [e.read()] });
      continue;
    }
    found = true;
    const edited = edit(e.read());
    if (edited) members.push({ name: e.name, chunks: [edited] });
  }
  if (!found) throw new Error(`${path} has no member ${member}`);
  Deno.writeFileSync(path, concat(buildZip(members, { compress })));
}

/** Write a `.npz` holding `arrays` (stored, like `np.savez`, so member surgery stays readable). */
export function writeNpzFile(
  path: string,
  arrays: Record<string, NdArray>,
  options: { compress?: boolean } = {},
): void {
  const compress = options.compress ?? true;
  Deno.mkdirSync(dirname(path), { recursive: true });
  const members = Object.entries(arrays).map(([k, a]) => ({ name: `${k}.npy`, chunks: encodeNpy(a) }));
  Deno.writeFileSync(path, concat(buildZip(members, { compress })));
}

/** A small valid kNN graph over `n` rows (row i: itself, then i+1, i+2, …), to be spoiled by the caller. */
export function ringKnn(n: number, k: number): KnnGraph {
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) nbrs[i * k + j] = (i + j) % n, dists[i * k + j] = j / 20;
  return { n, k, nbrs, dists };
}

/**
 * Write a kNN file with the knn stage's bytes (but no sidecar: the reader takes it as one of the original's).
 * `writeNpz` of `knnToArray` gives the same bytes as the stage's `writeKnn` (tests/knn_test.ts), synchronously.
 */
export function writeKnnFile(path: string, graph: KnnGraph): void {
  writeNpz(path, { data: knnToArray(graph) });
}
