/**
 * GCN-V/E's dense products on onnxruntime (the CPU twin's fast path; {@linkcode veGcnBackend} picks it for `cpu`
 * when onnxruntime loads, the TypeScript products otherwise):
 * - `matmul`: one ONNX MatMul / Gemm per transpose case (symbolic dims, both operands fed on every run), rows cut
 *   into parts so onnxruntime never holds more than one part's output;
 * - `lastLayers`: inference from the last GraphConv on — ReLU(x·W_self + A·x·W_agg + b), then the classifier
 *   Linear → PReLU → Linear — in one graph, so only the output (and, when asked, the GCN features) comes back:
 *   onnxruntime-node hands outputs to Deno at a few hundred MB/s, slower than the arithmetic, so activations that
 *   are not needed must stay inside the graph.
 * Sums are float32 (MLAS SGEMM); the TypeScript twin sums in float64: results agree to float32 rounding.
 * Sessions do not spin their worker threads: TypeScript (aggregation, element-wise work) runs between the runs.
 * @module
 */
import { type OnnxModel, type OnnxNode, OnnxType } from "../onnx.ts";
import { createSession, loadOrt, type OrtRuntime, type OrtSession, type OrtTensor } from "../ort.ts";
import type { DenseKernels, LastLayersInput, LastLayersResult, MatmulShape } from "./kernels.ts";
import { classifierWidth, type VeGcnWeights } from "./model.ts";

const F32 = OnnxType.FLOAT;

/** Output values per onnxruntime run at most (64 MB of float32): parts of a product are run one after another. */
export const ORT_PART_VALUES = 1 << 24;

/** The three transpose cases: `op(a)·op(b)` with a, b row-major. */
type Case = "nn" | "tn" | "nt";

function productModel(c: Case): OnnxModel {
  const node: OnnxNode = c === "nn"
    ? { op: "MatMul", inputs: ["A", "B"], outputs: ["C"] }
    : { op: "Gemm", inputs: ["A", "B"], outputs: ["C"], attrs: c === "tn" ? { transA: 1 } : { transB: 1 } };
  return {
    nodes: [node],
    inputs: [{ name: "A", type: F32, dims: ["a0", "a1"] }, { name: "B", type: F32, dims: ["b0", "b1"] }],
    outputs: [{ name: "C", type: F32, dims: ["m", "n"] }],
  };
}

/**
 * The last GraphConv and the classifier: inputs X, AX (rows × in), Ws, Wa (in × out: the halves of the layer's
 * weight), B (out), WH (c × c), BH (c), SLOPE (c), WO (classes × c), BO (classes). Outputs OUT (rows × classes)
 * and, with `features`, H (rows × out).
 */
function lastLayersModel(features: boolean): OnnxModel {
  const nodes: OnnxNode[] = [
    { op: "MatMul", inputs: ["X", "WS"], outputs: ["XS"] },
    { op: "MatMul", inputs: ["AX", "WA"], outputs: ["XA"] },
    { op: "Add", inputs: ["XS", "XA"], outputs: ["P"] },
    { op: "Add", inputs: ["P", "B"], outputs: ["PB"] },
    { op: "Relu", inputs: ["PB"], outputs: ["H"] },
    { op: "Gemm", inputs: ["H", "WH", "BH"], outputs: ["U"], attrs: { transB: 1 } },
    { op: "PRelu", inputs: ["U", "SLOPE"], outputs: ["Z"] },
    { op: "Gemm", inputs: ["Z", "WO", "BO"], outputs: ["OUT"], attrs: { transB: 1 } },
  ];
  return {
    nodes,
    inputs: [
      { name: "X", type: F32, dims: ["rows", "in"] },
      { name: "AX", type: F32, dims: ["rows", "in"] },
      { name: "WS", type: F32, dims: ["in", "out"] },
      { name: "WA", type: F32, dims: ["in", "out"] },
      { name: "B", type: F32, dims: ["out"] },
      { name: "WH", type: F32, dims: ["out", "out"] },
      { name: "BH", type: F32, dims: ["out"] },
      { name: "SLOPE", type: F32, dims: ["out"] },
      { name: "WO", type: F32, dims: ["classes", "out"] },
      { name: "BO", type: F32, dims: ["classes"] },
    ],
    outputs: [
      { name: "OUT", type: F32, dims: ["rows", "classes"] },
      ...(features ? [{ name: "H", type: F32, dims: ["rows", "out"] }] : []),
    ],
  };
}

/** Dense products (and the fused inference tail) on onnxruntime. */
export class OrtKernels implements DenseKernels {
  /** e.g. `cpu (onnxruntime-node)` */
  readonly name: string;
  readonly #rt: OrtRuntime;
  readonly #sessions = new Map<string, Promise<OrtSession>>();
  readonly #partValues: number;

  private constructor(rt: OrtRuntime, partValues: number) {
    this.#rt = rt;
    this.#partValues = partValues;
    this.name = `cpu (${rt.label})`;
  }

