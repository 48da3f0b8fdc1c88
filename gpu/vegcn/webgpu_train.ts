/**
 * GCN-V's whole-graph training iteration on WebGPU with the graph's data resident on the device (the
 * {@linkcode DenseKernels.mseGradients} hook). GCN-V has one GraphConv and its input does not change, so
 * [x ‖ A·x] is built on the device once ({@linkcode ./concat_rows.wgsl}) and kept with the target; each iteration
 * uploads the weights (≈ 1.3 MB), runs the forward pass (products, bias, ReLU, PReLU), the MSE and the backward pass
 * ({@linkcode ./backward_act.wgsl}; column sums as products with a ones vector) in one command buffer, and reads back
 * only the gradients and the loss — one wait per iteration. The SGD step stays on the host (as the CPU twin's).
 * Before this every product uploaded its operands and read its result back: 39 s per iteration at part1 scale on an
 * H200.
 * @module
 */
import { MATMUL_TILE } from "../gcn/matmul_wgsl.ts";
import type { Aggregator } from "./kernels.ts";
import { classifierWidth, paramSpecs, type VeGcnWeights, weightsFromList } from "./model.ts";
import { MAX_GROUPS, STORAGE, uniforms, upload } from "./webgpu_buffers.ts";
import type { DeviceAggregation, LastLayersEngine } from "./webgpu_last_layers.ts";

type Pipelines = Record<"concat" | "act" | "back" | "split" | "sum", GPUComputePipeline>;
const pipelineCache = new WeakMap<GPUDevice, Promise<Pipelines>>();

/** Rows per split-K slice aimed at, and the most slices (their partials must fit a binding). */
const SLICE_ROWS = 2048, MAX_SLICES = 256;

function pipelines(device: GPUDevice) {
  let p = pipelineCache.get(device);
  if (!p) {
    const make = (file: string) =>
      device.createComputePipelineAsync({
        layout: "auto",
        compute: {
          module: device.createShaderModule({
            code: Deno.readTextFileSync(new URL(file, import.meta.url)),
            label: file,
          }),
          entryPoint: "main",
        },
        label: file,
      });
    p = Promise.all(
      ["./concat_rows.wgsl", "./bias_act.wgsl", "./backward_act.wgsl", "./matmul_tn_split.wgsl", "./sum_slices.wgsl"]
        .map(make),
    ).then(([concat, act, back, split, sum]) => ({
      concat: concat!,
      act: act!,
      back: back!,
      split: split!,
      sum: sum!,
    }));
    pipelineCache.set(device, p);
  }
  return p;
}

/** The resident data of one graph: [x ‖ A·x], the target, and the activations' buffers, reused every iteration. */
interface Resident {
  key: { x: Float32Array; agg: Aggregator; target: Float32Array };
  buffers: Record<
    "concat" | "target" | "ones" | "h" | "u" | "z" | "out" | "dOut" | "sq" | "dz" | "du" | "slope" | "dx" | "dpre",
    GPUBuffer
  >;
  rows: number;
}

