/**
 * Exact kNN and all-pairs similarity search on WebGPU with hand-written WGSL: `tile_common.wgsl` (the 64×64
 * inner-product tile) prepended to `knn_tile.wgsl` (fused per-row top-k) or `pairs_tile.wgsl` (pairs ≥ minSim
 * appended through an atomic counter); the N×N matrix never exists. Compiling, dispatching and reading back go
 * through {@linkcode ../webgpu.ts}. Features are uploaded once, split into GPU buffers that each fit one storage
 * binding (`device.limits.maxStorageBufferBindingSize`, 128 MiB on llvmpipe). Queries run in batches whose heaps fit
 * a binding; each batch visits every base buffer with one dispatch per base range, the heaps persisting in GPU
 * memory between dispatches; base ranges are further split across the grid's y axis so small query batches still
 * fill the GPU. The per-split heaps come back to the host and are merged with {@linkcode RowTopK}.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import { backendLabel, type GpuContext } from "../device.ts";
import {
  bindingLimit,
  computePipeline,
  dispatch,
  type KernelSpec,
  readBuffer,
  storageBuffer,
  uploadRowParts,
  wgslFile,
} from "../webgpu.ts";
import type { ExactBackendEntry } from "./backend.ts";
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

/**
 * The tile depth TD (dims staged per barrier pair) for a device: 32 where it grants the ~18 KiB of workgroup memory
 * that needs (2 × TD × 17 vec4 of staging plus the kNN kernel's per-row thresholds), else 16.
 */
export function tileDepth(maxWorkgroupBytes: number): number {
  return maxWorkgroupBytes >= 2 * 32 * 17 * 16 + 1024 ? 32 : 16;
}

/**
 * A tile kernel: `tile_common.wgsl` + `<kind>_tile.wgsl` (WGSL has no imports), TD set through its `override`
 * (`depth`, a test override, defaults to the device's {@linkcode tileDepth}).
 */
function tileKernel(kind: TileKernel, device: GPUDevice, depth?: 16 | 32): KernelSpec {
  return {
    label: `${kind}_tile`,
    code: () => wgslFile("tile_common.wgsl", import.meta.url) + "\n" + wgslFile(`${kind}_tile.wgsl`, import.meta.url),
    constants: { TD: depth ?? tileDepth(device.limits.maxComputeWorkgroupStorageSize) },
  };
}

/** Options of the WebGPU searches. */
export interface TileRunOptions {
  /** called with the completed fraction */
  onProgress?: (fraction: number) => void;
  /** test override: a smaller storage-binding limit (more buffer parts, more dispatches) */
  maxBindingBytes?: number;
  /** test override: the tile depth TD (default: the device's {@linkcode tileDepth}) */
  tileDepth?: 16 | 32;
}

/** Upload features once, cut into binding-sized buffers of whole 64-row tiles. */
function uploadRows(gpu: GpuContext, f: Features, maxBindingBytes?: number) {
  return uploadRowParts(gpu.device, f, { rowAlign: TQ, maxBindingBytes });
}

/** Exact top-k of every query row among the base rows on WebGPU. */
export async function knnWebGpu(
  gpu: GpuContext,
  base: Features,
  queries: Features,
  k: number,
  options: TileRunOptions = {},
): Promise<{ nbrs: Int32Array; dists: Float32Array }> {
  const { device } = gpu;
  const pipeline = await computePipeline(device, tileKernel("knn", device, options.tileDepth));
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
        const heapSim = storageBuffer(device, heapLen * 4, "heapSim");
        const heapId = storageBuffer(device, heapLen * 4, "heapId");
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
            dispatch(device, {
              pipeline,
              bindings: [
                { buffer: qPart.buffer, offset: b0 * dim * 4, size: qRows * dim * 4 },
                { buffer: bPart.buffer, offset: r0 * dim * 4, size: bRows * dim * 4 },
                heapSim,
                heapId,
                params,
              ],
              grid: [qTiles, splits],
            });
            // queue.writeBuffer of the next params is ordered after this submit, so dispatches can be queued
            // back to back; wait now and then only to bound the queue and report progress
            done += qRows * bRows;
            if (++queued % 8 === 0) {
              await device.queue.onSubmittedWorkDone();
              options.onProgress?.(done / totalWork);
            }
          }
        }
        const sims = new Float32Array(await readBuffer(device, heapSim, { bytes: heapLen * 4 }));
        const ids = new Int32Array(await readBuffer(device, heapId, { bytes: heapLen * 4 }));
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
  options: TileRunOptions = {},
): Promise<PairList> {
  const { device } = gpu;
  const pipeline = await computePipeline(device, tileKernel("pairs", device, options.tileDepth));
  const dim = features.dim;
  const rows = uploadRows(gpu, features, options.maxBindingBytes);
  const params = device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const count = storageBuffer(device, 16, "pairCount");
  const bindLimit = bindingLimit(device, options.maxBindingBytes);
  let capacity = INITIAL_PAIR_CAPACITY;
  const makeOut = () => ["outI", "outJ", "outSim"].map((label) => storageBuffer(device, capacity * 4, label));
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
              dispatch(device, {
                pipeline,
                bindings: [
                  { buffer: qPart.buffer, offset: b0 * dim * 4, size: qRows * dim * 4 },
                  { buffer: bPart.buffer, offset: r0 * dim * 4, size: bRows * dim * 4 },
                  ...outs,
                  count,
                  params,
                ],
                grid: [qTiles, splits],
              });
              const got = new Uint32Array(await readBuffer(device, count, { bytes: 4 }))[0]!;
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
                const is = new Int32Array(await readBuffer(device, outs[0]!, { bytes: got * 4 }));
                const js = new Int32Array(await readBuffer(device, outs[1]!, { bytes: got * 4 }));
                const ss = new Float32Array(await readBuffer(device, outs[2]!, { bytes: got * 4 }));
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

/** The registry entry: the WGSL kernels on the process's WebGPU device. */
export const webgpuBackend: ExactBackendEntry = {
  name: "webgpu",
  device: "webgpu",
  open: ({ gpu }) =>
    Promise.resolve(
      gpu && {
        label: backendLabel({ kind: "webgpu", gpu }),
        knn: ({ base, queries, k, onProgress }) => knnWebGpu(gpu, base, queries, k, { onProgress }),
        pairs: (features, { minSim, onProgress }) => pairsWebGpu(gpu, features, minSim, { onProgress }),
      },
    ),
};
