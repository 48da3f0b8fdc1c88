/**
 * GCN-V's whole-graph training iteration on WebGPU with the graph's data resident on the device (the
 * {@linkcode DenseKernels.mseGradients} hook). GCN-V has one GraphConv and its input does not change, so
 * [x ‖ A·x] is built on the device once ({@linkcode ./concat_rows.wgsl}) and kept with the target; each iteration
 * uploads the weights (≈ 1.3 MB), runs the forward pass (products, bias, ReLU, PReLU), the MSE and the backward pass
 * ({@linkcode ./backward_act.wgsl}) in one command buffer, and reads back only the gradients and the loss — one wait
 * per iteration. Weight gradients and column sums (aᵀ·b over all rows; column sums as onesᵀ·a) are split over row
 * slices ({@linkcode ./matmul_tn_split.wgsl}) and the partials summed ({@linkcode ./sum_slices.wgsl}), so a 512 × 512
 * gradient is not one long sum per output tile. The SGD step stays on the host, as the CPU twin's.
 * Before this every product uploaded its operands and read its result back: 39 s per iteration at part1 scale on an
 * H200 (22.0 s with the graph resident, before the slices).
 * @module
 */
import { MATMUL_TILE } from "../gcn/matmul_wgsl.ts";
import { encodeDispatch, MAX_WORKGROUPS, readBuffers, storageBuffer, uniformBuffer, uploadBuffer } from "../webgpu.ts";
import type { Aggregator } from "./kernels.ts";
import { classifierWidth, paramList, paramSpecs, type VeGcnWeights, weightsFromList } from "./model.ts";
import type { DeviceAggregation, LastLayersEngine } from "./webgpu_last_layers.ts";
import { vegcnKernel } from "./wgsl.ts";

/** Rows per split-K slice aimed at (engine `sliceRows` overrides), and the most slices. */
const SLICE_ROWS = 2048, MAX_SLICES = 256;

/** The per-graph buffers, made once and reused every iteration. */
const RESIDENT = ["concat", "target", "ones", "h", "u", "z", "out", "dOut", "sq", "dz", "du", "dSlope", "dx", "dpre"];

/** The resident data of one graph: [x ‖ A·x], the target, and the activations' buffers. */
interface Resident {
  key: { x: Float32Array; agg: Aggregator; target: Float32Array };
  buffers: Record<string, GPUBuffer>;
}

/** Whole-graph GCN-V training iterations on one device (see the module doc); one per `WebGpuKernels`. */
export class WebGpuGcnVTrainer {
  readonly #engine: LastLayersEngine;
  #resident: Resident | null = null;

  constructor(engine: LastLayersEngine) {
    this.#engine = engine;
  }

