/**
 * Exact kNN and all-pairs similarity search on WebGPU with hand-written WGSL: `tile_common.wgsl` (the 64×64
 * inner-product tile) prepended to `knn_tile.wgsl` (fused per-row top-k, heaps in `knn_heap.wgsl`) or
 * `pairs_tile.wgsl` (pairs ≥ minSim appended through an atomic counter); or, for kNN, the register-tiled 128×128
 * `knn_tile128.wgsl` with the same heaps ({@linkcode KnnKernel}); the N×N matrix never exists. Compiling,
 * dispatching and reading back go through {@linkcode ../webgpu.ts}. Features are uploaded once, split into GPU
 * buffers that each fit one storage binding (`device.limits.maxStorageBufferBindingSize`, 128 MiB on llvmpipe).
 * Queries run in batches whose heaps fit a binding; each batch visits every base buffer with one dispatch per base
 * range, the heaps persisting in GPU memory between dispatches; base ranges are further split across the grid's y
 * axis so small query batches still fill the GPU. The per-split heaps are merged on the GPU (`knn_merge.wgsl`); only
 * N × k ids and distances come back, once, after the whole sweep was queued.
 * @module
 */
import type { Features } from "../../shared/features.ts";
import { backendLabel, type GpuContext } from "../device.ts";
import {
  bindingLimit,
  computePipeline,
  dispatch,
  encodeDispatch,
  type KernelSpec,
  readBuffer,
  storageBuffer,
  uploadRowParts,
  wgslFile,
} from "../webgpu.ts";
import type { ExactBackendEntry, GpuSweepStats } from "./backend.ts";
import { PairBuilder, type PairList, sortPairs } from "./pairs.ts";

