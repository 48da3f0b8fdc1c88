/**
 * Minimal ZIP archive reader and writer: exactly what `.npz` files (numpy `savez` / `savez_compressed`) and PyTorch's
 * zip checkpoints need. Stored and deflated members, ZIP64 sizes and offsets. Writing uses a fixed timestamp so the
 * same arrays always give byte-identical archives.
 * @module
 */
import zlib from "node:zlib";
import { LtcError } from "./errors.ts";
import { Inflate } from "fflate";

/** One member of an archive, decompressed on demand. */
export interface ZipEntry {
  /** member name as stored */
  name: string;
  /** 0 = stored, 8 = deflated */
  method: number;
  /** uncompressed size in bytes */
  size: number;
  /** decompress (or slice) the member and check its CRC */
  read(): Uint8Array;
  /**
   * Decompress the member piece by piece, handing each piece to `sink` in order, then check its size and CRC —
   * for members too large to hold inflated next to the archive. A `sink` may throw to stop early.
   */
  readChunks(sink: (chunk: Uint8Array) => void): void;
}

/** Compressed bytes fed to the streaming inflater at a time. */
const STREAM_STEP = 1 << 18;

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOC = 0x07064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;

/** Parse the central directory of `bytes`; `path` only names the file in errors. */
export function readZip(bytes: Uint8Array, path: string): Map<string, ZipEntry> {
  const bad = (what: string) => new LtcError(`${path}: corrupt or truncated zip archive (${what})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 22) throw bad("too short for an end-of-central-directory record");
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad("no end-of-central-directory record");
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || view.getUint32(loc, true) !== SIG_EOCD64_LOC) throw bad("missing ZIP64 locator");
    const e64 = Number(view.getBigUint64(loc + 8, true));
    if (e64 + 56 > bytes.length || view.getUint32(e64, true) !== SIG_EOCD64) throw bad("bad ZIP64 record");
    count = Number(view.getBigUint64(e64 + 32, true));
    cdSize = Number(view.getBigUint64(e64 + 40, true));
    cdOffset = Number(view.getBigUint64(e64 + 48, true));
  }
  if (cdOffset + cdSize > bytes.length) throw bad("central directory past end of file");
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== SIG_CEN) throw bad("bad central directory entry");
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let csize = view.getUint32(p + 20, true);
    let usize = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > bytes.length) throw bad("central directory entry past end of file");
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extra field (id 1): only the fields saturated in the fixed header are present, in this order.
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = view.getUint16(q, true);
      const len = view.getUint16(q + 2, true);
      if (id === 1) {
        let r = q + 4;
        const saturated = [usize, csize, localOffset].filter((v) => v === 0xffffffff).length;
        if (len < 8 * saturated || q + 4 + len > extraEnd) throw bad(`bad ZIP64 extra field for ${name}`);
        if (usize === 0xffffffff) usize = Number(view.getBigUint64(r, true)), r += 8;
        if (csize === 0xffffffff) csize = Number(view.getBigUint64(r, true)), r += 8;
        if (localOffset === 0xffffffff) localOffset = Number(view.getBigUint64(r, true));
      }
      q += 4 + len;
    }
    p = extraEnd + commentLen;
    if (method !== 0 && method !== 8) {
      throw new LtcError(`${path}: member ${name} uses unsupported compression ${method}`);
    }
    if (localOffset + 30 > bytes.length || view.getUint32(localOffset, true) !== SIG_LOC) {
      throw bad(`bad local header for ${name}`);
    }
    const dataStart = localOffset + 30 + view.getUint16(localOffset + 26, true) +
      view.getUint16(localOffset + 28, true);
    if (dataStart + csize > bytes.length) throw bad(`member ${name} runs past end of file`);
    const raw = () => bytes.subarray(dataStart, dataStart + csize);
    const verify = (length: number, sum: number) => {
      if (length !== usize) throw bad(`member ${name} has ${length} bytes, header says ${usize}`);
      if ((sum >>> 0) !== crc) throw bad(`member ${name} fails its CRC check`);
    };
    entries.set(name, {
      name,
      method,
      size: usize,
      read() {
        let out: Uint8Array;
        if (method === 0) out = raw();
        else {
          try {
            out = zlib.inflateRawSync(raw());
          } catch (err) {
            throw bad(`member ${name} does not inflate: ${(err as Error).message}`);
          }
        }
        verify(out.length, zlib.crc32(out));
        return out;
      },
      readChunks(sink) {
        const input = raw();
        let got = 0, sum = 0, inSink = false;
        const take = (chunk: Uint8Array) => {
          got += chunk.length;
          sum = zlib.crc32(chunk, sum);
          inSink = true;
          sink(chunk);
          inSink = false;
        };
        if (method === 0) {
          for (let p = 0; p < input.length; p += STREAM_STEP) take(input.subarray(p, p + STREAM_STEP));
        } else {
          let ended = false;
          const inflater = new Inflate((chunk, final) => {
            if (chunk.length > 0) take(chunk);
            if (final) ended = true;
          });
          try {
            let p = 0;
            do {
              const end = Math.min(input.length, p + STREAM_STEP);
              inflater.push(input.subarray(p, end), end >= input.length);
              p = end;
            } while (p < input.length);
          } catch (err) {
            if (inSink) throw err; // the sink's own verdict, not the inflater's
            throw bad(`member ${name} does not inflate: ${(err as Error).message}`);
          }
          if (!ended) throw bad(`member ${name} does not inflate: unexpected end of data`);
        }
        verify(got, sum);
      },
    });
  }
  return entries;
}

/** Input bytes per independently deflated piece of a member (fixed: the archive's bytes never depend on threads). */
export const DEFLATE_PIECE = 1 << 22;

/**
 * Raw deflate of one piece at zlib `level`: the `last` piece ends the stream, any other ends with a sync flush
 * (byte-aligned, not final), so the pieces concatenate into one stream.
 */
export function deflatePiece(piece: Uint8Array, options: { level: number; last: boolean }): Uint8Array {
  const out = zlib.deflateRawSync(piece, {
    level: options.level,
    finishFlush: options.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.length); // a plain view, as pieces from workers arrive
}

/** A deflated member: its compressed pieces in order, the CRC-32 and the length of its uncompressed bytes. */
export interface DeflatedMember {
  body: Uint8Array[];
  crc: number;
  size: number;
}

/**
 * A member's bytes made on demand, a piece at a time (piece p: bytes [p·{@linkcode DEFLATE_PIECE}, (p+1)·…) of
 * `size`), so that a large member (a kNN file at millions of rows: 6.7 GB of float64) never exists whole.
 */
export interface MemberPieces {
  size: number;
  /** the bytes of piece p, in a buffer of their own (the deflater may hand it to a worker) */
  piece(p: number): Uint8Array;
}

/** Number of pieces a member of `bytes` is cut into (at least one, for the empty member). */
function pieceCount(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / DEFLATE_PIECE));
}

/** Bytes as pieces: views of `data` (not their own buffers; the parallel deflater copies them). */
function viewPieces(data: Uint8Array): MemberPieces {
  return { size: data.length, piece: (p) => data.subarray(p * DEFLATE_PIECE, (p + 1) * DEFLATE_PIECE) };
}

/** Deflate a member on this thread, piece by piece (the same bytes as {@linkcode deflateMemberParallel}). */
export function deflateMember(data: Uint8Array | MemberPieces, level = 6): DeflatedMember {
  const src = data instanceof Uint8Array ? viewPieces(data) : data;
  const body: Uint8Array[] = [];
  const pieces = pieceCount(src.size);
  let crc = 0;
  for (let p = 0; p < pieces; p++) {
    const piece = src.piece(p);
    crc = zlib.crc32(piece, crc);
    body.push(deflatePiece(piece, { level, last: p === pieces - 1 }));
  }
  return { body, crc: crc >>> 0, size: src.size };
}

/**
 * Worker threads for {@linkcode deflateMemberParallel}: `LTC_DEFLATE_WORKERS` when set, else the machine's logical
 * cores (at most 16).
 */
export function deflateWorkers(): number {
  const env = Number(Deno.env.get("LTC_DEFLATE_WORKERS"));
  if (Number.isInteger(env) && env >= 1) return env;
  return Math.max(1, Math.min(16, navigator.hardwareConcurrency || 1));
}

/**
 * Deflate a member on worker threads, a piece per task: the same bytes as {@linkcode deflateMember}. Pieces of a
 * member in a SharedArrayBuffer are read by the workers in place; pieces made on demand ({@linkcode MemberPieces})
 * are handed over (transferred) one per task, so at most one piece per worker exists at a time; other bytes are
 * copied piece by piece. The CRC is computed here, piece by piece in order, while the workers run. One worker or one
 * piece: no threads at all.
 */
export async function deflateMemberParallel(
  data: Uint8Array | MemberPieces,
  options: { level?: number; workers?: number } = {},
): Promise<DeflatedMember> {
  const level = options.level ?? 6;
  const src = data instanceof Uint8Array ? viewPieces(data) : data;
  const pieces = pieceCount(src.size);
  const threads = Math.min(pieces, options.workers ?? deflateWorkers());
  if (threads <= 1) return deflateMember(data, level);
  const body = new Array<Uint8Array>(pieces);
  const shared = data instanceof Uint8Array && data.buffer instanceof SharedArrayBuffer;
  const workers: Worker[] = [];
  let next = 0, crc = 0;
  try {
    const done = new Promise<void>((resolve, reject) => {
      let finished = 0;
      const give = (w: Worker) => {
        if (next >= pieces) return;
        const p = next++; // pieces are given in order: the CRC chains through them
        const task = { piece: p, level, last: p === pieces - 1 };
        const piece = src.piece(p);
        crc = zlib.crc32(piece, crc);
        if (shared) {
          w.postMessage({ ...task, buffer: piece.buffer, byteOffset: piece.byteOffset, byteLength: piece.length });
          return;
        }
        const own = data instanceof Uint8Array ? piece.slice() : piece;
        w.postMessage({ ...task, buffer: own.buffer, byteOffset: own.byteOffset, byteLength: own.length }, [
          own.buffer as ArrayBuffer,
        ]);
      };
      for (let t = 0; t < threads; t++) {
        const w = new Worker(new URL("./deflate_worker.ts", import.meta.url), { type: "module" });
        workers.push(w);
        w.onmessage = (e: MessageEvent<{ piece: number; out?: Uint8Array; error?: string }>) => {
          if (e.data.error !== undefined) return reject(new Error(`deflate worker: ${e.data.error}`));
          body[e.data.piece] = e.data.out!;
          if (++finished === pieces) resolve();
          else give(w);
        };
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`deflate worker: ${e.message}`));
        };
        give(w);
      }
    });
    await done;
    return { body, crc: crc >>> 0, size: src.size };
  } finally {
    for (const w of workers) w.terminate();
  }
}

/** A member to write: its bytes as one or more chunks (concatenated in order). */
export interface ZipMemberInput {
  name: string;
  chunks: Uint8Array[];
  /**
   * the member already deflated (by {@linkcode deflateMemberParallel}); used when the archive is compressed, and
   * then `chunks` may be empty (a member made piece by piece)
   */
  deflated?: DeflatedMember;
}

// 1980-01-01 00:00: a fixed timestamp keeps archives byte-identical from run to run.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/**
 * Build a zip archive as a list of chunks (so large members are never copied into one buffer twice).
 * `compress` deflates every member (numpy's `savez_compressed`); otherwise members are stored (`savez`).
 */
export function buildZip(members: ZipMemberInput[], options: { compress: boolean; level?: number }): Uint8Array[] {
  const out: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const usize = options.compress && m.deflated ? m.deflated.size : m.chunks.reduce((s, c) => s + c.length, 0);
    let crc: number, body: Uint8Array[];
    if (options.compress) {
      const deflated = m.deflated ??
        deflateMember(m.chunks.length === 1 ? m.chunks[0]! : concat(m.chunks), options.level ?? 6);
      ({ crc, body } = deflated);
    } else {
      crc = 0;
      for (const c of m.chunks) crc = zlib.crc32(c, crc);
      crc >>>= 0;
      body = m.chunks;
    }
    const csize = body.reduce((s, c) => s + c.length, 0);
    const name = new TextEncoder().encode(m.name);
    const zip64 = usize >= 0xffffffff || csize >= 0xffffffff || offset >= 0xffffffff;
    const method = options.compress ? 8 : 0;
    const version = zip64 ? 45 : 20;
    // local header
    const localExtra = zip64 ? 20 : 0;
    const loc = new Uint8Array(30 + name.length + localExtra);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, SIG_LOC, true);
    lv.setUint16(4, version, true);
    lv.setUint16(6, 0, true);
    lv.setUint16(8, method, true);
    lv.setUint16(10, DOS_TIME, true);
    lv.setUint16(12, DOS_DATE, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, zip64 ? 0xffffffff : csize, true);
    lv.setUint32(22, zip64 ? 0xffffffff : usize, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, localExtra, true);
    loc.set(name, 30);
    if (zip64) {
      lv.setUint16(30 + name.length, 1, true);
      lv.setUint16(32 + name.length, 16, true);
      lv.setBigUint64(34 + name.length, BigInt(usize), true);
      lv.setBigUint64(42 + name.length, BigInt(csize), true);
    }
    out.push(loc, ...body);
    // central directory entry
    const cenExtra = zip64 ? 28 : 0;
    const cen = new Uint8Array(46 + name.length + cenExtra);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, SIG_CEN, true);
    cv.setUint16(4, version, true);
    cv.setUint16(6, version, true);
    cv.setUint16(8, 0, true);
    cv.setUint16(10, method, true);
    cv.setUint16(12, DOS_TIME, true);
    cv.setUint16(14, DOS_DATE, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, zip64 ? 0xffffffff : csize, true);
    cv.setUint32(24, zip64 ? 0xffffffff : usize, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, cenExtra, true);
    cv.setUint32(38, 0o600 << 16, true);
    cv.setUint32(42, zip64 ? 0xffffffff : offset, true);
    cen.set(name, 46);
    if (zip64) {
      cv.setUint16(46 + name.length, 1, true);
      cv.setUint16(48 + name.length, 24, true);
      cv.setBigUint64(50 + name.length, BigInt(usize), true);
      cv.setBigUint64(58 + name.length, BigInt(csize), true);
      cv.setBigUint64(66 + name.length, BigInt(offset), true);
    }
    central.push(cen);
    offset += loc.length + csize;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  out.push(...central);
  const needZip64 = cdOffset >= 0xffffffff || members.length >= 0xffff;
  if (needZip64) {
    const rec = new Uint8Array(56 + 20);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, SIG_EOCD64, true);
    rv.setBigUint64(4, 44n, true);
    rv.setUint16(12, 45, true);
    rv.setUint16(14, 45, true);
    rv.setBigUint64(24, BigInt(members.length), true);
    rv.setBigUint64(32, BigInt(members.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(cdOffset), true);
    rv.setUint32(56, SIG_EOCD64_LOC, true);
    rv.setBigUint64(64, BigInt(cdOffset + cdSize), true);
    rv.setUint32(72, 1, true);
    out.push(rec);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, SIG_EOCD, true);
  ev.setUint16(8, needZip64 ? 0xffff : members.length, true);
  ev.setUint16(10, needZip64 ? 0xffff : members.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, needZip64 ? 0xffffffff : cdOffset, true);
  out.push(end);
  return out;
}

/** Concatenate byte chunks into one array. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
