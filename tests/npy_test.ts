import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  encodeNpy,
  encodeNpz,
  knnToArray,
  type NdArray,
  NpzFile,
  parseNpy,
  readKnn,
  readNpy,
  readNpzArray,
  toNumbers,
  unpickle,
  writeKnn,
  writeNpy,
  writeNpz,
} from "../shared/mod.ts";
import { pickleValue, PyFloat, PyTuple } from "../shared/pickle.ts";
import { buildZip, concat, DEFLATE_PIECE, deflateMember, deflateMemberParallel, readZip } from "../shared/zip.ts";
import { HAS_SHARED, REF, SHARED, tempDir, throwsWith } from "./_helpers.ts";

const NPY = "fixtures/npy";

Deno.test("npy: numpy-written arrays of every supported dtype read back exactly", () => {
  const f4 = readNpy(`${NPY}/f4_c.npy`);
  assert.equal(f4.dtype, "f4");
  assert.deepEqual(f4.shape, [2, 3, 4]);
  assert.equal((f4.data as Float32Array)[23], Math.fround(23 / 7));
  assert.deepEqual([...(readNpy(`${NPY}/f8_1d.npy`).data as Float64Array)], [0.5, -1.25, 3e300, 1e-310]);
  const i4 = readNpy(`${NPY}/i4.npy`);
  assert.deepEqual(i4.shape, [2, 2]);
  assert.deepEqual([...(i4.data as Int32Array)], [1, -2, 2147483647, -2147483648]);
  assert.deepEqual([...(readNpy(`${NPY}/i8.npy`).data as BigInt64Array)], [0n, -1n, 2n ** 40n, -(2n ** 40n)]);
  assert.deepEqual([...(readNpy(`${NPY}/u1.npy`).data as Uint8Array)], [0, 1, 255]);
  const b1 = readNpy(`${NPY}/b1.npy`);
  assert.equal(b1.dtype, "b1");
  assert.deepEqual([...(b1.data as Uint8Array)], [1, 0, 1]);
  const s = readNpy(`${NPY}/scalar0d.npy`);
  assert.deepEqual(s.shape, []);
  assert.deepEqual([...(s.data as Float64Array)], [2.5]);
  assert.deepEqual([...(readNpy(`${NPY}/big_endian.npy`).data as Float64Array)], [1.5, -2]);
});

Deno.test("npy: Fortran order and unknown dtypes are refused with the file named", () => {
  throwsWith(() => readNpy(`${NPY}/fortran.npy`), "fortran.npy", "Fortran");
  throwsWith(() => readNpy(`${NPY}/complex.npy`), "complex.npy", "unsupported dtype");
  throwsWith(() => parseNpy(new Uint8Array([1, 2, 3]), "x.npy"), "x.npy", "magic");
  throwsWith(() => readNpy(`${NPY}/missing.npy`), "missing.npy", "no such file");
});

Deno.test("npy: our writer round-trips and pads the header to 64 bytes like numpy", () => {
  const dir = tempDir();
  const arrs: NdArray[] = [
    { dtype: "f4", shape: [2, 2], data: new Float32Array([1, 2, 3, 4.5]) },
    { dtype: "i8", shape: [3], data: new BigInt64Array([1n, -5n, 2n ** 50n]) },
    { dtype: "f8", shape: [], data: new Float64Array([Math.PI]) },
    { dtype: "b1", shape: [2], data: new Uint8Array([1, 0]) },
  ];
  for (const [i, a] of arrs.entries()) {
    writeNpy(`${dir}/a${i}.npy`, a);
    const bytes = Deno.readFileSync(`${dir}/a${i}.npy`);
    const headerLen = bytes[8]! | (bytes[9]! << 8);
    assert.equal((10 + headerLen) % 64, 0);
    const back = readNpy(`${dir}/a${i}.npy`);
    assert.equal(back.dtype, a.dtype);
    assert.deepEqual(back.shape, a.shape);
    assert.deepEqual([...(back.data as ArrayLike<unknown> as number[])], [
      ...(a.data as ArrayLike<unknown> as number[]),
    ]);
  }
});

