/**
 * The fuzz cases of `fuzz_test.ts`: seeded mutations of the format fixtures (`.npy`, `.npz` archives and their
 * members, PyTorch checkpoints in both containers and their pickles) fed to the readers. Case `i` of seed `s` is a
 * pure function of `(s, i)`, so a failure printed by the test is reproduced by {@linkcode runFuzzCase} alone.
 * @module
 */
import { join } from "node:path";
import { LtcError } from "../shared/errors.ts";
import { knnToArray, readKnn } from "../shared/knn_file.ts";
import { NpzFile, parseNpy, writeNpz } from "../shared/npy.ts";
import { unpickle } from "../shared/pickle.ts";
import { Rng } from "../shared/random.ts";
import { readStateDict, readTorchCheckpoint } from "../shared/torch.ts";
import { buildZip, readZip } from "../shared/zip.ts";
import { readPredScores } from "../cluster/deoverlap.ts";
import { loadCheckpoint } from "../gpu/gcn/checkpoint.ts";

/** How a target's bytes reach a reader. */
type ReadFn = (bytes: Uint8Array, file: string) => void;

/** One fixture the fuzzer mutates, and the readers its mutants go through. */
export interface FuzzTarget {
  /** e.g. `npy:f4_c.npy`, `npz-member:stored.npz/a` */
  name: string;
  /** the unmutated bytes (for a member target: the member's bytes) */
  bytes: Uint8Array;
  /** "npy" payloads get header-text edits, "zip" containers get structure-field edits */
  format: "npy" | "zip" | "pickle" | "raw";
  /** mutations land in the first `hot` bytes half of the time (headers, pickles) */
  hot: number;
  /** how much of the case mix this target gets */
  weight: number;
  read: ReadFn;
}

/** Write `bytes` to `file` and hand the file to `fn` (readers that open files themselves). */
function viaFile(fn: (file: string) => void): ReadFn {
  return (bytes, file) => {
    Deno.writeFileSync(file, bytes);
    fn(file);
  };
}

/** Every member of an archive, parsed. */
function readAllMembers(file: string): void {
  const npz = new NpzFile(file);
  for (const key of npz.keys()) npz.get(key);
}

/** A member target: mutants of member `name` are put back into an otherwise intact archive (valid CRC). */
function memberTarget(
  archive: { label: string; bytes: Uint8Array; compress: boolean },
  member: { name: string; format: FuzzTarget["format"]; hot: number; weight: number; read: ReadFn },
): FuzzTarget {
  const zip = readZip(archive.bytes, archive.label);
  const members = [...zip.values()].map((e) => ({ name: e.name, bytes: e.read() }));
  const own = members.find((m) => m.name === member.name);
  if (!own) throw new Error(`${archive.label} has no member ${member.name}`);
  return {
    name: `${member.format === "pickle" ? "pickle" : "npz"}-member:${archive.label}/${member.name}`,
    bytes: own.bytes,
    format: member.format,
    hot: member.hot,
    weight: member.weight,
    read(mutant, file) {
      const chunks = members.map((m) => ({ name: m.name, chunks: [m.name === member.name ? mutant : m.bytes] }));
      member.read(Uint8Array.from(concatAll(buildZip(chunks, { compress: archive.compress }))), file);
    },
  };
}

function concatAll(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) out.set(c, o), o += c.length;
  return out;
}

/** Options of {@linkcode loadFuzzTargets}. */
export interface FuzzTargetOptions {
  /** the repo's `fixtures/npy` folder */
  npyDir: string;
  /** `../shared/fixtures/gcn_d`, when present (the original's checkpoints) */
  gcnDir?: string;
}

