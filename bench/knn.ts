/**
 * Benchmark: exact kNN (k 80, inner product) on the CPU twin, with comparison points measured in the same run —
 * the machine's GEMM rate (onnxruntime's MLAS SGEMM alone on the same operand shapes, and numpy's when
 * `/usr/bin/python3` has numpy) and faiss `IndexFlatIP` (when python3-faiss is installed) — plus HNSW
 * (hnswlib-wasm) build/query time and recall against exact, and the WGSL kernel's rate when a WebGPU adapter is
 * present (llvmpipe, a CPU rasteriser, is labelled as such and run on a subset).
 *
 *     deno run -A bench/knn.ts [--n 98279] [--dim 256] [--k 80] [--features FILE.bin] [--hnsw-n 20000]
 *                              [--gpu-n N] [--skip-faiss] [--skip-hnsw] [--skip-webgpu] [--skip-roof] [--write]
 *                              [--memory]
 *
 * Data: the synthetic benchmark generator (stages/synth.ts: clustered unit vectors like MS1M face embeddings),
 * truncated to `--n` rows, or `--features`. `--n 584013 --memory` is the memory run (part1 scale; = skip faiss,
 * HNSW, WebGPU and the roofs, and write the npz): it prints wall time and the process's peak RSS (VmHWM), which
 * here also counts the generator's own buffers — for the stage alone run `/usr/bin/time -v deno task knn …`.
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { type Features, l2NormalizeRows, readFeatures } from "../shared/features.ts";
import { writeKnn } from "../shared/knn_file.ts";
import { recallAtK, sampleRows } from "../cluster/knn_source.ts";
import { DEFAULT_SYNTH, generateSynth } from "../cluster/synth.ts";
import { getGpu } from "../gpu/device.ts";
import { hnswKnn } from "../gpu/knn/hnsw.ts";
import { exactKnn } from "../gpu/knn/mod.ts";
import { int64Initializer, OnnxType } from "../gpu/onnx.ts";
import { createSession, loadOrt } from "../gpu/ort.ts";

/** Peak resident set size of this process in bytes (Linux VmHWM), or the current RSS elsewhere. */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss;
}

const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

/**
 * The benchmark's rows, read from `--features` or generated ({@linkcode syntheticFeatures}, `--n` rows, default
 * 98,279), with one line saying what they are and how long they took to prepare.
 */
export function benchFeatures(
  values: { features?: string; n?: string },
  options: { dim: number; k: number },
): Features {
  const t0 = performance.now();
  const f = values.features
    ? readFeatures(values.features, { dim: options.dim })
    : syntheticFeatures(Number(values.n ?? 98279), options.dim);
  console.log(
    `data: ${values.features ?? "synthetic clustered unit vectors (cluster/synth.ts)"}  n=${f.n} dim=${options.dim} ` +
      `k=${options.k}  (${((performance.now() - t0) / 1000).toFixed(1)} s to prepare)`,
  );
  console.log(`machine: ${navigator.hardwareConcurrency} CPU threads; timings are wall clock (noisy on a shared box)`);
  return f;
}

/** Synthetic clustered unit vectors: the benchmark generator's output, first `n` rows. */
export function syntheticFeatures(n: number, dim: number): Features {
  let ids = Math.ceil((n / DEFAULT_SYNTH.meanSize) * 1.05) + 2;
  for (;;) {
    const s = generateSynth({ ...DEFAULT_SYNTH, dim, ids, seed: 7 });
    if (s.n >= n) {
      const data = s.features.subarray(0, n * dim);
      l2NormalizeRows(data, n, dim);
      return { data, n, dim };
    }
    ids = Math.ceil(ids * 1.2);
  }
}

/** onnxruntime's SGEMM alone on [4096 × dim]·[32768 × dim]ᵀ (the kNN's operand shapes), best of 3, in GFLOP/s. */
async function ortGemmRoof(dim: number): Promise<number> {
  const rt = await loadOrt();
  const m = 4096, n = 32768;
  const x = new Float32Array(n * dim).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const q = new Float32Array(m * dim).map((_, i) => ((i * 40503) % 997) / 997 - 0.5);
  const session = await createSession(rt, {
    nodes: [
      { op: "Gemm", inputs: ["Q", "X"], outputs: ["S"], attrs: { transB: 1 } },
      { op: "Slice", inputs: ["S", "starts", "ends"], outputs: ["O"] },
    ],
    inputs: [{ name: "Q", type: OnnxType.FLOAT, dims: [m, dim] }],
    outputs: [{ name: "O", type: OnnxType.FLOAT, dims: [1, 1] }],
    initializers: [
      { name: "X", type: OnnxType.FLOAT, dims: [n, dim], data: x },
      int64Initializer("starts", [0, 0]),
      int64Initializer("ends", [1, 1]),
    ],
  });
  const feeds = { Q: new rt.ort.Tensor("float32", q, [m, dim]) };
  await session.run(feeds);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  await session.release?.();
  return (2 * m * n * dim) / best / 1e9;
}