Deno.test("npz: numpy savez (stored) and savez_compressed (deflated) both read", () => {
  for (const name of ["stored", "compressed"]) {
    const z = new NpzFile(`${NPY}/${name}.npz`);
    assert.deepEqual(z.keys(), ["x", "y"]);
    const x = z.get("x");
    assert.deepEqual(x.shape, [2, 3, 4]);
    assert.equal((x.data as Float32Array)[5], Math.fround(5 / 7));
    assert.deepEqual([...toNumbers(z.get("y"))], [7, 8, 9]);
    throwsWith(() => z.get("nope"), `${name}.npz`, "no array 'nope'", "x, y");
  }
});

Deno.test("npz: writing is deterministic and round-trips, stored or compressed", () => {
  const dir = tempDir();
  const arrays = { data: { dtype: "f8" as const, shape: [3, 2], data: new Float64Array([1, 2, 3, 4, 5, 6]) } };
  for (const compress of [true, false]) {
    writeNpz(`${dir}/a.npz`, arrays, { compress });
    const one = Deno.readFileSync(`${dir}/a.npz`);
    writeNpz(`${dir}/a.npz`, arrays, { compress });
    assert.deepEqual(Deno.readFileSync(`${dir}/a.npz`), one);
    assert.deepEqual([...(readNpzArray(`${dir}/a.npz`).data as Float64Array)], [1, 2, 3, 4, 5, 6]);
  }
  // no temp file is left behind
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.npz"]);
});

Deno.test("npz: truncated and corrupt archives give one clear error naming the file", () => {
  const dir = tempDir();
  const good = Deno.readFileSync(`${NPY}/compressed.npz`);
  Deno.writeFileSync(`${dir}/trunc.npz`, good.subarray(0, good.length - 30));
  throwsWith(() => new NpzFile(`${dir}/trunc.npz`), "trunc.npz", "corrupt or truncated");
  const flipped = good.slice();
  flipped[60] = flipped[60]! ^ 0xff; // inside the first member's deflate stream
  Deno.writeFileSync(`${dir}/flip.npz`, flipped);
  throwsWith(() => new NpzFile(`${dir}/flip.npz`).get("x"), "flip.npz");
  Deno.writeFileSync(`${dir}/empty.npz`, new Uint8Array(0));
  throwsWith(() => new NpzFile(`${dir}/empty.npz`), "empty.npz", "corrupt or truncated");
});

Deno.test("pickle: object arrays (ragged hnsw kNN rows) and 0-d meta dicts written by numpy", () => {
  const g = readKnn(`${NPY}/knn_ragged.npz`);
  assert.equal(g.n, 3);
  assert.equal(g.k, 3);
  assert.deepEqual([...g.nbrs], [0, 2, 1, 1, 0, -1, 2, 0, 1]);
  assert.deepEqual([...g.dists], [
    0,
    Math.fround(0.1),
    Math.fround(0.3),
    0,
    Math.fround(0.3),
    1,
    0,
    Math.fround(0.1),
    Math.fround(0.4),
  ]);
  const meta = new NpzFile(`${NPY}/pred_scores.npz`).get("meta");
  assert.equal(meta.dtype, "O");
  assert.deepEqual(meta.shape, []);
  const dict = (meta.data as unknown[])[0] as Map<string, unknown>;
  assert.equal(dict.get("tot_inst_num"), 10);
  assert.deepEqual(dict.get("proposal_folders"), ["a/proposals", "b/proposals"]);
});

Deno.test("pickle: only allow-listed globals; anything else is refused without running it", () => {
  // protocol 2: GLOBAL os.system, then REDUCE — the classic code-execution pickle
  const evil = concat([
    new Uint8Array([0x80, 2]),
    new TextEncoder().encode("cos\nsystem\n"),
    new Uint8Array([0x58, 2, 0, 0, 0]),
    new TextEncoder().encode("ls"),
    new Uint8Array([0x85, 0x52, 0x2e]),
  ]);
  throwsWith(() => unpickle(evil, 0, { path: "evil.pkl" }), "evil.pkl", "os.system", "not an allowed type");
  // a tuple of primitives
  const ok = new Uint8Array([0x80, 2, 0x4b, 7, 0x88, 0x4e, 0x87, 0x2e]);
  const v = unpickle(ok).value as PyTuple;
  assert.ok(v instanceof PyTuple);
  assert.deepEqual([...v], [7, true, null]);
  throwsWith(() => unpickle(new Uint8Array([0x80, 2, 0x58, 9, 0, 0]), 0, { path: "t.pkl" }), "t.pkl", "truncated");
});