/** The fixtures and their readers. */
export function loadFuzzTargets(options: FuzzTargetOptions): FuzzTarget[] {
  const targets: FuzzTarget[] = [];
  const { npyDir, gcnDir } = options;
  const npyFiles = [...Deno.readDirSync(npyDir)].map((e) => e.name).sort();
  for (const f of npyFiles.filter((f) => f.endsWith(".npy"))) {
    targets.push({
      name: `npy:${f}`,
      bytes: Deno.readFileSync(join(npyDir, f)),
      format: "npy",
      hot: 128,
      weight: 2,
      read: (bytes, file) => void parseNpy(bytes, file),
    });
  }
  const knnRead = viaFile((file) => void readKnn(file));
  const npzReaders: Record<string, ReadFn> = {
    "knn_dense.npz": knnRead,
    "knn_ragged.npz": knnRead,
    "pred_scores.npz": viaFile((file) => void readPredScores(file)),
  };
  for (const f of npyFiles.filter((f) => f.endsWith(".npz"))) {
    const bytes = Deno.readFileSync(join(npyDir, f));
    const read = npzReaders[f] ?? viaFile(readAllMembers);
    targets.push({ name: `npz:${f}`, bytes, format: "zip", hot: 64, weight: 6, read });
    const zip = readZip(bytes, f);
    const compress = [...zip.values()].some((e) => e.method === 8);
    for (const e of zip.values()) {
      const isMeta = f === "pred_scores.npz" && e.name === "meta.npy";
      targets.push(memberTarget({ label: f, bytes, compress }, {
        name: e.name,
        format: "npy",
        hot: 256,
        weight: isMeta ? 8 : 4,
        read,
      }));
    }
  }
  // A kNN file as the knn stage writes it (deflated, float64 (N, 2, k)), read by the streaming reader.
  const knnDir = Deno.makeTempDirSync({ prefix: "ltc-fuzz-knn-" });
  const n = 24, k = 4;
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) nbrs[i * k + j] = (i + j) % n, dists[i * k + j] = j / 8;
  }
  // the bytes the knn stage's writeKnn writes, synchronously (the same as writeNpz of knnToArray)
  writeNpz(join(knnDir, "faiss_k_4.npz"), { data: knnToArray({ n, k, nbrs, dists }) });
  const ours = Deno.readFileSync(join(knnDir, "faiss_k_4.npz"));
  Deno.removeSync(knnDir, { recursive: true });
  targets.push({ name: "npz:ours_faiss_k_4.npz", bytes: ours, format: "zip", hot: 64, weight: 8, read: knnRead });
  targets.push(memberTarget({ label: "ours_faiss_k_4.npz", bytes: ours, compress: true }, {
    name: "data.npy",
    format: "npy",
    hot: 128,
    weight: 10,
    read: knnRead,
  }));
  if (gcnDir) {
    const stateDict = viaFile((file) => void readStateDict(file));
    const checkpoint = viaFile((file) => void loadCheckpoint(file, { featureDim: 256 }));
    for (const f of ["gcn_d_zip.pth", "gcn_d_prefixed.pth"]) {
      const bytes = Deno.readFileSync(join(gcnDir, f));
      targets.push({ name: `pth:${f}`, bytes, format: "zip", hot: 0, weight: 6, read: stateDict });
      const pkl = [...readZip(bytes, f).keys()].find((name) => name.endsWith("/data.pkl"))!;
      targets.push(memberTarget({ label: f, bytes, compress: false }, {
        name: pkl,
        format: "pickle",
        hot: 1 << 20,
        weight: 14,
        read: f === "gcn_d_zip.pth" ? checkpoint : stateDict,
      }));
    }
    const legacy = Deno.readFileSync(join(gcnDir, "gcn_d_legacy.pth"));
    targets.push({
      name: "pth:gcn_d_legacy.pth",
      bytes: legacy,
      format: "pickle",
      hot: 1400, // the five pickles; the raw storages follow
      weight: 16,
      read: (bytes, file) => void readTorchCheckpoint(file, bytes),
    });
    targets.push({
      name: "pth:gcn_d_legacy.pth(load)",
      bytes: legacy,
      format: "pickle",
      hot: 1400,
      weight: 4,
      read: checkpoint,
    });
    // The object pickle of the zip checkpoint on its own, through the plain (numpy allow-list) reader.
    const zipPkl = [...readZip(Deno.readFileSync(join(gcnDir, "gcn_d_zip.pth")), "zip").values()]
      .find((e) => e.name.endsWith("/data.pkl"))!.read();
    targets.push({
      name: "pickle:gcn_d_zip/data.pkl",
      bytes: zipPkl,
      format: "pickle",
      hot: 1 << 20,
      weight: 6,
      read: (bytes, file) => void unpickle(bytes, 0, { path: file }),
    });
  }
  return targets;
}

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/** One mutation applied to a copy of the bytes, with a description to reproduce it by hand. */
function mutateOnce(bytes: Uint8Array, by: { target: FuzzTarget; rng: Rng }): { bytes: Uint8Array; what: string } {
  const { target, rng } = by;
  const len = bytes.length;
  const pos = (span = 1) => {
    const hotEnd = Math.min(target.hot, len);
    const limit = Math.max(1, (rng.next() < 0.5 && hotEnd > 0 ? hotEnd : len) - span + 1);
    return rng.int(limit);
  };
  const op = rng.int(target.format === "raw" ? 6 : 8);
  switch (op) {
    case 0: { // flip 1..4 bytes
      const out = bytes.slice();
      const where: string[] = [];
      for (let t = 1 + rng.int(4); t > 0 && len > 0; t--) {
        const p = pos(), x = 1 + rng.int(255);
        out[p] = out[p]! ^ x;
        where.push(`${p}^${x}`);
      }
      return { bytes: out, what: `flip ${where.join(",")}` };
    }
    case 1: { // truncate
      const cut = rng.next() < 0.5 ? pos() : rng.int(len + 1);
      return { bytes: bytes.slice(0, cut), what: `truncate to ${cut}` };
    }
    case 2: { // insert random bytes
      const p = len ? pos() : 0, m = 1 + rng.int(16);
      const ins = Uint8Array.from({ length: m }, () => rng.int(256));
      const out = new Uint8Array(len + m);
      out.set(bytes.subarray(0, p)), out.set(ins, p), out.set(bytes.subarray(p), p + m);
      return { bytes: out, what: `insert ${m} bytes at ${p}` };
    }
    case 3: { // delete a span
      const m = 1 + rng.int(Math.min(16, Math.max(1, len))), p = pos(m);
      const out = new Uint8Array(Math.max(0, len - m));
      out.set(bytes.subarray(0, p)), out.set(bytes.subarray(p + m), p);
      return { bytes: out, what: `delete ${m} bytes at ${p}` };
    }
    case 4: { // an interesting little-endian integer over 1, 2, 4 or 8 bytes
      const w = [1, 2, 4, 8][rng.int(4)]!;
      if (len < w) return { bytes: bytes.slice(), what: "noop (too short)" };
      const p = pos(w), v = BigInt(INTERESTING[rng.int(INTERESTING.length)]!) + BigInt(rng.int(3) - 1);
      const out = bytes.slice();
      const dv = new DataView(out.buffer);
      if (w === 1) dv.setUint8(p, Number(BigInt.asUintN(8, v)));
      else if (w === 2) dv.setUint16(p, Number(BigInt.asUintN(16, v)), true);
      else if (w === 4) dv.setUint32(p, Number(BigInt.asUintN(32, v)), true);
      else dv.setBigUint64(p, BigInt.asUintN(64, v), true);
      return { bytes: out, what: `set u${8 * w} at ${p} to ${v}` };
    }
    case 5: { // duplicate a span in place of another
      if (len < 2) return { bytes: bytes.slice(), what: "noop (too short)" };
      const m = 1 + rng.int(Math.min(32, len - 1)), from = pos(m), to = pos(m);
      const out = bytes.slice();
      out.set(bytes.subarray(from, from + m), to);
      return { bytes: out, what: `copy ${m} bytes ${from}→${to}` };
    }
    default:
      return fieldEdit(bytes, by);
  }
}