const TQ = 64;
const TB = 64;
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
 * A tile kernel: `tile_common.wgsl` + `<kind>_tile.wgsl` (+ `knn_heap.wgsl` for kNN; WGSL has no imports), TD set
 * through its `override` (`depth`, a test override, defaults to the device's {@linkcode tileDepth}).
 */
function tileKernel(kind: TileKernel, device: GPUDevice, depth?: 16 | 32): KernelSpec {
  const files = ["tile_common.wgsl", `${kind}_tile.wgsl`, ...(kind === "knn" ? ["knn_heap.wgsl"] : [])];
  return {
    label: `${kind}_tile`,
    code: () => files.map((f) => wgslFile(f, import.meta.url)).join("\n"),
    constants: { TD: depth ?? tileDepth(device.limits.maxComputeWorkgroupStorageSize) },
  };
}

/**
 * The kNN kernels: `tile64` — 64×64 tiles, a 4×4 block of outputs per thread (tile_common.wgsl + knn_tile.wgsl);
 * `tile128` — register-tiled 128×128 tiles, an 8×8 block per thread, double-buffered staging (knn_tile128.wgsl).
 * Both feed the same per-row heaps (knn_heap.wgsl) and give identical rows.
 */
export type KnnKernel = "tile64" | "tile128";

/** Workgroup memory of the 128×128 kernel: two staging buffers of 2 × 8 × 33 vec4, 128 row thresholds, a flag. */
const TILE128_BYTES = 2 * 2 * 8 * 33 * 16 + 128 * 8 + 16;

/**
 * The kNN kernel to run: `wanted`, else `LTC_KNN_TILE` (`64` or `128`), else `tile64` (the 128×128 kernel's speed on
 * a real GPU is not measured yet); `tile128` falls back to `tile64` where the device grants too little workgroup
 * memory.
 */
export function knnKernel(device: GPUDevice, wanted?: KnnKernel): KnnKernel {
  const env = Deno.env.get("LTC_KNN_TILE");
  const choice = wanted ?? (env === "128" ? "tile128" : "tile64");
  return choice === "tile128" && device.limits.maxComputeWorkgroupStorageSize >= TILE128_BYTES ? "tile128" : "tile64";
}

/** The compiled form of a kNN kernel and its tile edge (query rows per workgroup = base rows per tile). */
function knnSpec(kernel: KnnKernel, device: GPUDevice, depth?: 16 | 32): { spec: KernelSpec; tile: number } {
  if (kernel === "tile64") return { spec: tileKernel("knn", device, depth), tile: 64 };
  return {
    spec: {
      label: "knn_tile128",
      code: () => ["knn_tile128.wgsl", "knn_heap.wgsl"].map((f) => wgslFile(f, import.meta.url)).join("\n"),
    },
    tile: 128,
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
  /** test override: bytes per mappable read-back buffer of the kNN result (default: up to 1 GiB) */
  maxReadBytes?: number;
  /** the kNN kernel (default: {@linkcode knnKernel}'s choice) */
  kernel?: KnnKernel;
}

/** Upload features once, cut into binding-sized buffers of whole tiles (`tile` rows, default 64). */
function uploadRows(gpu: GpuContext, f: Features, options: { maxBindingBytes?: number; tile?: number }) {
  return uploadRowParts(gpu.device, f, { rowAlign: options.tile ?? TQ, maxBindingBytes: options.maxBindingBytes });
}

/** Most base splits per query batch: the GPU merge ranks each candidate against every other split's list. */
const MAX_SPLITS = 32;

/** One query batch of a sweep: its rows, base splits, and the base ranges its dispatches visit in order. */
export interface SweepBatch {
  /** index of the query buffer part, and the batch's first row within it */
  qPart: number;
  b0: number;
  /** global id of the batch's first query row */
  row0: number;
  qRows: number;
  splits: number;
  /** base ranges, one dispatch each: buffer part, first row in it, row count */
  ranges: { bPart: number; r0: number; bRows: number }[];
}

/**
 * How a kNN sweep is cut (pure, so benchmarks can show the plan at a scale they do not run): query batches whose
 * heaps (rows × splits × k) fit one binding, each visiting every base range of at most
 * {@linkcode BASE_ROWS_PER_DISPATCH} rows; splits fill the GPU when a batch has few query tiles.
 */
export function planKnnSweep(
  queryParts: { rows: number }[],
  baseParts: { rows: number }[],
  options: { baseN: number; k: number; bindLimit: number; tile?: number },
): SweepBatch[] {
  const { k, bindLimit } = options;
  const tile = options.tile ?? TQ;
  const batches: SweepBatch[] = [];
  const ranges: SweepBatch["ranges"] = [];
  baseParts.forEach((p, bPart) => {
    for (let r0 = 0; r0 < p.rows; r0 += BASE_ROWS_PER_DISPATCH) {
      ranges.push({ bPart, r0, bRows: Math.min(BASE_ROWS_PER_DISPATCH, p.rows - r0) });
    }
  });
  let row0 = 0;
  queryParts.forEach((part, qPart) => {
    const maxSplits = Math.max(1, Math.ceil(TARGET_WORKGROUPS / Math.ceil(Math.min(part.rows, 65536) / tile)));
    const splitsCap = Math.min(
      MAX_SPLITS,
      maxSplits,
      Math.ceil(Math.min(options.baseN, BASE_ROWS_PER_DISPATCH) / tile),
    );
    const batchRows = Math.max(
      tile,
      Math.min(part.rows, 65536, Math.floor(bindLimit / (4 * splitsCap * k) / tile) * tile),
    );
    for (let b0 = 0; b0 < part.rows; b0 += batchRows) {
      const qRows = Math.min(batchRows, part.rows - b0);
      const splits = Math.max(1, Math.min(splitsCap, Math.ceil(TARGET_WORKGROUPS / Math.ceil(qRows / tile))));
      batches.push({ qPart, b0, row0: row0 + b0, qRows, splits, ranges });
    }
    row0 += part.rows;
  });
  return batches;
}

/** What a WebGPU kNN sweep cost in host synchronisation (recorded in the kNN sidecar). */
export interface KnnSweepStats extends GpuSweepStats {
  /** query batches (one submit each) */
  batches: number;
  /** tile dispatches, over all batches */
  dispatches: number;
}

/** Byte size of a kNN tile kernel's Params (9 u32, padded to 16-byte multiples). */
const TILE_PARAMS_BYTES = 48;

/**
 * Exact top-k of every query row among the base rows on WebGPU. The whole sweep is queued without the host waiting:
 * per query batch one submit holds its tile dispatches (the first empties the heaps, the last sorts them), the merge
 * of its splits (knn_merge.wgsl) and the copy of its finished rows into mappable buffers; the host waits once, at
 * the end, for the N × k ids and distances (progress comes from completion callbacks, not waits).
 */
export async function knnWebGpu(
  gpu: GpuContext,
  base: Features,
  queries: Features,
  k: number,
  options: TileRunOptions = {},
): Promise<{ nbrs: Int32Array; dists: Float32Array; stats: KnnSweepStats }> {
  const { device } = gpu;
  const kernel = knnKernel(device, options.kernel);
  const { spec, tile } = knnSpec(kernel, device, options.tileDepth);
  const [pipeline, mergePipeline] = await Promise.all([
    computePipeline(device, spec),
    computePipeline(device, { label: "knn_merge", code: () => wgslFile("knn_merge.wgsl", import.meta.url) }),
  ]);
  const dim = base.dim;
  const gBase = uploadRows(gpu, base, { maxBindingBytes: options.maxBindingBytes, tile });
  const gQuery = queries === base
    ? gBase
    : uploadRows(gpu, queries, { maxBindingBytes: options.maxBindingBytes, tile });
  const plan = planKnnSweep(gQuery.parts, gBase.parts, {
    baseN: base.n,
    k,
    bindLimit: bindingLimit(device, options.maxBindingBytes),
    tile,
  });
  const stats: KnnSweepStats = { hostRoundTrips: 0, submits: 0, kernel, batches: plan.length, dispatches: 0 };
  const heapLen = Math.max(...plan.map((b) => b.qRows * b.splits * k));
  const outLen = Math.max(...plan.map((b) => b.qRows * k));
  const heapSim = storageBuffer(device, heapLen * 4, "heapSim");
  const heapId = storageBuffer(device, heapLen * 4, "heapId");
  const outId = storageBuffer(device, outLen * 4, "outId");
  const outDist = storageBuffer(device, outLen * 4, "outDist");
  // one uniform slot per dispatch (tile dispatches, then one merge per batch), written once before any submit
  const slot = Math.max(TILE_PARAMS_BYTES, device.limits.minUniformBufferOffsetAlignment);
  const slots = plan.reduce((s, b) => s + b.ranges.length + 1, 0);
  const params = device.createBuffer({ size: slots * slot, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const words = new Uint32Array(slots * slot / 4);
  // mappable copies of the result, in row ranges that each fit one buffer
  const readBytes = Math.min(device.limits.maxBufferSize, options.maxReadBytes ?? 1 << 30);
  const rowsPerStage = Math.max(1, Math.floor(readBytes / (4 * k)));
  const stages: { row0: number; rows: number; ids: GPUBuffer; dists: GPUBuffer }[] = [];
  for (let row0 = 0; row0 < queries.n; row0 += rowsPerStage) {
    const rows = Math.min(rowsPerStage, queries.n - row0);
    const make = (label: string) =>
      device.createBuffer({ size: rows * k * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label });
    stages.push({ row0, rows, ids: make("knn ids"), dists: make("knn dists") });
  }
  const totalWork = queries.n * base.n;
  let done = 0;
  try {
    let s = 0;
    for (const b of plan) {
      b.ranges.forEach((r, i) => {
        const bTiles = Math.ceil(r.bRows / tile);
        const flags = (i === 0 ? 1 : 0) | (i === b.ranges.length - 1 ? 2 : 0);
        const baseId0 = gBase.parts[r.bPart]!.row0 + r.r0;
        words.set(
          [b.qRows, r.bRows, dim, k, b.splits, Math.ceil(bTiles / b.splits), baseId0, bTiles, flags],
          s++ * slot / 4,
        );
      });
      words.set([b.qRows, k, b.splits, 0], s++ * slot / 4);
    }
    device.queue.writeBuffer(params, 0, words);
    s = 0;
    for (const b of plan) {
      const qPart = gQuery.parts[b.qPart]!;
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      for (const r of b.ranges) {
        const bPart = gBase.parts[r.bPart]!;
        encodeDispatch(device, pass, {
          pipeline,
          bindings: [
            { buffer: qPart.buffer, offset: b.b0 * dim * 4, size: b.qRows * dim * 4 },
            { buffer: bPart.buffer, offset: r.r0 * dim * 4, size: r.bRows * dim * 4 },
            heapSim,
            heapId,
            { buffer: params, offset: s++ * slot, size: TILE_PARAMS_BYTES },
          ],
          grid: [Math.ceil(b.qRows / tile), b.splits],
        });
      }
      encodeDispatch(device, pass, {
        pipeline: mergePipeline,
        bindings: [heapSim, heapId, outId, outDist, { buffer: params, offset: s++ * slot, size: 16 }],
        grid: [Math.min(b.qRows, 65535)],
      });
      pass.end();
      // the batch's rows into the mappable copies (a batch may straddle two of them)
      for (const st of stages) {
        const lo = Math.max(st.row0, b.row0), hi = Math.min(st.row0 + st.rows, b.row0 + b.qRows);
        if (lo >= hi) continue;
        const src = (lo - b.row0) * k * 4, dst = (lo - st.row0) * k * 4, bytes = (hi - lo) * k * 4;
        enc.copyBufferToBuffer(outId, src, st.ids, dst, bytes);
        enc.copyBufferToBuffer(outDist, src, st.dists, dst, bytes);
      }
      device.queue.submit([enc.finish()]);
      stats.submits++;
      stats.dispatches += b.ranges.length;
      const work = b.qRows * base.n;
      if (options.onProgress) {
        // a completion callback, not a wait: the host keeps queueing
        device.queue.onSubmittedWorkDone().then(() => options.onProgress?.((done += work) / totalWork));
      }
    }
    const nbrs = new Int32Array(queries.n * k);
    const dists = new Float32Array(queries.n * k);
    await Promise.all(stages.flatMap((st) => [st.ids.mapAsync(GPUMapMode.READ), st.dists.mapAsync(GPUMapMode.READ)]));
    stats.hostRoundTrips++;
    for (const st of stages) {
      nbrs.set(new Int32Array(st.ids.getMappedRange()), st.row0 * k);
      dists.set(new Float32Array(st.dists.getMappedRange()), st.row0 * k);
    }
    return { nbrs, dists, stats };
  } finally {
    for (const b of [heapSim, heapId, outId, outDist, params]) b.destroy();
    for (const st of stages) st.ids.destroy(), st.dists.destroy();
    gBase.destroy();
    if (gQuery !== gBase) gQuery.destroy();
  }
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
  const rows = uploadRows(gpu, features, { maxBindingBytes: options.maxBindingBytes });
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
        knn: async ({ base, queries, k, onProgress }) => {
          const { nbrs, dists, stats } = await knnWebGpu(gpu, base, queries, k, { onProgress });
          return { nbrs, dists, gpu: stats };
        },
        pairs: (features, { minSim, onProgress }) => pairsWebGpu(gpu, features, minSim, { onProgress }),
      },
    ),
};
