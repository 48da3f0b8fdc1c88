import assert from "node:assert/strict";
import { readFeatures, writeFeatures } from "../shared/features.ts";
import { HAS_SHARED, REF, SHARED, tempDir, throwsWith } from "./_helpers.ts";

Deno.test("features: read, L2-normalise, centre; raw read without normalising", () => {
  const dir = tempDir();
  writeFeatures(`${dir}/f.bin`, new Float32Array([3, 4, 0, 2, 1, 1]));
  const raw = readFeatures(`${dir}/f.bin`, { dim: 2, normalize: false });
  assert.equal(raw.n, 3);
  assert.deepEqual([...raw.data], [3, 4, 0, 2, 1, 1]);
  const f = readFeatures(`${dir}/f.bin`, { dim: 2 });
  assert.deepEqual([...f.data.slice(0, 4)], [Math.fround(0.6), Math.fround(0.8), 0, 1]);
  // centred: mean (4/3, 7/3) subtracted first
  const c = readFeatures(`${dir}/f.bin`, { dim: 2, center: true });
  const x0 = 3 - 4 / 3, y0 = 4 - 7 / 3;
  assert.ok(Math.abs(c.data[0]! - x0 / Math.hypot(x0, y0)) < 1e-6);
  assert.ok(Math.abs(c.data[0]! ** 2 + c.data[1]! ** 2 - 1) < 1e-6);
});

Deno.test("features: wrong size, NaN/Inf rows, zero rows, count mismatch and missing files are clear errors", () => {
  const dir = tempDir();
  Deno.writeFileSync(`${dir}/odd.bin`, new Uint8Array(4 * 256 * 2 + 8));
  throwsWith(() => readFeatures(`${dir}/odd.bin`), "odd.bin", "not a multiple of 4·dim = 1024");
  writeFeatures(`${dir}/nan.bin`, new Float32Array([1, 2, NaN, 1]));
  throwsWith(() => readFeatures(`${dir}/nan.bin`, { dim: 2 }), "nan.bin", "row 1", "NaN");
  writeFeatures(`${dir}/inf.bin`, new Float32Array([Infinity, 2]));
  throwsWith(() => readFeatures(`${dir}/inf.bin`, { dim: 2 }), "inf.bin", "row 0");
  writeFeatures(`${dir}/zero.bin`, new Float32Array([1, 2, 0, 0]));
  throwsWith(() => readFeatures(`${dir}/zero.bin`, { dim: 2 }), "zero.bin", "row 1", "zero norm");
  throwsWith(() => readFeatures(`${dir}/zero.bin`, { dim: 2, count: 3 }), "zero.bin", "2 rows", "labels have 3");
  Deno.writeFileSync(`${dir}/empty.bin`, new Uint8Array(0));
  throwsWith(() => readFeatures(`${dir}/empty.bin`), "empty.bin", "empty");
  throwsWith(() => readFeatures(`${dir}/none.bin`), "none.bin", "no such file");
});

Deno.test({
  name: "features: the original's sref.bin and the real CelebA face-api set (centring brings cross-id cos to ≈ 0)",
  ignore: !HAS_SHARED,
  fn() {
    const f = readFeatures(`${REF}/features/sref.bin`);
    assert.equal(f.n, 4287);
    const celeba = `${SHARED}/data/real/features/celeba6300_faceapi128.bin`;
    const raw = readFeatures(celeba, { dim: 128 });
    const cen = readFeatures(celeba, { dim: 128, center: true });
    assert.equal(raw.n, 6126);
    const dot = (d: Float32Array, a: number, b: number) => {
      let s = 0;
      for (let j = 0; j < 128; j++) s += d[a * 128 + j]! * d[b * 128 + j]!;
      return s;
    };
    let rawMean = 0, cenMean = 0;
    for (let t = 0; t < 500; t++) {
      const a = (t * 7919) % raw.n, b = (t * 104729 + 13) % raw.n;
      rawMean += dot(raw.data, a, b) / 500;
      cenMean += dot(cen.data, a, b) / 500;
    }
    assert.ok(rawMean > 0.7, `raw face-api cosines are high (${rawMean})`);
    assert.ok(Math.abs(cenMean) < 0.1, `centred cosines are near 0 (${cenMean})`);
  },
});