/** Edit a field the format defines: the npy header's dict, a zip record's sizes and offsets, a pickle opcode. */
function fieldEdit(bytes: Uint8Array, by: { target: FuzzTarget; rng: Rng }): { bytes: Uint8Array; what: string } {
  const { target, rng } = by;
  if (target.format === "npy") {
    const text = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 256)));
    const edits: [RegExp, string[]][] = [
      [/'descr': '[^']*'/, ["'descr': '<f2'", "'descr': '>f8'", "'descr': '|O'", "'descr': '<V8'", "'descr': ''"]],
      [/'shape': \([^)]*\)/, [
        "'shape': (99999999999,)",
        "'shape': (-3,)",
        "'shape': (0,)",
        "'shape': ()",
        "'shape': (2, 2, 2, 2, 2, 2)",
        "'shape': (1e3,)",
        "'shape': (4294967296, 4294967296)",
      ]],
      [/'fortran_order': (True|False)/, ["'fortran_order': True", "'fortran_order': None"]],
    ];
    const [re, choices] = edits[rng.int(edits.length)]!;
    const m = re.exec(text);
    if (!m) return { bytes: bytes.slice(), what: "noop (no header field)" };
    const repl = choices[rng.int(choices.length)]!;
    const head = new TextEncoder().encode(repl);
    const out = new Uint8Array(bytes.length - m[0].length + head.length);
    out.set(bytes.subarray(0, m.index)), out.set(head, m.index);
    out.set(bytes.subarray(m.index + m[0].length), m.index + head.length);
    return { bytes: out, what: `npy header ${m[0]} → ${repl}` };
  }
  if (target.format === "zip") {
    const fields = zipFields(bytes);
    if (fields.length === 0) return { bytes: bytes.slice(), what: "noop (no zip records)" };
    const f = fields[rng.int(fields.length)]!;
    const v = [0, 1, 0xffff, 0xffffffff, bytes.length, bytes.length + 1, rng.int(bytes.length + 1)][rng.int(7)]!;
    const out = bytes.slice();
    const dv = new DataView(out.buffer);
    if (f.width === 2) dv.setUint16(f.at, v & 0xffff, true);
    else dv.setUint32(f.at, v >>> 0, true);
    return { bytes: out, what: `zip ${f.name} at ${f.at} := ${v}` };
  }
  // pickle: an integer operand (shapes, strides, offsets, element counts) becomes an extreme BININT
  if (rng.next() < 0.5) {
    const hot = Math.min(bytes.length, target.hot);
    const sites: number[] = [];
    const widths: Record<number, number> = { 0x4b: 2, 0x4d: 3, 0x4a: 5 };
    for (let i = 0; i < hot; i++) if (i + (widths[bytes[i]!] ?? Infinity) <= bytes.length) sites.push(i);
    if (sites.length) {
      const at = sites[rng.int(sites.length)]!;
      const width = widths[bytes[at]!]!;
      const v = [-1, -2, 0, 0x7fffffff, -0x80000000, 1 << 20, 3, 0x10000][rng.int(8)]!;
      const op = new Uint8Array(5);
      op[0] = 0x4a;
      new DataView(op.buffer).setInt32(1, v, true);
      const out = new Uint8Array(bytes.length - width + 5);
      out.set(bytes.subarray(0, at)), out.set(op, at), out.set(bytes.subarray(at + width), at + 5);
      return { bytes: out, what: `int operand at ${at} := BININT ${v}` };
    }
  }
  // pickle: replace one opcode byte by another opcode the reader knows (or one it does not)
  const ops = [0x28, 0x29, 0x2e, 0x30, 0x31, 0x32, 0x4e, 0x51, 0x52, 0x5d, 0x61, 0x62, 0x65, 0x68, 0x71, 0x73];
  const extra = [0x74, 0x75, 0x7d, 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x93, 0x94, 0x6c, 0x64, 0x21];
  const all = [...ops, ...extra];
  const p = rng.int(Math.max(1, Math.min(bytes.length, target.hot)));
  const out = bytes.slice();
  const v = all[rng.int(all.length)]!;
  if (out.length) out[p] = v;
  return { bytes: out, what: `byte ${p} := opcode 0x${v.toString(16)}` };
}

