/**
 * Exact kNN and all-pairs similarity search on WebGPU with hand-written WGSL: `tile_common.wgsl` (the 64×64
 * inner-product tile) prepended to `knn_tile.wgsl` (fused per-row top-k) or `pairs_tile.wgsl` (pairs ≥ minSim
 * appended through an atomic counter); the N×N matrix never exists. Features are uploaded once, split into GPU buffers that each fit one
 * storage binding (`device.limits.maxStorageBufferBindingSize`, 128 MiB on llvmpipe). Queries run in batches whose
 * heaps fit a binding; each batch visits every base buffer with one dispatch per base range, the heaps persisting in
 * GPU memory between dispatches; base ranges are further split across the grid's y axis so small query batches
 * still fill the GPU. The per-split heaps come back to the host and are merged with {@linkcode RowTopK}.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import type { GpuContext } from "../device.ts";
import { PairBuilder, type PairList, sortPairs } from "./pairs.ts";
import { RowTopK } from "./topk.ts";

const TQ = 64;
const TB = 64;
const EMPTY_SIM = -3e38;
/** Base rows per dispatch: keeps each dispatch short (watchdogs, progress). */
const BASE_ROWS_PER_DISPATCH = 16384;
/** Aim for at least this many workgroups per dispatch. */
const TARGET_WORKGROUPS = 1024;

/** Which kernel: kNN with fused top-k, or similarity pairs. */
export type TileKernel = "knn" | "pairs";

const pipelines = new Map<string, { device: GPUDevice; pipeline: GPUComputePipeline }>();

/**
 * A kernel's source: `tile_common.wgsl` + `<kind>_tile.wgsl`, with the staging depth TD specialised to 32 dims per
 * barrier pair where the device grants the ~18 KiB of workgroup memory that needs (2 × TD × 17 vec4 of staging plus
 * the kNN kernel's per-row thresholds), else 16 (fits WebGPU's guaranteed 16 KiB). TD must stay ≥ 16 because the
 * staging array doubles as the kNN kernel's 32 × 64 similarity exchange.
 */
export function tileShaderSource(kind: TileKernel, maxWorkgroupBytes: number): string {
  const td = maxWorkgroupBytes >= 2 * 32 * 17 * 16 + 1024 ? 32 : 16;
  const common = Deno.readTextFileSync(new URL("./tile_common.wgsl", import.meta.url));
  const specialised = common.replace(/const TD: u32 = \d+u;/, `const TD: u32 = ${td}u;`);
  if (specialised === common && td !== 16) throw new Error("tile_common.wgsl: TD declaration not found");
  return specialised + "\n" + Deno.readTextFileSync(new URL(`./${kind}_tile.wgsl`, import.meta.url));
}

/** The compiled kernel for a device (compiled once per process; errors surface here, not as silent garbage). */
async function pipelineFor(device: GPUDevice, kind: TileKernel): Promise<GPUComputePipeline> {
  const cached = pipelines.get(kind);
  if (cached?.device === device) return cached.pipeline;
  const code = tileShaderSource(kind, device.limits.maxComputeWorkgroupStorageSize);
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label: `${kind}_tile` });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const err = await device.popErrorScope();
  if (err) throw new Error(`${kind}_tile.wgsl: ${err.message}`);
  pipelines.set(kind, { device, pipeline });
  return pipeline;
}

/** Features on the GPU: consecutive row ranges, each in its own buffer that fits one storage binding. */
export interface GpuRows {
  dim: number;
  n: number;
  parts: { buffer: GPUBuffer; row0: number; rows: number }[];
  destroy(): void;
}

/** Largest storage binding to use: the device's, or a smaller test override. */
function bindingLimit(device: GPUDevice, override?: number): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return override ? Math.min(limit, override) : limit;
}

/** Rows per GPU buffer for `dim`: fits a binding and is a multiple of 64 (keeps binding offsets aligned). */
function rowsPerPart(limit: number, dim: number): number {
  const rows = Math.floor(limit / (dim * 4) / TQ) * TQ;
  if (rows < TQ) throw new Error(`webgpu: dim ${dim} too large for a ${limit}-byte storage binding`);
  return rows;
}