Deno.test("kNN file: the dense (N, 2, k) float64 layout reads, writes and round-trips byte-identically", async () => {
  const g = readKnn(`${NPY}/knn_dense.npz`);
  assert.deepEqual([...g.nbrs], [0, 2, 1, 1, 0, 2, 2, 0, 1]);
  const dir = tempDir();
  await writeKnn(`${dir}/k.npz`, g);
  const again = readKnn(`${dir}/k.npz`);
  assert.deepEqual(again, g);
  const z = new NpzFile(`${dir}/k.npz`).get("data");
  assert.equal(z.dtype, "f8");
  assert.deepEqual(z.shape, [3, 2, 3]);
});

Deno.test({
  name: "kNN file: the original's faiss_k_80.npz of ref_synth reads and survives a write/read round trip",
  ignore: !HAS_SHARED,
  async fn() {
    const g = readKnn(`${REF}/knns/sref/faiss_k_80.npz`);
    assert.equal(g.n, 4287);
    assert.equal(g.k, 80);
    for (let i = 0; i < g.n; i += 97) {
      assert.equal(g.nbrs[i * 80], i, "self is the first neighbour");
      for (let j = 1; j < 80; j++) assert.ok(g.dists[i * 80 + j]! >= g.dists[i * 80 + j - 1]!, "ascending distance");
    }
    const bytes = encodeNpz({ data: { dtype: "f8", shape: [1], data: new Float64Array([1]) } });
    assert.ok(bytes.length > 0);
    const dir = tempDir();
    await writeKnn(`${dir}/faiss_k_80.npz`, g);
    const orig = new NpzFile(`${REF}/knns/sref/faiss_k_80.npz`).get("data").data as Float64Array;
    const ours = new NpzFile(`${dir}/faiss_k_80.npz`).get("data").data as Float64Array;
    assert.deepEqual(ours, orig);
  },
});

Deno.test({
  name: "npz: the original's proposal node (int64) and edge (float64 E×3) files read",
  ignore: !HAS_SHARED,
  fn() {
    const dir = `${REF}/cluster_proposals/sref/faiss_k_80_th_0.7_step_0.05_minsz_3_maxsz_300_iter_0/proposals`;
    const node = readNpzArray(`${dir}/0_node.npz`);
    assert.equal(node.dtype, "i8");
    assert.equal(node.shape.length, 1);
    const edge = readNpzArray(`${dir}/0_edge.npz`);
    assert.equal(edge.dtype, "f8");
    assert.equal(edge.shape[1], 3);
    const e = edge.data as Float64Array;
    for (let r = 0; r < edge.shape[0]!; r++) assert.ok(e[3 * r]! < e[3 * r + 1]!, "idx1 < idx2");
    assert.ok(SHARED.length > 0);
  },
});

Deno.test("pickle writer: the meta member of a numpy-written prediction npz comes out byte for byte", () => {
  // fixtures/npy/pred_scores.npz was written by np.savez_compressed(data=…, meta={…}) (protocol 3, numpy.core).
  const member = readZip(Deno.readFileSync(`${NPY}/pred_scores.npz`), "pred_scores.npz").get("meta.npy")!;
  const theirs = new Uint8Array(member.read());
  const dict = new Map<string, unknown>([["tot_inst_num", 10], ["proposal_folders", ["a/proposals", "b/proposals"]]]);
  const ours = concat(encodeNpy({ dtype: "O", shape: [], data: [dict] }));
  assert.deepEqual(ours, theirs);
  // A plain object is the same dict.
  const plain = { tot_inst_num: 10, proposal_folders: ["a/proposals", "b/proposals"] };
  assert.deepEqual(concat(encodeNpy({ dtype: "O", shape: [], data: [plain] })), theirs);
});

