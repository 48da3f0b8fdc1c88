/**
 * GCN-V/E inference's last GraphConv and classifier on WebGPU with everything in between kept on the device (the
 * {@linkcode DenseKernels.lastLayers} hook): x is uploaded once, A·x is computed there when the aggregation lives on
 * the same device (GCN-V's whole graph), and per block of rows [x ‖ A·x] ({@linkcode ./concat_rows.wgsl}) → the
 * GraphConv product, bias and ReLU ({@linkcode ./bias_act.wgsl}) → Linear, PReLU → Linear into one output buffer. All
 * of it is recorded into one command buffer and the host waits once, for the outputs (and the GCN features when
 * asked). Before this, every product uploaded its operands and read its result back, and the host concatenated,
 * added biases and applied activations: at part1 scale on an H200, 14.9 s of host work for a 27 ms network.
 * @module
 */
import { LtcError } from "../../shared/errors.ts";
import { MATMUL_TILE } from "../gcn/matmul_wgsl.ts";
import type { Aggregator, LastLayersInput, LastLayersResult } from "./kernels.ts";
import { classifierWidth, type VeGcnWeights } from "./model.ts";
import { encodeDispatch, MAX_WORKGROUPS, readBuffers, storageBuffer, uniformBuffer, uploadBuffer } from "../webgpu.ts";
import { vegcnKernel } from "./wgsl.ts";

/** An aggregation whose matrix lives on a GPU device and can be applied there (`GpuCsrAggregator`). */
export interface DeviceAggregation {
  readonly device: GPUDevice;
  /** record A·x for `x` on the device (rows × width) into `enc`; returns the output buffer, the caller's to free */
  encodeApply(enc: GPUCommandEncoder, x: GPUBuffer, width: number): GPUBuffer;
}

function onDevice(agg: Aggregator | undefined, device: GPUDevice): agg is Aggregator & DeviceAggregation {
  return !!agg && "encodeApply" in agg && (agg as unknown as DeviceAggregation).device === device;
}

/** The device and the pipelines the hook runs on. */
export interface LastLayersEngine {
  device: GPUDevice;
  /** the tiled matmul kernel's three transpose cases, `[nn, tn, nt]` */
  matmul: GPUComputePipeline[];
  /** the largest storage binding (and buffer) the device allows, bytes */
  maxBinding: number;
  /** bytes of a block's widest buffer at most (default 256 MiB; tests set small blocks) */
  blockBytes?: number;
  /** rows per split-K slice of training's weight gradients (default 2,048; tests set small slices) */
  sliceRows?: number;
}

/** Rows per block: a multiple of the matmul tile whose widest operand stays under `limit` bytes. */
function blockRows(rows: number, widest: number, limit: number): number {
  const fit = Math.floor(limit / (4 * widest) / MATMUL_TILE) * MATMUL_TILE;
  return Math.max(MATMUL_TILE, Math.min(fit, Math.ceil(rows / MATMUL_TILE) * MATMUL_TILE));
}

/** Blocks are kept to this size (bytes of their widest buffer) even where bindings allow more. */
const BLOCK_BYTES = 256 * 2 ** 20;

