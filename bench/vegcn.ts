/**
 * Benchmark of GCN-V at MS1M part1 scale (584,013 × 256, kNN k 80): whole-graph inference (the adjacency, the
 * network, the peak rule — what `test-gcn-v` computes; issue target < 30 s on the CPU twin) and one whole-graph
 * training iteration (forward, backward, SGD step: the unit of the original's 80,000-iteration schedule), on the
 * CPU twin and on WebGPU.
 *
 *     deno task bench vegcn [--n=584013] [--gpu-n=20000] [--ts-rows=36501] [--no-train] [--no-webgpu] [--seed=1]
 *                           [--webgpu-only] [--json FILE]
 *
 * Data are synthesised in memory: identities of 4–300 members (log-normal sizes, mean ≈ 68 as MS1M's), features =
 * identity centre + noise (unit vectors), and each node's kNN row = itself, then up to 79 random members of its
 * identity, then random others, at ascending distances — ≈ 100 entries per row of max(S, Sᵀ), as real kNN graphs
 * of face embeddings give. Timings do not depend on the values.
 *
 * Comparison points measured in the same run: the TypeScript products (the CPU twin without onnxruntime) on the
 * first `--ts-rows` rows, scaled to all rows (the dense work is linear in rows); WebGPU against the CPU twin at
 * `--gpu-n` rows (here WebGPU is Mesa llvmpipe, a CPU rasteriser: use a small n and read the ratio as such).
 * `--webgpu-only` (the GPU machine, which has no onnxruntime): WebGPU at all `--n` rows, and where `python3` with
 * torch and a CUDA device exists, the same network in PyTorch (`bench/torch_gcnv.py`, fp32, TF32 off) on the same
 * graph, features and weights as the comparison point, with the largest difference of the confidences.
 * @module
 */
import { runTorchScript } from "./torch.ts";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { Rng } from "../shared/random.ts";
import type { Features } from "../shared/features.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import { backendLabel, resolveBackend } from "../gpu/device.ts";
import {
  CsrAggregator,
  forward,
  gcnVConfig,
  initWeights,
  mseGradients,
  paramList,
  sgdStep,
  tsKernels,
  veGcnBackend,
} from "../gpu/vegcn/mod.ts";
import { gcnAdjacency, sNbrConfidence, testGcnV } from "../cluster/gcn_v.ts";

const DIM = 256, K = 80;

/** Seconds of CPU this process has used (all threads), from /proc; NaN where there is none. */
function cpuSeconds(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; wall: number; cpu: number }> {
  const t = performance.now(), c = cpuSeconds();
  const value = await fn();
  return { value, wall: (performance.now() - t) / 1000, cpu: cpuSeconds() - c };
}

function fmt(t: { wall: number; cpu: number }): string {
  return `${t.wall.toFixed(2)} s wall (${t.cpu.toFixed(1)} s CPU)`;
}

/** The synthetic world: features, identities and a kNN graph (see the module header). */
export function synthesise(n: number, seed: number): { features: Features; knn: KnnGraph; labels: Int32Array } {
  const rng = new Rng(seed);
  const labels = new Int32Array(n);
  const starts: number[] = [];
  for (let i = 0, id = 0; i < n; id++) {
    const u = Math.max(1e-12, rng.next());
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
    const size = Math.min(n - i, Math.max(4, Math.min(300, Math.round(Math.exp(Math.log(60) + 0.5 * z)))));
    starts.push(i);
    labels.fill(id, i, i + size);
    i += size;
  }
  starts.push(n);
  const data = new Float32Array(n * DIM);
  const centre = new Float32Array(DIM);
  for (let c = 0; c + 1 < starts.length; c++) {
    for (let j = 0; j < DIM; j++) centre[j] = rng.normal();
    for (let i = starts[c]!; i < starts[c + 1]!; i++) {
      let s = 0;
      for (let j = 0; j < DIM; j++) {
        const v = centre[j]! + 0.9 * rng.normal();
        data[i * DIM + j] = v;
        s += v * v;
      }
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < DIM; j++) data[i * DIM + j]! *= inv;
    }
  }
  const nbrs = new Int32Array(n * K), dists = new Float32Array(n * K);
  for (let c = 0; c + 1 < starts.length; c++) {
    const lo = starts[c]!, hi = starts[c + 1]!, size = hi - lo;
    const pool = Int32Array.from({ length: size }, (_, t) => lo + t);
    for (let i = lo; i < hi; i++) {
      const row = i * K;
      nbrs[row] = i;
      let got = 1;
      // members of the identity in random order (partial Fisher–Yates), then random others
      for (let t = 0; t < size && got < K; t++) {
        const j = t + rng.int(size - t);
        const tmp = pool[t]!;
        pool[t] = pool[j]!;
        pool[j] = tmp;
        if (pool[t] !== i) nbrs[row + got++] = pool[t]!;
      }
      while (got < K) nbrs[row + got++] = rng.int(n);
      const base = 0.15 + 0.2 * rng.next();
      for (let t = 1; t < K; t++) dists[row + t] = Math.min(1, base + (0.6 * t) / K);
    }
  }
  return { features: { data, n, dim: DIM }, knn: { n, k: K, nbrs, dists }, labels };
}

