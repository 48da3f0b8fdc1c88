/**
 * 8-bit screening of inner products for the IVF scan (gpu/knn/ivf.ts): rows are rounded to integers `q = round(s · x)`
 * with one scale `s` for queries and base, the integer products `qa · qb` are computed by onnxruntime's u8 × s8
 * MatMulInteger (about twice the fp32 SGEMM's rate on these CPUs), and only the query rows whose best integer product
 * in a list can still reach the row's threshold are multiplied in float32. The probe ranking uses the same rounding
 * (gpu/knn/ivf.ts).
 *
 * The margin: with `qa = s·a + ea` and `qb = s·b + eb` (rounding errors, each entry within ½),
 * `qa · qb − s²(a · b) = ea · qb + s (a · eb)`. Cauchy–Schwarz bounds it by `‖ea‖ ‖qb‖ + s ‖a‖ ‖eb‖` — but that
 * bound assumes the rounding errors aligned with the rows, and at 256 dimensions it is about 20 times the error's
 * spread: it screened in ~105 pairs per row (1M rows of the scale-9 features at scale-9 list geometry), whose
 * rescoring cost a third of the integer products' gain. The screen uses instead `SCREEN_SIGMAS` standard
 * deviations of the error when the rounding errors' entries are independent of the rows' (variance
 * `(‖ea‖² ‖qb‖² + s² ‖a‖² ‖eb‖²) / dim`, the list's largest `‖qb‖` and `‖eb‖`): at 8 deviations a normal tail is
 * 10⁻¹⁵ per pair. Tests compare the screened scan with the float32 scan row for row (tests/int8_test.ts), and
 * bench/ivf.ts (`--screen-bits 8,32`) both on real geometry.
 * @module
 */

/** Standard deviations of the rounding error kept as the screen's margin (module header). */
export const SCREEN_SIGMAS = 8;

/** Largest integer magnitude of a quantized entry (int8 without −128, so that queries fit uint8 with zero point 128). */
export const QMAX = 127;

/** The common scale of a quantization: `QMAX` over the largest magnitude among the row sets given (1 when all zero). */
export function quantScale(sets: { data: Float32Array; count: number }[]): number {
  let m = 0;
  for (const { data, count } of sets) {
    for (let t = 0; t < count; t++) {
      const v = Math.abs(data[t]!);
      if (v > m) m = v;
    }
  }
  return m > 0 ? QMAX / m : 1;
}

/** Per-row norms of a quantization: of the integer row and of its rounding error (float64 sums, stored float64). */
export interface QuantNorms {
  /** ‖q‖ per row */
  qnorm: Float64Array;
  /** ‖q − s·x‖ per row */
  enorm: Float64Array;
}

/**
 * Round `rows` rows of `x` to `out` (int8, or uint8 offset by 128 for the MatMulInteger's left side) at scale `s`,
 * with each row's norms.
 */
export function quantizeRows(
  x: Float32Array,
  rows: number,
  opts: { dim: number; scale: number; out: Int8Array | Uint8Array; offset?: 0 | 128 },
): QuantNorms & { xnorm: Float64Array } {
  const { dim, scale, out } = opts;
  const offset = opts.offset ?? 0;
  const qnorm = new Float64Array(rows), enorm = new Float64Array(rows), xnorm = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let qq = 0, ee = 0, xx = 0;
    for (let t = r * dim, e = t + dim; t < e; t++) {
      const v = x[t]! * scale;
      // Math.round, clamped (floor(v + ½) and ternaries: 3× faster than Math.round / min / max here)
      const rounded = Math.floor(v + 0.5);
      const q = rounded > QMAX ? QMAX : rounded < -QMAX ? -QMAX : rounded;
      out[t] = q + offset;
      qq += q * q;
      ee += (q - v) * (q - v);
      xx += x[t]! * x[t]!;
    }
    qnorm[r] = Math.sqrt(qq);
    enorm[r] = Math.sqrt(ee);
    xnorm[r] = Math.sqrt(xx);
  }
  return { qnorm, enorm, xnorm };
}

/**
 * The integer screening threshold of a query row against one list: pairs with `qa · qb` at or above it include the
 * pairs with similarity ≥ `t` but for an error beyond {@linkcode SCREEN_SIGMAS} deviations (module header), less one
 * unit for the float rounding of the terms. −2³¹ (keep all) for `t = −∞`.
 */
export function screenThreshold(
  t: number,
  q: { scale: number; dim: number; xnorm: number; enorm: number; listQmax: number; listEmax: number },
): number {
  if (t === -Infinity) return -0x80000000;
  const { scale } = q;
  const queryTerm = q.enorm * q.listQmax, baseTerm = scale * q.xnorm * q.listEmax;
  const margin = SCREEN_SIGMAS * Math.sqrt((queryTerm * queryTerm + baseTerm * baseTerm) / q.dim);
  const v = Math.floor(scale * scale * t - margin) - 1;
  return Math.max(-0x80000000, Math.min(0x7fffffff, v));
}