  /**
   * Load onnxruntime (an `LtcError` when no build loads; see `gpu/ort.ts`). `partValues`: output values per run at
   * most (default {@linkcode ORT_PART_VALUES}).
   */
  static async create(options: { partValues?: number } = {}): Promise<OrtKernels> {
    return new OrtKernels(await loadOrt(), options.partValues ?? ORT_PART_VALUES);
  }

  #session(key: string, model: () => OnnxModel): Promise<OrtSession> {
    let s = this.#sessions.get(key);
    if (!s) {
      s = createSession(this.#rt, model(), { spin: false });
      this.#sessions.set(key, s);
    }
    return s;
  }

  #tensor(data: Float32Array, dims: number[]): OrtTensor {
    return new this.#rt.ort.Tensor("float32", data, dims);
  }

  async matmul(a: Float32Array, b: Float32Array, shape: MatmulShape): Promise<Float32Array> {
    const { m, k, n } = shape;
    if (a.length !== m * k || b.length !== k * n) {
      throw new Error(`matmul: operands of ${a.length} and ${b.length} values do not fit ${m}×${k}·${k}×${n}`);
    }
    if (shape.transA && shape.transB) throw new Error("matmul: both operands transposed is not supported");
    const c: Case = shape.transA ? "tn" : shape.transB ? "nt" : "nn";
    const session = await this.#session(c, () => productModel(c));
    const bDims = shape.transB ? [n, k] : [k, n];
    const out = new Float32Array(m * n);
    if (m === 0 || n === 0) return out;
    if (k === 0) return out;
    if (c === "tn") {
      // a is k × m (a sum over its k rows): the output is a weight-sized m × n, one run
      const r = await session.run({ A: this.#tensor(a, [k, m]), B: this.#tensor(b, bDims) });
      return r.C!.data as Float32Array;
    }
    const partRows = Math.max(1, Math.floor(this.#partValues / n));
    if (partRows >= m) {
      const r = await session.run({ A: this.#tensor(a, [m, k]), B: this.#tensor(b, bDims) });
      return r.C!.data as Float32Array;
    }
    const bt = this.#tensor(b, bDims);
    for (let r0 = 0; r0 < m; r0 += partRows) {
      const rows = Math.min(partRows, m - r0);
      const r = await session.run({ A: this.#tensor(a.subarray(r0 * k, (r0 + rows) * k), [rows, k]), B: bt });
      out.set(r.C!.data as Float32Array, r0 * n);
    }
    return out;
  }

  /** See {@linkcode DenseKernels.lastLayers}. */
  async lastLayers(
    weights: VeGcnWeights,
    input: LastLayersInput,
    options: { keepFeatures: boolean },
  ): Promise<LastLayersResult> {
    const cfg = weights.config;
    const L = cfg.convDims.length;
    const din = L === 1 ? cfg.featureDim : cfg.convDims[L - 2]!, dout = classifierWidth(cfg);
    const { x, rows } = input;
    if (x.length !== rows * din) throw new Error(`lastLayers: ${x.length} input values for ${rows} rows of ${din}`);
    const keep = options.keepFeatures;
    const session = await this.#session(keep ? "last+h" : "last", () => lastLayersModel(keep));
    const conv = weights.convs[L - 1]!;
    const fixed: Record<string, OrtTensor> = {
      WS: this.#tensor(conv.w.subarray(0, din * dout), [din, dout]),
      WA: this.#tensor(conv.w.subarray(din * dout), [din, dout]),
      B: this.#tensor(conv.b, [dout]),
      WH: this.#tensor(weights.hidden.w, [dout, dout]),
      BH: this.#tensor(weights.hidden.b, [dout]),
      SLOPE: this.#tensor(weights.prelu, [dout]),
      WO: this.#tensor(weights.out.w, [cfg.classes, dout]),
      BO: this.#tensor(weights.out.b, [cfg.classes]),
    };
    const out = new Float32Array(rows * cfg.classes);
    const features = keep ? new Float32Array(rows * dout) : null;
    const partRows = Math.max(1, Math.floor(this.#partValues / Math.max(dout, din)));
    // onnxruntime runs a part on its own threads while this thread aggregates the next part
    let inFlight: Promise<void> | null = null;
    for (let r0 = 0; r0 < rows; r0 += partRows) {
      const n = Math.min(partRows, rows - r0);
      const ax = await input.ax(r0, r0 + n);
      if (ax.length !== n * din) throw new Error(`lastLayers: ${ax.length} aggregated values for ${n} rows of ${din}`);
      await inFlight;
      inFlight = session.run({
        ...fixed,
        X: this.#tensor(x.subarray(r0 * din, (r0 + n) * din), [n, din]),
        AX: this.#tensor(ax, [n, din]),
      }).then((r) => {
        out.set(r.OUT!.data as Float32Array, r0 * cfg.classes);
        if (features) features.set(r.H!.data as Float32Array, r0 * dout);
      });
    }
    await inFlight;
    return { out, features };
  }
}