  /** Free the resident buffers. */
  dispose(): void {
    if (this.#resident) { for (const b of Object.values(this.#resident.buffers)) b.destroy(); }
    this.#resident = null;
  }

  /**
   * Loss and gradients of one iteration, or null where this path does not apply (not GCN-V's shape, an aggregation
   * not on this device, or buffers over the device's binding limit): the caller then runs the products one by one.
   */
  async mseGradients(
    weights: VeGcnWeights,
    input: { x: Float32Array; agg: Aggregator; target: Float32Array },
  ): Promise<{ loss: number; grads: VeGcnWeights } | null> {
    const cfg = weights.config;
    const { device, matmul, maxBinding } = this.#engine;
    const agg = input.agg as Aggregator & Partial<DeviceAggregation>;
    if (cfg.convDims.length !== 1 || cfg.classes !== 1 || agg.device !== device || !agg.encodeApply) return null;
    const rows = agg.rows, din = cfg.featureDim, c = classifierWidth(cfg);
    if (rows === 0 || input.x.length !== rows * din || input.target.length !== rows) return null;
    if (rows * Math.max(2 * din, c) * 4 > maxBinding) return null;
    const [act, back, split, sum] = await Promise.all([
      vegcnKernel(device, "bias_act"),
      vegcnKernel(device, "backward_act"),
      vegcnKernel(device, "matmul_tn_split"),
      vegcnKernel(device, "sum_slices"),
    ]);
    const b = (await this.#prepare(input, din, c)).buffers as Record<string, GPUBuffer>;
    const at = (name: string) => b[name]!;
    const temps: GPUBuffer[] = [];
    const keep = (x: GPUBuffer) => (temps.push(x), x);
    try {
      const specs = paramSpecs(cfg);
      const [wConv, bConv, wHidden, bHidden, slope, wOut, bOut] = paramList(weights).map((a, i) =>
        keep(uploadBuffer(device, a, specs[i]!.name))
      );
      // gradients in state-dict order, then the summed squared error
      const grads = paramList(weights).map((a) => keep(storageBuffer(device, a.length * 4, "gcnv_grad")));
      const lossSum = keep(storageBuffer(device, 4, "gcnv_loss"));
      const unused = keep(storageBuffer(device, 4, "unused"));
      const zeros = keep(storageBuffer(device, c * 4, "zeros"));
      const encoder = device.createCommandEncoder();
      const run = (pipeline: GPUComputePipeline, bindings: GPUBuffer[], grid: [number, number, number?]) => {
        const pass = encoder.beginComputePass();
        encodeDispatch(device, pass, { pipeline, bindings, grid });
        pass.end();
      };
      const params = (values: number[]) => keep(uniformBuffer(device, values));
      // out (m × n) = op(a)·op(b): kind 0 nn, 2 nt (b stored n × k)
      const product = (kind: number, [a, bb, out]: GPUBuffer[], [m, n, k]: number[]) =>
        run(matmul[kind]!, [params([m!, n!, k!, 0]), a!, bb!, out!], [
          Math.ceil(n! / MATMUL_TILE),
          Math.ceil(m! / MATMUL_TILE),
        ]);
      // aᵀ·b over all rows (a rows × m, b rows × n): partials of row slices, then their sum
      const widest = Math.max(2 * din * c, c * c);
      const sliceRows = this.#engine.sliceRows ?? SLICE_ROWS;
      const slices = Math.max(
        1,
        Math.min(MAX_SLICES, Math.ceil(rows / sliceRows), Math.floor(maxBinding / (4 * widest))),
      );
      const chunk = Math.ceil(rows / slices / 16) * 16, used = Math.ceil(rows / chunk);
      const part = keep(storageBuffer(device, used * widest * 4, "gcnv_partials"));
      const gradient = ([a, bb, out]: GPUBuffer[], m: number, n: number) => {
        run(split, [params([m, n, rows, chunk]), a!, bb!, part], [
          Math.ceil(n / MATMUL_TILE),
          Math.ceil(m / MATMUL_TILE),
          used,
        ]);
        const groups = Math.ceil((m * n) / 256);
        run(sum, [params([m * n, used]), part, out!], [
          Math.min(groups, MAX_WORKGROUPS),
          Math.ceil(groups / MAX_WORKGROUPS),
        ]);
      };
      const colSums = (a: GPUBuffer, out: GPUBuffer, n: number) => gradient([at("ones"), a, out], 1, n);
      const grid = (
        cols: number,
      ): [number, number] => [Math.ceil(cols / 64), Math.max(1, Math.min(rows, MAX_WORKGROUPS))];
      // rows × cols of h: + bias, then mode 0 nothing, 1 ReLU, 2 PReLU
      const activate = ([h, bias]: GPUBuffer[], cols: number, mode: number) =>
        run(act, [params([rows, cols, mode, 0]), bias!, slope!, h!], grid(cols));
      // backward_act.wgsl's modes: 0 MSE, 1 PReLU, 2 ReLU
      const backAct = (mode: number, [a, bb, o1, o2]: GPUBuffer[], cols: number) =>
        run(back, [params([rows, cols, mode]), a!, bb!, slope!, o1!, o2!], grid(cols));
      // forward: h = ReLU([x ‖ A·x]·W + b), u = h·Whᵀ + bh, z = PReLU(u), out = z·Woᵀ + bo
      product(0, [at("concat"), wConv!, at("h")], [rows, c, 2 * din]);
      activate([at("h"), bConv!], c, 1);
      product(2, [at("h"), wHidden!, at("u")], [rows, c, c]);
      activate([at("u"), bHidden!], c, 0);
      encoder.copyBufferToBuffer(at("u"), 0, at("z"), 0, rows * c * 4); // u is kept for PReLU's backward
      activate([at("z"), zeros], c, 2);
      product(2, [at("z"), wOut!, at("out")], [rows, 1, c]);
      activate([at("out"), bOut!], 1, 0);
      // MSE: ∂loss/∂out and the squared errors
      backAct(0, [at("out"), at("target"), at("dOut"), at("sq")], 1);
      // backward, in the CPU twin's order (gpu/vegcn/cpu.ts backward)
      gradient([at("dOut"), at("z"), grads[5]!], 1, c); // classifier.2.weight
      colSums(at("dOut"), grads[6]!, 1); // classifier.2.bias
      product(0, [at("dOut"), wOut!, at("dz")], [rows, c, 1]);
      backAct(1, [at("dz"), at("u"), at("du"), at("dSlope")], c);
      colSums(at("dSlope"), grads[4]!, c); // classifier.1.weight (PReLU)
      gradient([at("du"), at("h"), grads[2]!], c, c); // classifier.0.weight
      colSums(at("du"), grads[3]!, c); // classifier.0.bias
      product(0, [at("du"), wHidden!, at("dx")], [rows, c, c]);
      backAct(2, [at("dx"), at("h"), at("dpre"), unused], c);
      gradient([at("concat"), at("dpre"), grads[0]!], 2 * din, c); // conv1.weight
      colSums(at("dpre"), grads[1]!, c); // conv1.bias
      colSums(at("sq"), lossSum, 1);
      const sizes = paramList(weights).map((a) => a.length * 4);
      const reads = [...grads.map((src, i) => ({ src, bytes: sizes[i]! })), { src: lossSum, bytes: 4 }];
      const results = await readBuffers(device, reads, { encoder });
      const arrays = results.slice(0, grads.length).map((a) => new Float32Array(a));
      return { loss: new Float32Array(results[grads.length]!)[0]! / rows, grads: weightsFromList(cfg, arrays) };
    } finally {
      for (const t of temps) t.destroy();
    }
  }

  /** The graph's resident buffers: made (and [x ‖ A·x] computed) when the inputs differ from the last call's. */
  async #prepare(input: { x: Float32Array; agg: Aggregator; target: Float32Array }, din: number, c: number) {
    const r = this.#resident;
    if (r && r.key.x === input.x && r.key.agg === input.agg && r.key.target === input.target) return r;
    this.dispose();
    const { device } = this.#engine;
    const rows = input.agg.rows;
    const agg = input.agg as Aggregator & DeviceAggregation;
    const widths: Record<string, number> = { concat: 2 * din, target: 1, ones: 1, out: 1, dOut: 1, sq: 1 };
    const buffers: Record<string, GPUBuffer> = {};
    for (const name of RESIDENT) {
      if (name === "target") buffers[name] = uploadBuffer(device, input.target, "gcnv_target");
      else if (name === "ones") buffers[name] = uploadBuffer(device, new Float32Array(rows).fill(1), "gcnv_ones");
      else buffers[name] = storageBuffer(device, rows * (widths[name] ?? c) * 4, `gcnv_${name}`);
    }
    const x = uploadBuffer(device, input.x, "gcnv_x");
    const encoder = device.createCommandEncoder();
    const ax = agg.encodeApply(encoder, x, din);
    const params = uniformBuffer(device, [rows, din, 0]);
    const pass = encoder.beginComputePass();
    encodeDispatch(device, pass, {
      pipeline: await vegcnKernel(device, "concat_rows"),
      bindings: [params, x, ax, buffers.concat!],
      grid: [Math.ceil((2 * din) / 64), Math.min(rows, MAX_WORKGROUPS)],
    });
    pass.end();
    device.queue.submit([encoder.finish()]);
    // x and A·x are needed only by the concatenation already submitted; destroying them now is allowed
    for (const t of [x, ax, params]) t.destroy();
    this.#resident = { key: { ...input }, buffers };
    return this.#resident;
  }
}