/** See the module doc. `job.input.agg`, when it lives on `engine.device`, spares uploading A·x. */
export async function webGpuLastLayers(
  engine: LastLayersEngine,
  job: { weights: VeGcnWeights; input: LastLayersInput },
  options: { keepFeatures: boolean },
): Promise<LastLayersResult> {
  const { weights, input } = job;
  const { device, matmul } = engine;
  const cfg = weights.config;
  const L = cfg.convDims.length;
  const din = L === 1 ? cfg.featureDim : cfg.convDims[L - 2]!, dout = classifierWidth(cfg), classes = cfg.classes;
  const { x, rows } = input;
  if (x.length !== rows * din) throw new Error(`lastLayers: ${x.length} input values for ${rows} rows of ${din}`);
  const keep = options.keepFeatures;
  if (rows === 0) return { out: new Float32Array(0), features: keep ? new Float32Array(0) : null };
  for (const bytes of [x.byteLength, rows * dout * 4]) {
    if (bytes > engine.maxBinding) {
      throw new LtcError(`webgpu: a ${bytes}-byte operand exceeds this adapter's ${engine.maxBinding}-byte buffers`);
    }
  }
  const [concat, biasAct] = await Promise.all([vegcnKernel(device, "concat_rows"), vegcnKernel(device, "bias_act")]);
  const temps: GPUBuffer[] = [];
  const keepBuffer = (b: GPUBuffer) => (temps.push(b), b);
  const storage = (bytes: number, label: string) => keepBuffer(storageBuffer(device, bytes, label));
  const upload = (a: Float32Array, label: string) => keepBuffer(uploadBuffer(device, a, label));
  try {
    const encoder = device.createCommandEncoder();
    const xBuf = upload(x, "last_x");
    let axBuf: GPUBuffer;
    if (onDevice(input.agg, device)) {
      axBuf = keepBuffer(input.agg.encodeApply(encoder, xBuf, din));
    } else {
      const ax = await input.ax(0, rows);
      if (ax.length !== rows * din) throw new Error(`lastLayers: ${ax.length} aggregated values for ${rows} rows`);
      axBuf = upload(ax, "last_ax");
    }
    const conv = weights.convs[L - 1]!;
    const wConv = upload(conv.w, "last_conv_w"), bConv = upload(conv.b, "last_conv_b");
    const wHidden = upload(weights.hidden.w, "last_hidden_w"), bHidden = upload(weights.hidden.b, "last_hidden_b");
    const slope = upload(weights.prelu, "last_prelu");
    const wOut = upload(weights.out.w, "last_out_w"), bOut = upload(weights.out.b, "last_out_b");
    const outBuf = storage(rows * classes * 4, "last_out");
    const featBuf = keep ? storage(rows * dout * 4, "last_features") : null;
    const limit = Math.min(engine.maxBinding, engine.blockBytes ?? BLOCK_BYTES);
    const block = blockRows(rows, Math.max(2 * din, dout), limit);
    const cBuf = storage(block * 2 * din * 4, "last_concat");
    const hBuf = storage(block * dout * 4, "last_h"), uBuf = storage(block * dout * 4, "last_u");
    const params = (values: number[]) => keepBuffer(uniformBuffer(device, values));
    // out (m × n) = op(a)·op(b), kind 0: nn, 2: nt (b stored n × k); output rows from s[3] on
    const product = (pass: GPUComputePassEncoder, kind: number, [a, b, out]: GPUBuffer[], s: number[]) =>
      encodeDispatch(device, pass, {
        pipeline: matmul[kind]!,
        bindings: [params(s), a!, b!, out!],
        grid: [Math.ceil(s[1]! / MATMUL_TILE), Math.ceil(s[0]! / MATMUL_TILE)],
      });
    // rows × cols of h: + bias, then mode 0 nothing, 1 ReLU, 2 PReLU
    const activate = (pass: GPUComputePassEncoder, [h, bias]: GPUBuffer[], [rows, cols, mode]: number[]) =>
      encodeDispatch(device, pass, {
        pipeline: biasAct,
        bindings: [params([rows!, cols!, mode!, 0]), bias!, slope, h!],
        grid: [Math.ceil(cols! / 64), Math.max(1, Math.min(rows!, MAX_WORKGROUPS))],
      });
    for (let r0 = 0; r0 < rows; r0 += block) {
      const n = Math.min(block, rows - r0);
      const pass = encoder.beginComputePass();
      encodeDispatch(device, pass, {
        pipeline: concat,
        bindings: [params([n, din, r0]), xBuf, axBuf, cBuf],
        grid: [Math.ceil((2 * din) / 64), Math.min(n, MAX_WORKGROUPS)],
      });
      product(pass, 0, [cBuf, wConv, hBuf], [n, dout, 2 * din, 0]); // [x ‖ A·x]·W
      activate(pass, [hBuf, bConv], [n, dout, 1]); // + b, ReLU
      product(pass, 2, [hBuf, wHidden, uBuf], [n, dout, dout, 0]); // Linear (W stored out × in)
      activate(pass, [uBuf, bHidden], [n, dout, 2]); // + b, PReLU
      product(pass, 2, [uBuf, wOut, outBuf], [n, classes, dout, r0]); // Linear, rows r0… of the output
      pass.end();
      if (featBuf) encoder.copyBufferToBuffer(hBuf, 0, featBuf, r0 * dout * 4, n * dout * 4);
    }
    const last = encoder.beginComputePass();
    activate(last, [outBuf, bOut], [rows, classes, 0]); // + b
    last.end();
    // the one wait: outputs and features read back together
    const reads = [{ src: outBuf, bytes: rows * classes * 4 }];
    if (featBuf) reads.push({ src: featBuf, bytes: rows * dout * 4 });
    const [out, features] = await readBuffers(device, reads, { encoder });
    return { out: new Float32Array(out!), features: features ? new Float32Array(features) : null };
  } finally {
    for (const b of temps) b.destroy();
  }
}