/** Upload features once, cut into binding-sized buffers. */
export function uploadRows(gpu: GpuContext, f: Features, maxBindingBytes?: number): GpuRows {
  const { device } = gpu;
  const per = rowsPerPart(bindingLimit(device, maxBindingBytes), f.dim);
  const parts: GpuRows["parts"] = [];
  for (let row0 = 0; row0 < f.n; row0 += per) {
    const rows = Math.min(per, f.n - row0);
    const buffer = device.createBuffer({
      size: Math.max(16, rows * f.dim * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      label: `features ${row0}+${rows}`,
    });
    device.queue.writeBuffer(buffer, 0, f.data as Float32Array<ArrayBuffer>, row0 * f.dim, rows * f.dim);
    parts.push({ buffer, row0, rows });
  }
  return { dim: f.dim, n: f.n, parts, destroy: () => parts.forEach((p) => p.buffer.destroy()) };
}

/** Exact top-k of every query row among the base rows on WebGPU. */
export async function knnWebGpu(
  gpu: GpuContext,
  base: Features,
  queries: Features,
  k: number,
  options: { onProgress?: (fraction: number) => void; maxBindingBytes?: number } = {},
): Promise<{ nbrs: Int32Array; dists: Float32Array }> {
  const { device } = gpu;
  const pipeline = await pipelineFor(device, "knn");
  const dim = base.dim;
  const gBase = uploadRows(gpu, base, options.maxBindingBytes);
  const gQuery = queries === base ? gBase : uploadRows(gpu, queries, options.maxBindingBytes);
  const top = new RowTopK(queries.n, k);
  const bindLimit = bindingLimit(device, options.maxBindingBytes);
  const params = device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const totalWork = queries.n * base.n;
  let done = 0, queued = 0;
  try {
    for (const qPart of gQuery.parts) {
      // query batches: rows × splits × k heap entries must fit a binding
      const maxSplits = Math.max(1, Math.ceil(TARGET_WORKGROUPS / Math.ceil(Math.min(qPart.rows, 65536) / TQ)));
      const splitsCap = Math.min(maxSplits, Math.ceil(Math.min(base.n, BASE_ROWS_PER_DISPATCH) / TB));
      const batchRows = Math.max(
        TQ,
        Math.min(qPart.rows, 65536, Math.floor(bindLimit / (4 * splitsCap * k) / TQ) * TQ),
      );
      for (let b0 = 0; b0 < qPart.rows; b0 += batchRows) {
        const qRows = Math.min(batchRows, qPart.rows - b0);
        const qTiles = Math.ceil(qRows / TQ);
        const splits = Math.max(1, Math.min(splitsCap, Math.ceil(TARGET_WORKGROUPS / qTiles)));
        const heapLen = qRows * splits * k;
        const heapSim = device.createBuffer({
          size: heapLen * 4,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        });
        const heapId = device.createBuffer({
          size: heapLen * 4,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        });
        device.queue.writeBuffer(heapSim, 0, new Float32Array(heapLen).fill(EMPTY_SIM));
        device.queue.writeBuffer(heapId, 0, new Int32Array(heapLen).fill(-1));
        for (const bPart of gBase.parts) {
          for (let r0 = 0; r0 < bPart.rows; r0 += BASE_ROWS_PER_DISPATCH) {
            const bRows = Math.min(BASE_ROWS_PER_DISPATCH, bPart.rows - r0);
            const bTiles = Math.ceil(bRows / TB);
            const tilesPerSplit = Math.ceil(bTiles / splits);
            device.queue.writeBuffer(
              params,
              0,
              Uint32Array.of(qRows, bRows, dim, k, splits, tilesPerSplit, bPart.row0 + r0, bTiles),
            );
            const bind = device.createBindGroup({
              layout: pipeline.getBindGroupLayout(0),
              entries: [
                { binding: 0, resource: { buffer: qPart.buffer, offset: b0 * dim * 4, size: qRows * dim * 4 } },
                { binding: 1, resource: { buffer: bPart.buffer, offset: r0 * dim * 4, size: bRows * dim * 4 } },
                { binding: 2, resource: { buffer: heapSim } },
                { binding: 3, resource: { buffer: heapId } },
                { binding: 4, resource: { buffer: params } },
              ],
            });
            dispatch(device, pipeline, bind, qTiles, splits);
            // queue.writeBuffer of the next params is ordered after this submit, so dispatches can be queued
            // back to back; wait now and then only to bound the queue and report progress
            done += qRows * bRows;
            if (++queued % 8 === 0) {
              await device.queue.onSubmittedWorkDone();
              options.onProgress?.(done / totalWork);
            }
          }
        }
        const sims = new Float32Array(await readBack(device, heapSim, heapLen * 4));
        const ids = new Int32Array(await readBack(device, heapId, heapLen * 4));
        heapSim.destroy();
        heapId.destroy();
        top.offerRows(qPart.row0 + b0, qRows, splits * k, sims, ids);
      }
    }
  } finally {
    params.destroy();
    gBase.destroy();
    if (gQuery !== gBase) gQuery.destroy();
  }
  return top.finishInPlace();
}

/** Pairs per output list at first; grown to the exact count when a dispatch overflows. */
const INITIAL_PAIR_CAPACITY = 1 << 20;

/** Every pair i < j with inner product ≥ minSim on WebGPU, ordered by ascending i then j. */
export async function pairsWebGpu(
  gpu: GpuContext,
  features: Features,
  minSim: number,
  options: { onProgress?: (fraction: number) => void; maxBindingBytes?: number } = {},
): Promise<PairList> {
  const { device } = gpu;
  const pipeline = await pipelineFor(device, "pairs");
  const dim = features.dim;
  const rows = uploadRows(gpu, features, options.maxBindingBytes);
  const params = device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const count = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
  const bindLimit = bindingLimit(device, options.maxBindingBytes);
  let capacity = INITIAL_PAIR_CAPACITY;
  const makeOut = () =>
    [0, 1, 2].map(() =>
      device.createBuffer({ size: capacity * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC })
    );
  let outs = makeOut();
  const found = new PairBuilder();
  const totalWork = (features.n * (features.n + 1)) / 2;
  let done = 0;
  try {
    for (const qPart of rows.parts) {
      const batchRows = Math.min(qPart.rows, 65535 * TQ);
      for (let b0 = 0; b0 < qPart.rows; b0 += batchRows) {
        const qRows = Math.min(batchRows, qPart.rows - b0);
        const qId0 = qPart.row0 + b0;
        const qTiles = Math.ceil(qRows / TQ);
        for (const bPart of rows.parts) {
          for (let r0 = 0; r0 < bPart.rows; r0 += BASE_ROWS_PER_DISPATCH) {
            const bRows = Math.min(BASE_ROWS_PER_DISPATCH, bPart.rows - r0);
            const baseId0 = bPart.row0 + r0;
            if (baseId0 + bRows - 1 <= qId0) continue; // no i < j pair in this range
            const bTiles = Math.ceil(bRows / TB);
            const splits = Math.max(1, Math.min(bTiles, Math.ceil(TARGET_WORKGROUPS / qTiles)));
            const tilesPerSplit = Math.ceil(bTiles / splits);
            const p = new ArrayBuffer(48);
            new Uint32Array(p, 0, 8).set([qRows, bRows, dim, capacity, qId0, baseId0, tilesPerSplit, bTiles]);
            new Float32Array(p, 32, 1)[0] = minSim;
            for (;;) {
              new Uint32Array(p, 12, 1)[0] = capacity;
              device.queue.writeBuffer(params, 0, p);
              device.queue.writeBuffer(count, 0, new Uint32Array(4));
              const bind = device.createBindGroup({
                layout: pipeline.getBindGroupLayout(0),
                entries: [
                  { binding: 0, resource: { buffer: qPart.buffer, offset: b0 * dim * 4, size: qRows * dim * 4 } },
                  { binding: 1, resource: { buffer: bPart.buffer, offset: r0 * dim * 4, size: bRows * dim * 4 } },
                  { binding: 2, resource: { buffer: outs[0]! } },
                  { binding: 3, resource: { buffer: outs[1]! } },
                  { binding: 4, resource: { buffer: outs[2]! } },
                  { binding: 5, resource: { buffer: count } },
                  { binding: 6, resource: { buffer: params } },
                ],
              });
              dispatch(device, pipeline, bind, qTiles, splits);
              const got = new Uint32Array(await readBack(device, count, 4))[0]!;
              if (got > capacity) {
                // too many pairs for the lists: grow them (within one binding) and run this range again
                if (got * 4 > bindLimit) {
                  throw new Error(`webgpu pairs: ${got} pairs in one range exceed a storage binding`);
                }
                capacity = got;
                outs.forEach((b) => b.destroy());
                outs = makeOut();
                continue;
              }
              if (got > 0) {
                const is = new Int32Array(await readBack(device, outs[0]!, got * 4));
                const js = new Int32Array(await readBack(device, outs[1]!, got * 4));
                const ss = new Float32Array(await readBack(device, outs[2]!, got * 4));
                for (let t = 0; t < got; t++) found.push(is[t]!, js[t]!, ss[t]!);
              }
              break;
            }
            done += qRows * bRows;
            options.onProgress?.(Math.min(1, done / totalWork));
          }
        }
      }
    }
  } finally {
    outs.forEach((b) => b.destroy());
    count.destroy();
    params.destroy();
    rows.destroy();
  }
  return sortPairs(found.finish(), features.n);
}

/** Copy a GPU buffer to the host. */
/** Encode and submit one compute dispatch of `pipeline` over an x × y grid. */
function dispatch(device: GPUDevice, pipeline: GPUComputePipeline, bind: GPUBindGroup, x: number, y: number): void {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(x, y);
  pass.end();
  device.queue.submit([enc.finish()]);
}

async function readBack(device: GPUDevice, src: GPUBuffer, size: number): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return out;
}