/** A prefix of the world: the first `rows` nodes, neighbours outside it dropped (padding −1). */
function prefix(world: ReturnType<typeof synthesise>, rows: number): ReturnType<typeof synthesise> {
  const nbrs = world.knn.nbrs.slice(0, rows * K), dists = world.knn.dists.slice(0, rows * K);
  for (let t = 0; t < nbrs.length; t++) if (nbrs[t]! >= rows) nbrs[t] = -1;
  return {
    features: { data: world.features.data.subarray(0, rows * DIM), n: rows, dim: DIM },
    knn: { n: rows, k: K, nbrs, dists },
    labels: world.labels.subarray(0, rows),
  };
}

/** One whole-graph training iteration on `world` with the products of `choice`. */
async function trainIteration(world: ReturnType<typeof synthesise>, choice: "cpu" | "webgpu", seed: number) {
  const backend = await veGcnBackend(choice);
  const weights = initWeights(gcnVConfig(DIM, 512), new Rng(seed, 5));
  const target = sNbrConfidence(world.knn, world.labels);
  const agg = await backend.aggregator(gcnAdjacency(world.knn));
  const state = { momentum: null, steps: 0 };
  const step = () =>
    timed(async () => {
      const { grads } = await mseGradients(weights, { x: world.features.data, agg, target }, {
        kernels: backend.kernels,
      });
      sgdStep(weights, grads, state, { lr: 0.1, momentum: 0.9, weightDecay: 1e-5 });
    });
  // the first iteration includes what stays for the next ones (a backend may keep the graph's data resident)
  const first = await step();
  const t = await step();
  return { ...t, first, label: backend.label };
}

