/**
 * Scaled matrix products on onnxruntime for distance computations outside the kNN search (k-means), built on one
 * ONNX Gemm `S = bias + alpha · A · Bᵀ` (row-major float32, bias broadcast along the rows of S) with A, B and bias
 * fed on every run, so one session serves operands that change between runs (k-means centres):
 * - {@linkcode ScaledGemmOrt} returns S;
 * - {@linkcode RowMinCandidatesOrt} returns only the positions of the entries within a per-row margin of their row's
 *   minimum (ReduceMin → LessOrEqual → NonZero in the graph), so a nearest-centre search never copies S out (about
 *   a third faster than returning S and scanning it in TypeScript at 256 × 8573 × 256).
 *
 * S is float32 from an optimised SGEMM, so callers that need exact values bound its error with
 * {@linkcode gemmErrorBound} and recompute the few entries the bound cannot decide.
 *
 * Sessions do not spin their worker threads between runs: the caller's TypeScript runs between every two runs and
 * would otherwise share the cores with spinning threads (measured slower on 2 cores).
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import { type OnnxModel, type OnnxNode, OnnxType } from "../onnx.ts";
import { createSession, loadOrt, type OrtRuntime, type OrtSession } from "../ort.ts";

const F32 = OnnxType.FLOAT, I32 = OnnxType.INT32;

/**
 * An upper bound of `|S − S_exact|` for one entry of a float32 `bias + alpha · a·b` over `dim` terms (any summation
 * order, FMA or not, bias rounded to float32 first): `γ_{dim+3} · (|bias| + |alpha| · ‖a‖ · ‖b‖)` with
 * `γ_n = n·u / (1 − n·u)`, `u = 2⁻²⁴`, doubled for headroom. Needs the norms of the float32 operands.
 */
export function gemmErrorBound(dim: number, bias: number, alphaNormProduct: number): number {
  const nu = (dim + 3) * 2 ** -24;
  return 2 * (nu / (1 - nu)) * (Math.abs(bias) + Math.abs(alphaNormProduct));
}

function gemmNode(alpha: number): OnnxNode {
  return {
    op: "Gemm",
    inputs: ["A", "B", "bias"],
    outputs: ["S"],
    attrs: { transB: 1, alpha: { float: alpha }, beta: { float: 1 } },
  };
}

/** The shared part of both sessions: the runtime, the session and the operand checks. */
class GemmSession {
  /** which onnxruntime build runs it */
  readonly label: string;
  readonly #rt: OrtRuntime;
  readonly #session: OrtSession;
  readonly #dim: number;

  private constructor(rt: OrtRuntime, session: OrtSession, dim: number) {
    this.#rt = rt;
    this.#session = session;
    this.#dim = dim;
    this.label = rt.label;
  }

  static async create(dim: number, model: OnnxModel): Promise<GemmSession> {
    const rt = await loadOrt();
    return new GemmSession(rt, await createSession(rt, model, { spin: false }), dim);
  }

  async run(
    operands: { a: Float32Array; b: Float32Array; bias: Float32Array; margin?: Float32Array },
  ): Promise<Record<string, { data: unknown }>> {
    const { a, b, bias, margin } = operands;
    const dim = this.#dim, m = a.length / dim, n = bias.length;
    if (!Number.isInteger(m) || b.length !== n * dim || m === 0 || n === 0 || (margin && margin.length !== m)) {
      throw new LtcError(
        `gemm_ort: operand sizes ${a.length}, ${b.length}, ${bias.length}, ${margin?.length} do not fit dim ${dim}`,
      );
    }
    const { Tensor } = this.#rt.ort;
    return await this.#session.run({
      A: new Tensor("float32", a, [m, dim]),
      B: new Tensor("float32", b, [n, dim]),
      bias: new Tensor("float32", bias, [n]),
      ...(margin ? { margin: new Tensor("float32", margin, [m, 1]) } : {}),
    });
  }

  async release(): Promise<void> {
    await this.#session.release?.();
  }
}

/** What both public graphs share: one {@linkcode GemmSession}, the build that runs it, and releasing it. */
abstract class GemmGraph {
  /** which onnxruntime build runs it */
  readonly label: string;

  protected constructor(protected readonly session: GemmSession) {
    this.label = session.label;
  }

  /** Free the native session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/** One onnxruntime session computing `S = bias + alpha · A · Bᵀ` for A (m × dim), B (n × dim), bias (n). */
export class ScaledGemmOrt extends GemmGraph {
  /** Build the session (loads onnxruntime once per process). */
  static async create(dim: number, options: { alpha: number }): Promise<ScaledGemmOrt> {
    const model: OnnxModel = {
      nodes: [gemmNode(options.alpha)],
      inputs: [
        { name: "A", type: F32, dims: ["m", dim] },
        { name: "B", type: F32, dims: ["n", dim] },
        { name: "bias", type: F32, dims: ["n"] },
      ],
      outputs: [{ name: "S", type: F32, dims: ["m", "n"] }],
    };
    return new ScaledGemmOrt(await GemmSession.create(dim, model));
  }

  /** `S` (a.length / dim rows × bias.length columns, row-major) for row-major `a` and `b`. */
  async run(a: Float32Array, b: Float32Array, bias: Float32Array): Promise<Float32Array> {
    return (await this.session.run({ a, b, bias })).S!.data as Float32Array;
  }
}

/**
 * One onnxruntime session returning, for `S = bias + alpha · A · Bᵀ`, the positions (i, j) with
 * `S[i, j] ≤ min_j S[i, ·] + margin[i]`, in row-major order. The comparison is made in float32 on S's float32
 * values (`min + margin` rounded to float32), so callers widen the margin by that rounding. A row whose minimum is
 * NaN yields no positions.
 */
export class RowMinCandidatesOrt extends GemmGraph {
  /** Build the session (loads onnxruntime once per process). */
  static async create(dim: number, options: { alpha: number }): Promise<RowMinCandidatesOrt> {
    const model: OnnxModel = {
      nodes: [
        gemmNode(options.alpha),
        { op: "ReduceMin", inputs: ["S"], outputs: ["rowMin"], attrs: { axes: [1], keepdims: 1 } },
        { op: "Add", inputs: ["rowMin", "margin"], outputs: ["limit"] },
        { op: "LessOrEqual", inputs: ["S", "limit"], outputs: ["near"] },
        { op: "NonZero", inputs: ["near"], outputs: ["pos64"] },
        { op: "Cast", inputs: ["pos64"], outputs: ["P"], attrs: { to: I32 } },
      ],
      inputs: [
        { name: "A", type: F32, dims: ["m", dim] },
        { name: "B", type: F32, dims: ["n", dim] },
        { name: "bias", type: F32, dims: ["n"] },
        { name: "margin", type: F32, dims: ["m", 1] },
      ],
      outputs: [{ name: "P", type: I32, dims: [2, "count"] }],
    };
    return new RowMinCandidatesOrt(await GemmSession.create(dim, model));
  }

  /** The positions for row-major `a` (m × dim), `b` (n × dim), `bias` (n) and `margin` (m): rows[t], cols[t]. */
  async run(
    a: Float32Array,
    operands: { b: Float32Array; bias: Float32Array; margin: Float32Array },
  ): Promise<{ rows: Int32Array; cols: Int32Array }> {
    const p = (await this.session.run({ a, ...operands })).P!.data as Int32Array;
    const count = p.length / 2;
    return { rows: p.subarray(0, count), cols: p.subarray(count) };
  }
}
