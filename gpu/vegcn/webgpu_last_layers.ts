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
import { MAX_GROUPS, STORAGE, uniforms, upload } from "./webgpu_buffers.ts";

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

const elementwiseCache = new WeakMap<GPUDevice, Promise<{ concat: GPUComputePipeline; biasAct: GPUComputePipeline }>>();

function elementwisePipelines(device: GPUDevice) {
  let p = elementwiseCache.get(device);
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
    p = Promise.all([make("./concat_rows.wgsl"), make("./bias_act.wgsl")]).then(([concat, biasAct]) => ({
      concat: concat!,
      biasAct: biasAct!,
    }));
    elementwiseCache.set(device, p);
  }
  return p;
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
  const { concat, biasAct } = await elementwisePipelines(device);
  const temps: GPUBuffer[] = [];
  const keepBuffer = <B extends GPUBuffer>(b: B) => (temps.push(b), b);
  const storage = (bytes: number, label: string) =>
    keepBuffer(device.createBuffer({ size: Math.max(4, bytes), usage: STORAGE, label }));
  try {
    const enc = device.createCommandEncoder();
    const xBuf = keepBuffer(upload(device, x, "last_x"));
    let axBuf: GPUBuffer;
    if (onDevice(input.agg, device)) {
      axBuf = keepBuffer(input.agg.encodeApply(enc, xBuf, din));
    } else {
      const ax = await input.ax(0, rows);
      if (ax.length !== rows * din) throw new Error(`lastLayers: ${ax.length} aggregated values for ${rows} rows`);
      axBuf = keepBuffer(upload(device, ax, "last_ax"));
    }
    const conv = weights.convs[L - 1]!;
    const weightBuffer = (a: Float32Array, label: string) => keepBuffer(upload(device, a, label));
    const wConv = weightBuffer(conv.w, "last_conv_w"), bConv = weightBuffer(conv.b, "last_conv_b");
    const wHidden = weightBuffer(weights.hidden.w, "last_hidden_w");
    const bHidden = weightBuffer(weights.hidden.b, "last_hidden_b");
    const slope = weightBuffer(weights.prelu, "last_prelu");
    const wOut = weightBuffer(weights.out.w, "last_out_w"), bOut = weightBuffer(weights.out.b, "last_out_b");
    const outBuf = storage(rows * classes * 4, "last_out");
    const block = blockRows(
      rows,
      Math.max(2 * din, dout),
      Math.min(engine.maxBinding, engine.blockBytes ?? BLOCK_BYTES),
    );
    const cBuf = storage(block * 2 * din * 4, "last_concat");
    const hBuf = storage(block * dout * 4, "last_h"), uBuf = storage(block * dout * 4, "last_u");
    const featStaging = keep
      ? keepBuffer(
        device.createBuffer({ size: rows * dout * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      )
      : null;
    const bind = (pipe: GPUComputePipeline, buffers: GPUBuffer[]) =>
      device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
    const params = (values: number[]) => keepBuffer(uniforms(device, values));
    const product = (
      pass: GPUComputePassEncoder,
      c: number,
      a: GPUBuffer,
      b: GPUBuffer,
      out: GPUBuffer,
      s: number[],
    ) => {
      const [m, n, ,] = s as [number, number, number, number];
      pass.setPipeline(matmul[c]!);
      pass.setBindGroup(0, bind(matmul[c]!, [params(s), a, b, out]));
      pass.dispatchWorkgroups(Math.ceil(n / MATMUL_TILE), Math.ceil(m / MATMUL_TILE));
    };
    const activate = (pass: GPUComputePassEncoder, h: GPUBuffer, b: GPUBuffer, s: number[]) => {
      pass.setPipeline(biasAct);
      pass.setBindGroup(0, bind(biasAct, [params(s), b, slope, h]));
      pass.dispatchWorkgroups(Math.ceil(s[1]! / 64), Math.max(1, Math.min(s[0]!, MAX_GROUPS)));
    };
    for (let r0 = 0; r0 < rows; r0 += block) {
      const n = Math.min(block, rows - r0);
      const pass = enc.beginComputePass();
      pass.setPipeline(concat);
      pass.setBindGroup(0, bind(concat, [params([n, din, r0]), xBuf, axBuf, cBuf]));
      pass.dispatchWorkgroups(Math.ceil((2 * din) / 64), Math.min(n, MAX_GROUPS));
      product(pass, 0, cBuf, wConv, hBuf, [n, dout, 2 * din, 0]); // [x ‖ A·x]·W
      activate(pass, hBuf, bConv, [n, dout, 1, 0]); // + b, ReLU
      product(pass, 2, hBuf, wHidden, uBuf, [n, dout, dout, 0]); // Linear (W stored out × in)
      activate(pass, uBuf, bHidden, [n, dout, 2, 0]); // + b, PReLU
      product(pass, 2, uBuf, wOut, outBuf, [n, classes, dout, r0]); // Linear, rows r0… of the output
      pass.end();
      if (featStaging) enc.copyBufferToBuffer(hBuf, 0, featStaging, r0 * dout * 4, n * dout * 4);
    }
    const last = enc.beginComputePass();
    activate(last, outBuf, bOut, [rows, classes, 0, 0]); // + b
    last.end();
    const outStaging = keepBuffer(
      device.createBuffer({ size: rows * classes * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
    );
    enc.copyBufferToBuffer(outBuf, 0, outStaging, 0, rows * classes * 4);
    device.queue.submit([enc.finish()]);
    // the one wait: both read-backs mapped together
    await Promise.all([outStaging, featStaging].map((b) => b?.mapAsync(GPUMapMode.READ)));
    const out = new Float32Array(outStaging.getMappedRange()).slice();
    const features = featStaging ? new Float32Array(featStaging.getMappedRange()).slice() : null;
    return { out, features };
  } finally {
    for (const b of temps) b.destroy();
  }
}