Deno.test("pickle writer: opcodes for ints, floats, tuples and dicts are CPython's protocol-3 bytes", () => {
  const bytesOf = (v: unknown) => [...pickleValue(v)];
  assert.deepEqual(bytesOf(256), [128, 3, 77, 0, 1, 46]);
  assert.deepEqual(bytesOf(-1), [128, 3, 74, 255, 255, 255, 255, 46]);
  assert.deepEqual(bytesOf(2 ** 31), [128, 3, 138, 5, 0, 0, 0, 128, 0, 46]);
  assert.deepEqual(bytesOf(-(2 ** 31) - 1), [128, 3, 138, 5, 255, 255, 255, 127, 255, 46]);
  assert.deepEqual(bytesOf(1.5), [128, 3, 71, 63, 248, 0, 0, 0, 0, 0, 0, 46]);
  assert.deepEqual(bytesOf(new PyFloat(3)), [128, 3, 71, 64, 8, 0, 0, 0, 0, 0, 0, 46]);
  assert.deepEqual(bytesOf(PyTuple.of<unknown>(1, "a")), [128, 3, 75, 1, 88, 1, 0, 0, 0, 97, 113, 0, 134, 113, 1, 46]);
  assert.deepEqual(
    bytesOf({ k: [true, null] }),
    [128, 3, 125, 113, 0, 88, 1, 0, 0, 0, 107, 113, 1, 93, 113, 2, 40, 136, 78, 101, 115, 46],
  );
  // CPython's dict loop closes a full last batch of 1000 with an empty MARK SETITEMS.
  const full = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, 0]));
  assert.deepEqual(bytesOf(full).slice(-5), [0, 117, 40, 117, 46]);
  assert.deepEqual(pickleValue([1, 2]), pickleValue([1, 2]));
});

Deno.test("pickle writer: everything it writes reads back through our reader", () => {
  const value = new Map<string, unknown>([
    ["ints", [0, 255, 65535, 65536, -7, 2 ** 31 - 1, -(2 ** 31), 2 ** 40, 2n ** 64n, -(2n ** 70n)]],
    ["floats", [0.25, -1e300, Infinity, 2 ** 60]],
    ["misc", [
      null,
      true,
      false,
      "",
      "héllo ✓ 😀",
      new Uint8Array([1, 2, 3]),
      new PyTuple(),
      PyTuple.of<unknown>(1, [2]),
    ]],
    ["long", Array.from({ length: 2345 }, (_, i) => `s${i}`)],
    ["nested", { a: { b: PyTuple.of<unknown>(1, 2, 3, 4) } }],
  ]);
  const back = unpickle(pickleValue(value)).value as Map<string, unknown>;
  assert.ok(back instanceof Map);
  assert.deepEqual([...back.keys()], [...value.keys()]);
  assert.deepEqual(back.get("ints"), [
    0,
    255,
    65535,
    65536,
    -7,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 40,
    2n ** 64n,
    -(2n ** 70n),
  ]);
  assert.deepEqual(back.get("floats"), [0.25, -1e300, Infinity, 2 ** 60]);
  const misc = back.get("misc") as unknown[];
  assert.deepEqual(misc.slice(0, 5), [null, true, false, "", "héllo ✓ 😀"]);
  assert.deepEqual(misc[5], new Uint8Array([1, 2, 3]));
  assert.ok(misc[6] instanceof PyTuple && misc[6].length === 0);
  assert.ok(misc[7] instanceof PyTuple);
  assert.deepEqual([...misc[7]], [1, [2]]);
  assert.deepEqual(back.get("long"), value.get("long"));
  const nested = back.get("nested") as Map<string, Map<string, unknown>>;
  assert.deepEqual([...(nested.get("a")!.get("b") as PyTuple)], [1, 2, 3, 4]);

  // Object arrays of any shape, inside an npz beside a numeric member.
  const dir = tempDir();
  const meta = new Map<string, unknown>([["tot_inst_num", 4287], ["proposal_folders", ["x/proposals"]]]);
  writeNpz(`${dir}/s.npz`, {
    data: { dtype: "f4", shape: [2], data: new Float32Array([0.5, 0.25]) },
    meta: { dtype: "O", shape: [], data: [meta] },
    grid: { dtype: "O", shape: [2, 2], data: ["a", 1, null, [1, 2]] },
  });
  const z = new NpzFile(`${dir}/s.npz`);
  assert.deepEqual(z.keys(), ["data", "meta", "grid"]);
  assert.deepEqual([...(z.get("data").data as Float32Array)], [0.5, 0.25]);
  const m = z.get("meta");
  assert.equal(m.dtype, "O");
  assert.deepEqual(m.shape, []);
  assert.deepEqual((m.data as unknown[])[0], meta);
  assert.deepEqual(z.get("grid"), { dtype: "O", shape: [2, 2], data: ["a", 1, null, [1, 2]] });
});