/** Offsets and widths of the integer fields of a zip's end record, central directory and local headers. */
function zipFields(bytes: Uint8Array): { name: string; at: number; width: 2 | 4 }[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: { name: string; at: number; width: 2 | 4 }[] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) {
    const sig = dv.getUint32(i, true);
    if (sig === 0x06054b50 && i + 22 <= bytes.length) {
      out.push({ name: "eocd.count", at: i + 10, width: 2 }, { name: "eocd.cdSize", at: i + 12, width: 4 });
      out.push({ name: "eocd.cdOffset", at: i + 16, width: 4 });
    } else if (sig === 0x02014b50 && i + 46 <= bytes.length) {
      for (
        const [name, off, width] of [["method", 10, 2], ["crc", 16, 4], ["csize", 20, 4], ["usize", 24, 4]] as const
      ) {
        out.push({ name: `cen.${name}`, at: i + off, width });
      }
      for (const [name, off, width] of [["nameLen", 28, 2], ["extraLen", 30, 2], ["localOffset", 42, 4]] as const) {
        out.push({ name: `cen.${name}`, at: i + off, width });
      }
    } else if (sig === 0x04034b50 && i + 30 <= bytes.length) {
      out.push({ name: "loc.nameLen", at: i + 26, width: 2 }, { name: "loc.extraLen", at: i + 28, width: 2 });
    }
  }
  return out;
}

