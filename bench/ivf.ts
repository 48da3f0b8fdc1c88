/**
 * Benchmark: approximate kNN with the IVF index (gpu/knn/ivf.ts) against the exact CPU twin (onnxruntime SGEMM),
 * both measured in this run on the same rows: time ratio exact / IVF and recall@k of IVF against exact, per nprobe
 * and second-pass screen (`--screen-bits 8,32`: 8-bit screening, float32 on the rows kept, vs float32 products);
 * optionally HNSW (hnswlib-wasm, 2 worker shards) on the same rows as a second comparison point.
 *
 *     deno run -A bench/ivf.ts [--n 98279] [--dim 256] [--k 80] [--features FILE.bin] [--nlist L]
 *                              [--nprobe P[,P…]] [--screen-bits B[,B…]] [--exact-sample S] [--iterations I] [--coarse C]
 *                              [--train-per-list T] [--hnsw]
 *
 * Data: the synthetic benchmark generator (stages/synth.ts), first `--n` rows, or `--features`. Exact search runs on
 * every row by default (recall over all rows). With `--exact-sample S` it runs on S evenly spaced query rows only:
 * recall is measured on those rows and the exact time for all rows is extrapolated from the sample — its fixed
 * cost (chunk sessions, measured on 16 rows) once plus the per-row cost beyond it times all rows — which the
 * output says (for part1 scale, where full exact search takes ~16 min on 2 cores).
 * @module
 */
import { parseArgs } from "node:util";
import type { Features } from "../shared/features.ts";
import { recallAboveRecord, recallAtK, recallCounts, sampleRows } from "../cluster/knn_source.ts";
import { benchFeatures, peakRss } from "./knn.ts";
import { exactKnn, hnswKnn, ivfKnn } from "../gpu/knn/mod.ts";