/** Run the benchmark (`deno task bench vegcn [options]`). */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      n: { type: "string" },
      "gpu-n": { type: "string" },
      "ts-rows": { type: "string" },
      "no-train": { type: "boolean" },
      "no-webgpu": { type: "boolean" },
      seed: { type: "string" },
      "webgpu-only": { type: "boolean" },
      json: { type: "string" },
    },
    strict: true,
  });
  if (values["webgpu-only"]) return await webGpuOnly(Number(values.n ?? 584013), Number(values.seed ?? 1), values.json);
  const n = Number(values.n ?? 584013), gpuN = Number(values["gpu-n"] ?? 20000);
  const tsRows = Math.min(n, Number(values["ts-rows"] ?? Math.ceil(n / 16)));
  const seed = Number(values.seed ?? 1);
  const made = await timed(() => synthesise(n, seed));
  const world = made.value;
  const adj = gcnAdjacency(world.knn);
  console.log(
    `data: synthetic identities, n=${n} dim=${DIM} k=${K}, ${(adj.rowPtr[n]! / n).toFixed(1)} entries per row of ` +
      `A (${made.wall.toFixed(1)} s to make); ${navigator.hardwareConcurrency} cores`,
  );
  const weights = initWeights(gcnVConfig(DIM, 512), new Rng(seed, 3));

  // inference on the CPU twin: what test-gcn-v computes (adjacency, network, peak rule)
  const cpu = await timed(() => testGcnV({ ...world, weights, backend: "cpu", keepFeatures: false }));
  console.log(`GCN-V inference, ${cpu.value.backend}: ${fmt(cpu)} for ${n} nodes (target < 30 s at 584,013)`);
  const agg = new CsrAggregator(adj);
  const ax = await timed(() => agg.apply(world.features.data, DIM));
  console.log(`  of which the aggregation A·X (TypeScript, CSR): ${fmt(ax)}`);
  // comparison: the TypeScript products on the first ts-rows rows, scaled to n
  const part = prefix(world, tsRows);
  const partAgg = new CsrAggregator(gcnAdjacency(part.knn));
  const tsDense = await timed(() =>
    forward(weights, { x: part.features.data, agg: partAgg }, { kernels: tsKernels, inference: true })
  );
  const tsAll = (tsDense.wall * n) / tsRows;
  console.log(
    `  comparison: TypeScript products ${tsDense.wall.toFixed(2)} s on ${tsRows} rows → ${tsAll.toFixed(1)} s at ` +
      `${n}; the CPU twin's whole inference is ${(tsAll / cpu.wall).toFixed(1)}× faster than that forward alone`,
  );

  let gpu: Awaited<ReturnType<typeof resolveBackend>> | null = null;
  if (!values["no-webgpu"]) {
    gpu = await resolveBackend("webgpu").catch(() => null);
    if (!gpu || gpu.kind !== "webgpu") console.log("webgpu: no adapter here; skipped");
  }
  const small = gpu?.kind === "webgpu" ? prefix(world, Math.min(n, gpuN)) : null;
  if (small && gpu) {
    const m = small.features.n;
    // warm-up: compile the pipelines outside the timing
    await testGcnV({ ...prefix(world, 200), weights, backend: "webgpu", keepFeatures: false });
    const g = await timed(() => testGcnV({ ...small, weights, backend: "webgpu", keepFeatures: false }));
    const c = await timed(() => testGcnV({ ...small, weights, backend: "cpu", keepFeatures: false }));
    console.log(
      `GCN-V inference at n=${m}, ${backendLabel(gpu)}: ${fmt(g)}; CPU twin ${fmt(c)}: webgpu/cpu ` +
        `${(g.wall / c.wall).toFixed(2)}× the time`,
    );
  }
  if (values["no-train"]) return;
  // one whole-graph training iteration: the original's schedule runs 80,000 of them
  const it = await trainIteration(world, "cpu", seed);
  console.log(
    `GCN-V training iteration (forward, backward, SGD) at n=${n}, ${it.label}: ${fmt(it)}; 80,000 iterations ≈ ` +
      `${((it.wall * 80000) / 86400).toFixed(1)} days; one is ${(it.wall / cpu.wall).toFixed(1)}× an inference`,
  );
  if (small) {
    const m = small.features.n;
    const g = await trainIteration(small, "webgpu", seed);
    const c = await trainIteration(small, "cpu", seed);
    console.log(
      `GCN-V training iteration at n=${m}: ${g.label} ${fmt(g)}; CPU twin ${fmt(c)}: webgpu/cpu ` +
        `${(g.wall / c.wall).toFixed(2)}× the time`,
    );
  }
}