/** Whole-graph GCN-V training iterations on one device (see the module doc); one per {@linkcode WebGpuKernels}. */
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
    const { device } = this.#engine;
    const agg = input.agg as Aggregator & Partial<DeviceAggregation>;
    if (cfg.convDims.length !== 1 || cfg.classes !== 1 || agg.device !== device || !agg.encodeApply) return null;
    const rows = agg.rows, din = cfg.featureDim, c = classifierWidth(cfg);
    if (rows === 0 || input.x.length !== rows * din || input.target.length !== rows) return null;
    if (rows * Math.max(2 * din, c) * 4 > this.#engine.maxBinding) return null;
    const pipes = await pipelines(device);
    const res = this.#prepare(input, din, c, pipes.concat);
    const b = res.buffers;
    const temps: GPUBuffer[] = [];
    const keep = (x: GPUBuffer) => (temps.push(x), x);
    try {
      const params = paramSpecs(cfg);
      const flat = [
        weights.convs[0]!.w,
        weights.convs[0]!.b,
        weights.hidden.w,
        weights.hidden.b,
        weights.prelu,
        weights.out.w,
        weights.out.b,
      ];
      const up = (i: number) => keep(upload(device, flat[i]!, params[i]!.name));
      const wConv = up(0), bConv = up(1), wHidden = up(2), bHidden = up(3), slope = up(4), wOut = up(5), bOut = up(6);
      // gradients in state-dict order, packed into one buffer, then one read-back
      const sizes = flat.map((a) => a.length);
      const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((s, v) => s + v, 0));
      const total = sizes.reduce((s, v) => s + v, 0) + 1; // + the summed squared error
      const grads = keep(device.createBuffer({ size: total * 4, usage: STORAGE, label: "gcnv_grads" }));
      const gradParts = sizes.map((n) =>
        keep(device.createBuffer({ size: n * 4, usage: STORAGE, label: "gcnv_grad" }))
      );
      const lossBuf = keep(device.createBuffer({ size: 4, usage: STORAGE, label: "gcnv_loss" }));
      const dummy = keep(device.createBuffer({ size: 4, usage: STORAGE, label: "unused" }));
      const zeros = keep(device.createBuffer({ size: c * 4, usage: STORAGE, label: "zeros" }));
      const bind = (pipe: GPUComputePipeline, buffers: GPUBuffer[]) =>
        device.createBindGroup({
          layout: pipe.getBindGroupLayout(0),
          entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
        });
      const enc = device.createCommandEncoder();
      const dispatch = (pipe: GPUComputePipeline, buffers: GPUBuffer[], x: number, y: number, z = 1) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bind(pipe, buffers));
        pass.dispatchWorkgroups(x, y, z);
        pass.end();
      };
      // out (m × n) = op(a)·op(b): kind 0 nn, 1 tn (a stored k × m), 2 nt (b stored n × k)
      const product = (kind: number, a: GPUBuffer, bb: GPUBuffer, out: GPUBuffer, [m, n, k]: number[]) =>
        dispatch(
          this.#engine.matmul[kind]!,
          [keep(uniforms(device, [m!, n!, k!, 0])), a, bb, out],
          Math.ceil(n! / MATMUL_TILE),
          Math.ceil(m! / MATMUL_TILE),
        );
      // weight gradients aᵀ·b over all rows (a rows × m, b rows × n) by split-K: partials of row slices, then their sum
      const widest = Math.max(2 * din * c, c * c);
      const slices = Math.max(
        1,
        Math.min(
          MAX_SLICES,
          Math.ceil(rows / (this.#engine.sliceRows ?? SLICE_ROWS)),
          Math.floor(this.#engine.maxBinding / (4 * widest)),
        ),
      );
      const chunk = Math.ceil(rows / slices / 16) * 16, used = Math.ceil(rows / chunk);
      const part = keep(device.createBuffer({ size: used * widest * 4, usage: STORAGE, label: "gcnv_partials" }));
      const gradient = (a: GPUBuffer, bb: GPUBuffer, out: GPUBuffer, m: number, n: number) => {
        const s1 = keep(uniforms(device, [m, n, rows, chunk]));
        dispatch(pipes.split, [s1, a, bb, part], Math.ceil(n / MATMUL_TILE), Math.ceil(m / MATMUL_TILE), used);
        const groups = Math.ceil((m * n) / 256);
        const s2 = keep(uniforms(device, [m * n, used]));
        dispatch(pipes.sum, [s2, part, out], Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS));
      };
      // column sums of a rows × n matrix: onesᵀ·a
      const colSums = (a: GPUBuffer, out: GPUBuffer, n: number) => gradient(b.ones, a, out, 1, n);
      const groups = Math.max(1, Math.min(rows, MAX_GROUPS));
      const activate = (h: GPUBuffer, bias: GPUBuffer, cols: number, mode: number) =>
        dispatch(
          pipes.act,
          [keep(uniforms(device, [rows, cols, mode, 0])), bias, slope, h],
          Math.ceil(cols / 64),
          groups,
        );
      const backAct = (mode: number, a: GPUBuffer, bb: GPUBuffer, [o1, o2]: GPUBuffer[], cols: number) =>
        dispatch(
          pipes.back,
          [keep(uniforms(device, [rows, cols, mode])), a, bb, slope, o1!, o2!],
          Math.ceil(cols / 64),
          groups,
        );
      // forward: h = ReLU([x ‖ A·x]·W + b), u = h·Whᵀ + bh, z = PReLU(u), out = z·Woᵀ + bo
      product(0, b.concat, wConv, b.h, [rows, c, 2 * din]);
      activate(b.h, bConv, c, 1);
      product(2, b.h, wHidden, b.u, [rows, c, c]);
      activate(b.u, bHidden, c, 0);
      enc.copyBufferToBuffer(b.u, 0, b.z, 0, rows * c * 4); // u is kept for PReLU's backward
      activate(b.z, zeros, c, 2);
      product(2, b.z, wOut, b.out, [rows, 1, c]);
      activate(b.out, bOut, 1, 0);
      // MSE: ∂loss/∂out and the squared errors
      backAct(0, b.out, b.target, [b.dOut, b.sq], 1);
      // backward, in the CPU twin's order (gpu/vegcn/cpu.ts backward)
      gradient(b.dOut, b.z, gradParts[5]!, 1, c); // classifier.2.weight
      colSums(b.dOut, gradParts[6]!, 1); // classifier.2.bias
      product(0, b.dOut, wOut, b.dz, [rows, c, 1]);
      backAct(1, b.dz, b.u, [b.du, b.slope], c);
      colSums(b.slope, gradParts[4]!, c); // classifier.1.weight (PReLU)
      gradient(b.du, b.h, gradParts[2]!, c, c); // classifier.0.weight
      colSums(b.du, gradParts[3]!, c); // classifier.0.bias
      product(0, b.du, wHidden, b.dx, [rows, c, c]);
      backAct(2, b.dx, b.h, [b.dpre, dummy], c);
      gradient(b.concat, b.dpre, gradParts[0]!, 2 * din, c); // conv1.weight
      colSums(b.dpre, gradParts[1]!, c); // conv1.bias
      colSums(b.sq, lossBuf, 1);
      gradParts.forEach((g, i) => enc.copyBufferToBuffer(g, 0, grads, offsets[i]! * 4, sizes[i]! * 4));
      enc.copyBufferToBuffer(lossBuf, 0, grads, (total - 1) * 4, 4);
      const staging = keep(
        device.createBuffer({ size: total * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      );
      enc.copyBufferToBuffer(grads, 0, staging, 0, total * 4);
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const all = new Float32Array(staging.getMappedRange()).slice();
      staging.unmap();
      const arrays = sizes.map((n, i) => all.slice(offsets[i]!, offsets[i]! + n));
      return { loss: all[total - 1]! / rows, grads: weightsFromList(cfg, arrays) };
    } finally {
      for (const t of temps) t.destroy();
    }
  }

  #prepare(
    input: { x: Float32Array; agg: Aggregator; target: Float32Array },
    din: number,
    c: number,
    concat: GPUComputePipeline,
  ): Resident {
    const r = this.#resident;
    if (r && r.key.x === input.x && r.key.agg === input.agg && r.key.target === input.target) return r;
    this.dispose();
    const { device } = this.#engine;
    const rows = input.agg.rows;
    const agg = input.agg as Aggregator & DeviceAggregation;
    const storage = (n: number, label: string) =>
      device.createBuffer({ size: Math.max(4, n * 4), usage: STORAGE, label });
    const buffers: Resident["buffers"] = {
      concat: storage(rows * 2 * din, "gcnv_concat"),
      target: upload(device, input.target, "gcnv_target"),
      ones: upload(device, new Float32Array(rows).fill(1), "gcnv_ones"),
      h: storage(rows * c, "gcnv_h"),
      u: storage(rows * c, "gcnv_u"),
      z: storage(rows * c, "gcnv_z"),
      out: storage(rows, "gcnv_out"),
      dOut: storage(rows, "gcnv_dout"),
      sq: storage(rows, "gcnv_sq"),
      dz: storage(rows * c, "gcnv_dz"),
      du: storage(rows * c, "gcnv_du"),
      slope: storage(rows * c, "gcnv_dslope"),
      dx: storage(rows * c, "gcnv_dx"),
      dpre: storage(rows * c, "gcnv_dpre"),
    };
    const x = upload(device, input.x, "gcnv_x");
    const enc = device.createCommandEncoder();
    const ax = agg.encodeApply(enc, x, din);
    const params = uniforms(device, [rows, din, 0]);
    const pass = enc.beginComputePass();
    pass.setPipeline(concat);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: concat.getBindGroupLayout(0),
        entries: [params, x, ax, buffers.concat].map((buffer, binding) => ({ binding, resource: { buffer } })),
      }),
    );
    pass.dispatchWorkgroups(Math.ceil((2 * din) / 64), Math.min(rows, MAX_GROUPS));
    pass.end();
    device.queue.submit([enc.finish()]);
    // x and A·x are only needed until the concatenation has run; destroying after submit is allowed
    for (const t of [x, ax, params]) t.destroy();
    this.#resident = { key: { ...input }, buffers, rows };
    return this.#resident;
  }
}
