/**
 * The 8-bit screen of the IVF scan (gpu/knn/int8.ts): rounding, norms, and that its integer threshold never drops a
 * pair whose similarity reaches the row's threshold (random and clustered unit rows, thresholds at the pairs' own
 * similarities — the hardest case); the IVF scan with and without the screen gives the same rows on the same probes;
 * 8-bit probe ranking agrees with float32 ranking but for near-ties.
 */
import assert from "node:assert/strict";
import { l2NormalizeRows } from "../shared/features.ts";
import { Rng } from "../shared/random.ts";
import { DEFAULT_SYNTH, generateSynth } from "../cluster/synth.ts";
import { QMAX, quantizeRows, quantScale, screenThreshold } from "../gpu/knn/int8.ts";
import { exactKnn, ivfKnn } from "../gpu/knn/mod.ts";
import { buildIvfIndex, searchIvf } from "../gpu/knn/ivf.ts";

Deno.test("int8: the scale maps the largest magnitude to ±127; rows round with their norms", () => {
  const x = Float32Array.of(0.5, -0.25, 0, 0.1, -0.5, 0.3);
  const scale = quantScale([{ data: x, count: 6 }]);
  assert.equal(scale, QMAX / 0.5);
  const out = new Int8Array(6);
  const n = quantizeRows(x, 2, { dim: 3, scale, out });
  // Math.round takes halves up: −63.5 → −63
  assert.deepEqual([...out], [127, -63, 0, 25, -127, 76]);
  const e0 = Math.hypot(127 - 0.5 * 254, -63 + 0.25 * 254, 0);
  assert.ok(Math.abs(n.enorm[0]! - e0) < 1e-9);
  assert.ok(Math.abs(n.qnorm[0]! - Math.hypot(127, 63)) < 1e-9);
  assert.ok(Math.abs(n.xnorm[1]! - Math.hypot(0.1, 0.5, 0.3)) < 1e-7);
  // the uint8 side of the product is offset by 128
  const u = new Uint8Array(6);
  quantizeRows(x, 2, { dim: 3, scale, out: u, offset: 128 });
  assert.deepEqual([...u], [255, 65, 128, 153, 1, 204]);
  assert.equal(quantScale([{ data: new Float32Array(4), count: 4 }]), 1);
  assert.equal(screenThreshold(-Infinity, { scale, dim: 3, xnorm: 1, enorm: 1, listQmax: 1, listEmax: 1 }), -(2 ** 31));
});

/** Every pair's integer product against the screen threshold at the pair's own similarity: the pair must pass. */
function screenKeepsAll(rows: Float32Array, n: number, dim: number): { pairs: number; minSlack: number } {
  const scale = quantScale([{ data: rows, count: n * dim }]);
  const q = new Int8Array(n * dim);
  const norms = quantizeRows(rows, n, { dim, scale, out: q });
  let qmax = 0, emax = 0;
  for (let r = 0; r < n; r++) qmax = Math.max(qmax, norms.qnorm[r]!), emax = Math.max(emax, norms.enorm[r]!);
  let pairs = 0, minSlack = Infinity;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      let exact = 0, int = 0;
      for (let t = 0; t < dim; t++) {
        exact += rows[a * dim + t]! * rows[b * dim + t]!;
        int += q[a * dim + t]! * q[b * dim + t]!;
      }
      const threshold = screenThreshold(Math.fround(exact), {
        scale,
        dim,
        xnorm: norms.xnorm[a]!,
        enorm: norms.enorm[a]!,
        listQmax: qmax,
        listEmax: emax,
      });
      minSlack = Math.min(minSlack, int - threshold);
      pairs++;
    }
  }
  return { pairs, minSlack };
}