Deno.test("pickle writer: unsupported values, cycles and non-str keys are refused with where they are", () => {
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  throwsWith(() => pickleValue({ a: [cyclic] }), "contains itself", '["a"][0]');
  throwsWith(() => pickleValue(new Map<unknown, unknown>([[1, 2]])), "dict key of type number");
  throwsWith(() => pickleValue({ when: new Date(0) }), "cannot pickle a value of type Date", '["when"]');
  throwsWith(() => pickleValue(["\ud800"]), "lone surrogate", "[0]");
  throwsWith(() => encodeNpy({ dtype: "O", shape: [3], data: [1] }), "does not match shape");
  throwsWith(() => encodeNpy({ dtype: "O", shape: [1], data: new Float32Array(1) }), "plain array");
});

Deno.test("zip: a member read piece by piece equals the whole read, stored or deflated; corruption is named", () => {
  const data = new Float64Array(300_000).map((_, i) => Math.sin(i) * 1e3);
  const arr: NdArray = { dtype: "f8", shape: [data.length], data };
  for (const compress of [true, false]) {
    const bytes = concat(encodeNpz({ data: arr }, { compress }));
    const entry = readZip(bytes, "m.npz").get("data.npy")!;
    const pieces: Uint8Array[] = [];
    entry.readChunks((c) => pieces.push(c.slice()));
    assert.ok(pieces.length > 1, `${pieces.length} pieces`);
    const whole = entry.read(), joined = concat(pieces);
    assert.equal(joined.length, whole.length);
    assert.ok(joined.every((b, i) => b === whole[i]), "same bytes");
  }
  const bytes = concat(encodeNpz({ data: arr }, { compress: true }));
  bytes[200] = bytes[200]! ^ 0xff; // inside the deflate stream
  const entry = readZip(bytes, "bad.npz").get("data.npy")!;
  throwsWith(() => entry.readChunks(() => {}), "bad.npz", "data.npy");
});

Deno.test("kNN file: the dense layout streams (inflated piece by piece) to the same graph as the whole-array reader", () => {
  const n = 6_000, k = 24;
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  for (let i = 0; i < n * k; i++) {
    nbrs[i] = (i * 7919 + (i % k)) % n;
    dists[i] = Math.fround(((i * 2654435761) % 1000) / 1000);
  }
  nbrs[5] = -1;
  const dir = tempDir();
  for (const compress of [true, false]) {
    const file = `${dir}/g_${compress}.npz`;
    writeNpz(file, { data: knnToArray({ n, k, nbrs, dists }) }, { compress });
    const g = readKnn(file);
    assert.deepEqual(g.nbrs, nbrs);
    assert.deepEqual(g.dists, dists);
    // the whole-array path of the same file agrees
    const whole = toNumbers(new NpzFile(file).get("data"));
    for (let i = 0; i < n; i += 611) {
      for (let j = 0; j < k; j++) {
        assert.equal(g.nbrs[i * k + j], whole[i * 2 * k + j]);
        assert.equal(g.dists[i * k + j], Math.fround(whole[i * 2 * k + k + j]!));
      }
    }
  }
  // a bad neighbour id deep in the stream is reported with its row; a truncated member names the shortfall
  const bad = knnToArray({ n, k, nbrs, dists });
  (bad.data as Float64Array)[(4_321 * 2 * k) + 3] = n + 5;
  writeNpz(`${dir}/bad.npz`, { data: bad });
  throwsWith(() => readKnn(`${dir}/bad.npz`), "bad.npz", "row 4321", String(n + 5));
  const npy = concat(encodeNpy({ dtype: "f8", shape: [900, 2, 1], data: new Float64Array(1800) }));
  const cut = npy.subarray(0, npy.length - 80); // ten values short
  Deno.writeFileSync(`${dir}/short.npz`, concat(buildZip([{ name: "data.npy", chunks: [cut] }], { compress: true })));
  throwsWith(() => readKnn(`${dir}/short.npz`), "short.npz", "data truncated", "14320 bytes", "14400");
});