/** Rows `ids` of `f` as their own feature set. */
function pick(f: Features, ids: Int32Array): Features {
  const data = new Float32Array(ids.length * f.dim);
  ids.forEach((i, t) => data.set(f.data.subarray(i * f.dim, (i + 1) * f.dim), t * f.dim));
  return { data, n: ids.length, dim: f.dim };
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
      nlist: { type: "string" },
      nprobe: { type: "string" },
      "screen-bits": { type: "string" },
      "exact-sample": { type: "string" },
      iterations: { type: "string" },
      coarse: { type: "string" },
      "train-per-list": { type: "string" },
      hnsw: { type: "boolean" },
    },
    strict: true,
  });
  const dim = Number(values.dim ?? 256), k = Number(values.k ?? 80);
  const f = benchFeatures(values, { dim, k });
  const n = f.n;

  const sampleSize = values["exact-sample"] === undefined ? n : Math.min(n, Number(values["exact-sample"]));
  const rows = sampleRows(n, sampleSize);
  const timedExact = async (queries?: Features) => {
    const t = performance.now();
    const r = await exactKnn(f, { k, backend: "cpu", queries, progress: true });
    return { ...r, secs: (performance.now() - t) / 1000 };
  };
  let exSecs: number;
  let ex: Awaited<ReturnType<typeof timedExact>>;
  if (sampleSize === n) {
    ex = await timedExact();
    exSecs = ex.secs;
    console.log(
      `exact kNN, ${ex.backend}, all ${n} rows: ${exSecs.toFixed(1)} s (${
        (2 * n * n * dim / exSecs / 1e9).toFixed(0)
      } GFLOP/s)`,
    );
  } else {
    // a run's fixed cost (building and pre-packing its base chunk sessions) is measured on a 16-row query set and
    // counted once; the per-row cost beyond it is scaled to all rows
    const fixed = (await timedExact(pick(f, sampleRows(n, 16)))).secs;
    ex = await timedExact(pick(f, rows));
    const perRow = Math.max(0, ex.secs - fixed) / (sampleSize - 16);
    exSecs = fixed + perRow * n;
    console.log(
      `exact kNN, ${ex.backend}, ${sampleSize} sampled query rows: ${ex.secs.toFixed(1)} s; fixed cost (16 rows) ${
        fixed.toFixed(1)
      } s → all ${n} rows EXTRAPOLATED (fixed + per-row × ${n}): ${exSecs.toFixed(0)} s (${
        (2 * n * n * dim / exSecs / 1e9).toFixed(0)
      } GFLOP/s)`,
    );
  }

  const nprobes = values.nprobe === undefined ? [undefined] : values.nprobe.split(",").map(Number);
  const screens = (values["screen-bits"] ?? "8").split(",").map(Number);
  for (const [nprobe, screenBits] of nprobes.flatMap((p) => screens.map((b) => [p, b] as const))) {
    const ti = performance.now();
    const r = await ivfKnn(f, {
      k,
      nlist: values.nlist === undefined ? undefined : Number(values.nlist),
      nprobe,
      screenBits,
      iterations: values.iterations === undefined ? undefined : Number(values.iterations),
      coarse: values.coarse === undefined ? undefined : Number(values.coarse),
      trainPerList: values["train-per-list"] === undefined ? undefined : Number(values["train-per-list"]),
    });
    const secs = (performance.now() - ti) / 1000;
    const counts = recallCounts({ n, k, nbrs: r.nbrs, dists: r.dists }, ex.graph, rows);
    const recall = counts.hits / (rows.length * k);
    const above = recallAboveRecord(counts.above)
      .map((a) => `≥ ${a.similarity}: ${a.recall.toFixed(4)} of ${a.neighbours}`).join(", ");
    const p = r.params, s = r.stats, ph = r.phaseSeconds;
    console.log(
      `IVF (${r.label}) nlist ${p.nlist} nprobe ${p.nprobe} screen ${p.screenBits}-bit (train ${s.trainRows} rows: ${p.coarse} coarse, then ${p.iterations} it; ` +
        `largest list ${s.largestList}, ${s.emptyLists} empty; scanned ${(100 * s.scannedFraction).toFixed(2)}% ` +
        `of pairs): build ${r.buildSeconds.toFixed(1)} s + query ${r.querySeconds.toFixed(1)} s = ${
          secs.toFixed(1)
        } s; recall@${k} ${recall.toFixed(4)} on ${rows.length} rows; exact / IVF = ${(exSecs / secs).toFixed(1)}×`,
    );
    console.log(`  recall of the exact neighbours at or above a similarity: ${above}`);
    console.log(
      `  phases: train ${ph.train.toFixed(1)} s, assign ${ph.assign.toFixed(1)} s, quantize ${
        ph.quantize.toFixed(1)
      } s, rank probes ${ph.rank.toFixed(1)} s, first pass ${ph.firstPass.toFixed(1)} s, second pass ${
        ph.secondPass.toFixed(1)
      } s`,
    );
  }

  if (values.hnsw) {
    const th = performance.now();
    const h = await hnswKnn(f, { k, shards: navigator.hardwareConcurrency > 1 ? 2 : 1 });
    const secs = (performance.now() - th) / 1000;
    const recall = recallAtK({ n, k, nbrs: h.nbrs, dists: h.dists }, ex.graph, rows);
    console.log(
      `HNSW (hnswlib-wasm, M ${h.params.m}, efC ${h.params.efConstruction}, ef ${h.params.ef}, ${h.shards} shards): ` +
        `build ${h.buildSeconds.toFixed(1)} s + query ${h.querySeconds.toFixed(1)} s = ${secs.toFixed(1)} s; ` +
        `recall@${k} ${recall.toFixed(4)}; exact / HNSW = ${(exSecs / secs).toFixed(1)}×`,
    );
  }
  console.log(`peak RSS (whole process, data generation included): ${(peakRss() / 1e9).toFixed(2)} GB`);
}

if (import.meta.main) await run(Deno.args);