/** Write `a`'s bytes to `path`. */
function writeRaw(path: string, a: Float32Array | Int32Array): void {
  Deno.writeFileSync(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/**
 * PyTorch's GCN-V on the same graph, features and weights (`bench/torch_gcnv.py`): seconds of inference and of one
 * training iteration on data already on the device, and its confidences; null (saying why) without torch or CUDA.
 */
async function torchGcnV(
  world: ReturnType<typeof synthesise>,
  weights: ReturnType<typeof initWeights>,
  target: Float32Array,
): Promise<{ inference: number; train: number; device: string; pred: Float32Array } | null> {
  const dir = Deno.makeTempDirSync({ prefix: "ltc-bench-vegcn-" });
  try {
    const adj = gcnAdjacency(world.knn);
    const n = world.features.n;
    writeRaw(join(dir, "x.bin"), world.features.data);
    writeRaw(join(dir, "row_ptr.bin"), adj.rowPtr);
    writeRaw(join(dir, "cols.bin"), adj.colIdx);
    writeRaw(join(dir, "vals.bin"), adj.vals);
    writeRaw(join(dir, "target.bin"), target);
    const flat = paramList(weights);
    const all = new Float32Array(flat.reduce((s, a) => s + a.length, 0));
    flat.reduce((at, a) => (all.set(a, at), at + a.length), 0);
    writeRaw(join(dir, "params.bin"), all);
    const hid = weights.config.convDims[0]!;
    const r = await runTorchScript("torch_gcnv.py", [dir, String(n), String(DIM), String(hid), String(adj.rowPtr[n]!)]);
    if (!r) return null;
    const pred = new Float32Array(Deno.readFileSync(join(dir, "pred.bin")).buffer);
    return { inference: r.inference, train: r.train, device: r.device, pred };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The GPU machine's run: WebGPU inference and one training iteration at `n`, PyTorch on the same data beside. */
async function webGpuOnly(n: number, seed: number, json?: string): Promise<void> {
  const record: Record<string, unknown> = { n };
  const save = () => json && Deno.writeTextFileSync(json, JSON.stringify(record, null, 2) + "\n");
  const gpu = await resolveBackend("webgpu").catch(() => null);
  if (!gpu || gpu.kind !== "webgpu") {
    console.log("webgpu: no adapter here — nothing to measure");
    return;
  }
  const made = await timed(() => synthesise(n, seed));
  const world = made.value;
  const adj = gcnAdjacency(world.knn);
  console.log(
    `data: synthetic identities, n=${n} dim=${DIM} k=${K}, ${(adj.rowPtr[n]! / n).toFixed(1)} entries per row of ` +
      `A (${made.wall.toFixed(1)} s to make); adapter ${backendLabel(gpu)}`,
  );
  record.adapter = backendLabel(gpu);
  const weights = initWeights(gcnVConfig(DIM, 512), new Rng(seed, 3));
  // warm-up: compile the pipelines outside the timing
  const warm = await timed(() => testGcnV({ ...prefix(world, 200), weights, backend: "webgpu", keepFeatures: false }));
  const g = await timed(() => testGcnV({ ...world, weights, backend: "webgpu", keepFeatures: false }));
  console.log(
    `GCN-V inference (test-gcn-v's work: adjacency, network, peak rule) at n=${n}, webgpu: ${fmt(g)} ` +
      `(pipelines compiled before in ${fmt(warm)})`,
  );
  record.inference = { wall: g.wall, cpu: g.cpu, compile: warm.wall };
  save();
  // the network alone, as torch times it (the graph already built)
  const backend = await veGcnBackend("webgpu");
  const agg = await backend.aggregator(adj);
  const net = await timed(() =>
    forward(weights, { x: world.features.data, agg }, { kernels: backend.kernels, inference: true })
  );
  console.log(`  of which the network's forward pass (uploads and read-backs included): ${fmt(net)}`);
  record.forward = { wall: net.wall, cpu: net.cpu };
  save();
  const it = await trainIteration(world, "webgpu", seed);
  console.log(
    `GCN-V training iteration (forward, backward, SGD) at n=${n}, ${it.label}: ${fmt(it)} (the first, with the ` +
      `graph made resident: ${fmt(it.first)}); 80,000 iterations ≈ ${((it.wall * 80000) / 3600).toFixed(1)} h`,
  );
  record.trainIteration = { wall: it.wall, cpu: it.cpu, first: it.first.wall };
  save();
  const t = await torchGcnV(world, weights, sNbrConfidence(world.knn, world.labels));
  if (t) {
    let diff = 0;
    const ours = net.value.out;
    for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(ours[i]! - t.pred[i]!));
    console.log(
      `  torch on ${t.device}: forward ${t.inference.toFixed(3)} s (ours ${(net.wall / t.inference).toFixed(1)}× ` +
        `that), training iteration ${t.train.toFixed(3)} s (ours ${(it.wall / t.train).toFixed(1)}× that); largest ` +
        `|confidence − torch's| ${diff.toExponential(2)}`,
    );
    record.torch = { inference: t.inference, train: t.train, device: t.device, maxDiff: diff };
  }
  save();
}

if (import.meta.main) await run(Deno.args);