/** A kNN graph shaped like real ones (ids near the row's own, rising float32 distances), deterministic. */
function knnLike(n: number, k: number): { n: number; k: number; nbrs: Int32Array; dists: Float32Array } {
  const nbrs = new Int32Array(n * k), dists = new Float32Array(n * k);
  let s = 7;
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = 0; j < k; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      nbrs[i * k + j] = j === 0 ? i : (i + (s % 4000) - 2000 + n) % n;
      d += j === 0 ? 0 : (s >>> 20) / 2 ** 18;
      dists[i * k + j] = d;
    }
  }
  return { n, k, nbrs, dists };
}

Deno.test("zip: a member deflated in pieces on worker threads is byte-identical for any worker count", async () => {
  // 3 pieces: two sync-flushed, one final; a member in a SharedArrayBuffer is read in place, any other copied
  const g = knnLike(7000, 80);
  const member = concat(encodeNpy(knnToArray(g)));
  assert.ok(member.length > 2 * DEFLATE_PIECE && member.length < 3 * DEFLATE_PIECE);
  const seq = deflateMember(member);
  assert.equal(seq.body.length, 3);
  const shared = new Uint8Array(new SharedArrayBuffer(member.length));
  shared.set(member);
  // a member made piece by piece on demand (as writeKnn makes the kNN layout): each piece a buffer of its own
  const made: number[] = [];
  const pieces = {
    size: member.length,
    piece: (p: number) => (made.push(p), member.slice(p * DEFLATE_PIECE, (p + 1) * DEFLATE_PIECE)),
  };
  for (const [data, workers] of [[member, 2], [shared, 3], [shared, 1], [pieces, 2], [pieces, 1]] as const) {
    const par = await deflateMemberParallel(data, { workers });
    assert.equal(par.crc, seq.crc);
    assert.equal(par.size, member.length);
    assert.deepEqual(par.body, seq.body, `${workers} workers`);
  }
  assert.deepEqual(made, [0, 1, 2, 0, 1, 2], "each piece made once, in order");
  // the pieces are one raw deflate stream, and the archive equals writeNpz's (which deflates the same pieces)
  assert.deepEqual(new Uint8Array(zlib.inflateRawSync(concat(seq.body))), member);
  const dir = tempDir();
  try {
    writeNpz(`${dir}/n.npz`, { data: knnToArray(g) });
    for (const workers of [1, 2, 3]) {
      await writeKnn(`${dir}/k.npz`, g, { workers });
      assert.deepEqual(Deno.readFileSync(`${dir}/k.npz`), Deno.readFileSync(`${dir}/n.npz`), `${workers} workers`);
    }
    const back = readKnn(`${dir}/k.npz`);
    assert.deepEqual([back.nbrs, back.dists], [g.nbrs, g.dists]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  // a member of one piece is still one plain deflate stream
  const small = new Uint8Array(1000).map((_, i) => i % 7);
  assert.deepEqual(deflateMember(small).body, [new Uint8Array(zlib.deflateRawSync(small, { level: 6 }))]);
});

const HAS_NUMPY = (() => {
  try {
    return new Deno.Command("python3", { args: ["-c", "import numpy"], stderr: "null", stdout: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "zip: numpy's np.load reads a kNN file written in pieces on worker threads, value for value",
  ignore: !HAS_NUMPY,
  async fn() {
    const g = knnLike(7000, 80);
    const dir = tempDir();
    try {
      await writeKnn(`${dir}/faiss_k_80.npz`, g, { workers: 2 });
      // numpy loads the archive (as the original's code does) and saves what it read as a plain .npy for comparison
      const py = "import numpy as np, sys\n" +
        "d = np.load(sys.argv[1])['data']\n" +
        "assert d.dtype == np.float64 and d.shape == (7000, 2, 80), (d.dtype, d.shape)\n" +
        "np.save(sys.argv[2], d)\n";
      const out = new Deno.Command("python3", { args: ["-c", py, `${dir}/faiss_k_80.npz`, `${dir}/back.npy`] })
        .outputSync();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.deepEqual(readNpy(`${dir}/back.npy`).data, knnToArray(g).data);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