/** What one case did. */
export interface FuzzOutcome {
  index: number;
  target: string;
  mutation: string;
  /** "ok": read without error; "ltc": a clear LtcError; "bug": anything else */
  result: "ok" | "ltc" | "bug";
  /** the error, for "ltc" and "bug" */
  error?: string;
}

/** Pick the target of case `i` by weight. */
function pickTarget(targets: FuzzTarget[], rng: Rng): FuzzTarget {
  const total = targets.reduce((s, t) => s + t.weight, 0);
  let r = rng.next() * total;
  for (const t of targets) {
    r -= t.weight;
    if (r < 0) return t;
  }
  return targets[targets.length - 1]!;
}

/**
 * Run case `index` of `seed`: 1–3 mutations of one target, then its reader on a file in `tmpDir`. An LtcError
 * must name the file it was given.
 */
export function runFuzzCase(
  targets: FuzzTarget[],
  where: { seed: number; index: number; tmpDir: string },
): FuzzOutcome {
  const rng = new Rng(where.seed, where.index);
  const target = pickTarget(targets, rng);
  let bytes = target.bytes;
  const what: string[] = [];
  for (let t = 1 + rng.int(3); t > 0; t--) {
    const m = mutateOnce(bytes, { target, rng });
    bytes = m.bytes;
    what.push(m.what);
  }
  const file = join(where.tmpDir, `case_${where.index}.${target.name.includes(".pth") ? "pth" : "npz"}`);
  const base = { index: where.index, target: target.name, mutation: what.join("; ") };
  try {
    target.read(bytes, file);
    return { ...base, result: "ok" };
  } catch (err) {
    if (err instanceof LtcError) {
      if (!err.message.includes(file)) {
        return { ...base, result: "bug", error: `LtcError does not name the file: ${err.message}` };
      }
      return { ...base, result: "ltc", error: err.message };
    }
    const e = err as Error;
    return {
      ...base,
      result: "bug",
      error: `${e?.name}: ${e?.message}\n${e?.stack?.split("\n").slice(1, 4).join("\n")}`,
    };
  } finally {
    try {
      Deno.removeSync(file);
    } catch { /* in-memory target */ }
  }
}