/** Run a python snippet with /usr/bin/python3; null when python or a module is missing. */
async function python(code: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", code], stdout: "piped", stderr: "piped" })
      .output();
    if (out.code !== 0) return null;
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return null;
  }
}

/** numpy's SGEMM on the same shapes, best of 3, GFLOP/s (null without numpy). */
async function numpyGemmRoof(dim: number): Promise<number | null> {
  const out = await python(`
import numpy as np, time
a = np.random.rand(4096, ${dim}).astype(np.float32); b = np.random.rand(32768, ${dim}).astype(np.float32)
best = 1e9
for _ in range(3):
    t = time.perf_counter(); c = a @ b.T; best = min(best, time.perf_counter() - t)
print(2 * 4096 * 32768 * ${dim} / best / 1e9)`);
  return out === null ? null : Number(out);
}

/** faiss IndexFlatIP add + search on the same rows: seconds and the neighbour ids (null without faiss). */
async function faissFlatIp(f: Features, k: number): Promise<{ secs: number; nbrs: Int32Array } | null> {
  const dir = Deno.makeTempDirSync({ prefix: "ltc-bench-knn-" });
  try {
    Deno.writeFileSync(`${dir}/x.bin`, new Uint8Array(f.data.buffer, f.data.byteOffset, f.n * f.dim * 4));
    const out = await python(`
import numpy as np, time, faiss
x = np.fromfile("${dir}/x.bin", dtype=np.float32).reshape(-1, ${f.dim})
t = time.perf_counter()
index = faiss.IndexFlatIP(${f.dim}); index.add(x); sims, nbrs = index.search(x, ${k})
dt = time.perf_counter() - t
nbrs.astype(np.int32).tofile("${dir}/nbrs.bin")
print(dt, faiss.omp_get_max_threads())`);
    if (out === null) return null;
    const [secs] = out.split(" ").map(Number);
    return { secs: secs!, nbrs: new Int32Array(Deno.readFileSync(`${dir}/nbrs.bin`).buffer) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Mean share of row i's k ids that two graphs have in common. */
function agreement(a: Int32Array, b: Int32Array, n: number, k: number): number {
  let hit = 0;
  for (let i = 0; i < n; i++) {
    const s = new Set(a.subarray(i * k, (i + 1) * k));
    for (let t = 0; t < k; t++) if (s.has(b[i * k + t]!)) hit++;
  }
  return hit / (n * k);
}

/** Run the benchmark. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      n: { type: "string" },
      dim: { type: "string" },
      k: { type: "string" },
      features: { type: "string" },
      "hnsw-n": { type: "string" },
      "gpu-n": { type: "string" },
      "skip-faiss": { type: "boolean" },
      "skip-hnsw": { type: "boolean" },
      "skip-webgpu": { type: "boolean" },
      "skip-roof": { type: "boolean" },
      write: { type: "boolean" },
      memory: { type: "boolean" },
    },
    strict: true,
  });
  if (values.memory) {
    for (const flag of ["skip-faiss", "skip-hnsw", "skip-webgpu", "skip-roof", "write"] as const) values[flag] = true;
  }
  const dim = Number(values.dim ?? 256), k = Number(values.k ?? 80);
  const f = benchFeatures(values, { dim, k });
  const n = f.n;
  const flop = 2 * n * n * dim;

  let ortRoof: number | null = null, npRoof: number | null = null;
  if (!values["skip-roof"]) {
    ortRoof = await ortGemmRoof(dim);
    npRoof = await numpyGemmRoof(dim);
    console.log(
      `GEMM roof: onnxruntime SGEMM ${ortRoof.toFixed(0)} GFLOP/s; numpy ${
        npRoof === null ? "unavailable" : `${npRoof.toFixed(0)} GFLOP/s`
      }`,
    );
  }

  const te = performance.now();
  const ex = await exactKnn(f, { k, backend: "cpu", progress: true });
  const exSecs = (performance.now() - te) / 1000;
  const rate = flop / exSecs / 1e9;
  console.log(`exact kNN, ${ex.backend}: ${exSecs.toFixed(2)} s = ${rate.toFixed(0)} GFLOP/s`);
  if (ortRoof) console.log(`  = ${((100 * rate) / ortRoof).toFixed(0)}% of the onnxruntime SGEMM roof`);
  if (npRoof) console.log(`  = ${((100 * rate) / npRoof).toFixed(0)}% of the numpy SGEMM roof`);
  if (values.write) {
    const dir = Deno.makeTempDirSync({ prefix: "ltc-bench-knn-" });
    const tw = performance.now();
    await writeKnn(`${dir}/faiss_k_${k}.npz`, ex.graph);
    const bytes = Deno.statSync(`${dir}/faiss_k_${k}.npz`).size;
    console.log(`  npz write: ${((performance.now() - tw) / 1000).toFixed(1)} s, ${gb(bytes)}`);
    Deno.removeSync(dir, { recursive: true });
  }
  console.log(`  peak RSS so far: ${gb(peakRss())}`);

  if (!values["skip-faiss"]) {
    const fa = await faissFlatIp(f, k);
    if (fa) {
      console.log(
        `faiss IndexFlatIP (python3-faiss, comparison point): ${fa.secs.toFixed(2)} s; ` +
          `ratio faiss / ltc = ${(fa.secs / exSecs).toFixed(2)}×; neighbour agreement ${
            agreement(fa.nbrs, ex.graph.nbrs, n, k).toFixed(5)
          }`,
      );
    } else console.log("faiss IndexFlatIP: unavailable (/usr/bin/python3 with faiss not found)");
  }

  const hn = Math.min(n, Number(values["hnsw-n"] ?? 20000));
  if (!values["skip-hnsw"] && hn > k) {
    const sub: Features = { data: f.data.subarray(0, hn * dim), n: hn, dim };
    const shards = navigator.hardwareConcurrency > 1 ? 2 : 1;
    for (const s of [1, shards].filter((v, i, a) => a.indexOf(v) === i)) {
      const th = performance.now();
      const h = await hnswKnn(sub, { k, shards: s });
      const hSecs = (performance.now() - th) / 1000;
      const tx = performance.now();
      const exSub = await exactKnn(sub, { k, backend: "cpu", progress: false });
      const exSubSecs = (performance.now() - tx) / 1000;
      const recall = recallAtK({ n: hn, k, nbrs: h.nbrs, dists: h.dists }, exSub.graph, sampleRows(hn, hn));
      console.log(
        `HNSW (hnswlib-wasm, M ${h.params.m}, efC ${h.params.efConstruction}, ef ${h.params.ef}, ${s} shard${
          s > 1 ? "s in worker threads" : ""
        }) on ${hn} rows: build ${h.buildSeconds.toFixed(1)} s + query ${h.querySeconds.toFixed(1)} s = ` +
          `${hSecs.toFixed(1)} s; recall@${k} ${recall.toFixed(4)}; exact CPU on the same rows ${
            exSubSecs.toFixed(2)
          } s ` +
          `(HNSW / exact = ${(hSecs / exSubSecs).toFixed(1)}×)`,
      );
    }
  }

  if (!values["skip-webgpu"]) {
    const gpu = await getGpu();
    if (!gpu) console.log("WebGPU: no adapter");
    else {
      const gn = Math.min(n, Number(values["gpu-n"] ?? (gpu.isFallback ? 4096 : n)));
      const sub: Features = { data: f.data.subarray(0, gn * dim), n: gn, dim };
      await exactKnn({ data: sub.data.subarray(0, 128 * dim), n: 128, dim }, { k: 8, backend: "webgpu" }); // compile
      const tg = performance.now();
      const g = await exactKnn(sub, { k, backend: "webgpu", progress: true });
      const gSecs = (performance.now() - tg) / 1000;
      const label = gpu.isFallback ? " [software adapter: llvmpipe-class CPU rasteriser, not a GPU]" : "";
      const twin = gn === n ? ex : await exactKnn(sub, { k, backend: "cpu", progress: false });
      console.log(
        `WGSL exact kNN, ${g.backend}${label} on ${gn} rows: ${gSecs.toFixed(2)} s = ` +
          `${((2 * gn * gn * dim) / gSecs / 1e9).toFixed(1)} GFLOP/s; neighbour agreement with the CPU twin ${
            agreement(g.graph.nbrs, twin.graph.nbrs, gn, k).toFixed(5)
          }`,
      );
    }
  }
  console.log(`peak RSS: ${gb(peakRss())}`);
}

if (import.meta.main) await run(Deno.args);