Deno.test("int8: the screen keeps every pair at its own similarity (random and clustered rows, dims 64 and 256)", () => {
  const rng = new Rng(5, 0x8);
  for (const dim of [64, 256]) {
    const n = 300;
    const gauss = new Float32Array(n * dim).map(() => rng.normal());
    l2NormalizeRows(gauss, n, dim);
    const g = screenKeepsAll(gauss, n, dim);
    assert.equal(g.pairs, n * n);
    assert.ok(g.minSlack >= 0, `gaussian dim ${dim}: a pair fell below its screen by ${-g.minSlack}`);
    const s = generateSynth({ ...DEFAULT_SYNTH, dim, ids: 6, seed: 9 });
    l2NormalizeRows(s.features, s.n, dim);
    const c = screenKeepsAll(s.features, Math.min(s.n, n), dim);
    assert.ok(c.minSlack >= 0, `clustered dim ${dim}: a pair fell below its screen by ${-c.minSlack}`);
  }
});

Deno.test("int8: the screened IVF scan gives the float32 scan's rows on the same probes (clustered rows)", async () => {
  const s = generateSynth({ ...DEFAULT_SYNTH, dim: 128, ids: 150, seed: 4 });
  l2NormalizeRows(s.features, s.n, s.dim);
  const f = { data: s.features, n: s.n, dim: s.dim };
  // probes ranked in float32 once, searched with either screen
  const index = await buildIvfIndex(f, { nlist: 60, nprobe: 8, chunkRows: 2048, screenBits: 32, keepProbes: true });
  const search = (screenBits: 8 | 32) =>
    searchIvf(f, { ...index, params: { ...index.params, screenBits } }, { k: 30, probes: index.probes });
  const fp32 = await search(32), int8 = await search(8);
  assert.deepEqual(int8.nbrs, fp32.nbrs);
  int8.dists.forEach((d, t) => assert.ok(Math.abs(d - fp32.dists[t]!) <= 1e-6, `distance ${t}`));
});

Deno.test("int8: 8-bit probe ranking agrees with float32 but for near-ties; recall against exact holds", async () => {
  const s = generateSynth({ ...DEFAULT_SYNTH, dim: 128, ids: 150, seed: 4 });
  l2NormalizeRows(s.features, s.n, s.dim);
  const f = { data: s.features, n: s.n, dim: s.dim };
  const opts = { nlist: 60, nprobe: 8, chunkRows: 2048, keepProbes: true };
  const i32 = await buildIvfIndex(f, { ...opts, screenBits: 32 });
  const i8 = await buildIvfIndex(f, { ...opts, screenBits: 8 });
  assert.deepEqual(i8.centroids, i32.centroids); // training is float32 either way
  let sameList = 0, shared = 0;
  for (let r = 0; r < f.n; r++) {
    if (i8.lists[r] === i32.lists[r]) sameList++;
    const a = new Set(i32.probes!.subarray(r * 8, r * 8 + 8));
    for (const p of i8.probes!.subarray(r * 8, r * 8 + 8)) if (a.has(p)) shared++;
  }
  assert.ok(sameList / f.n > 0.99, `same list ${sameList} of ${f.n}`);
  assert.ok(shared / (f.n * 8) > 0.98, `shared probes ${shared} of ${f.n * 8}`);
  const exact = await exactKnn(f, { k: 30, backend: "cpu", progress: false });
  const recall = (nbrs: Int32Array) => {
    let hits = 0;
    for (let r = 0; r < f.n; r++) {
      const want = new Set(exact.graph.nbrs.subarray(r * 30, r * 30 + 30));
      for (const id of nbrs.subarray(r * 30, r * 30 + 30)) if (want.has(id)) hits++;
    }
    return hits / (f.n * 30);
  };
  const r8 = recall((await ivfKnn(f, { k: 30, nlist: 60, nprobe: 8, chunkRows: 2048 })).nbrs);
  const r32 = recall((await ivfKnn(f, { k: 30, nlist: 60, nprobe: 8, chunkRows: 2048, screenBits: 32 })).nbrs);
  assert.ok(r32 > 0.8 && Math.abs(r8 - r32) < 0.003, `recall 8-bit ${r8}, float32 ${r32}`);
});
