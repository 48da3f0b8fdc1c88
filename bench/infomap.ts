/**
 * Benchmark: our Infomap (cluster/infomap.ts) against the reference (npm `@mapequation/infomap` 2.15.1, wasm CLI, one
 * thread — the comparison point, measured in the same run) on a thresholded kNN similarity graph. Prints both times,
 * the ratio, both codelengths (each partition also scored by the other implementation's formula) and pairwise F.
 *
 *     deno run -A bench/infomap.ts [--n 98279] [--th 0.5[,0.6…]] [--trials 1] [--seed 123] [--k 80]
 *                                  [--knn FILE.npz --labels FILE.meta] [--save DIR] [--skip-reference]
 *                                  [--reference-input once|knn]
 *
 * Data: the synthetic benchmark generator (stages/synth.ts, seed 7, as bench/knn.ts uses) truncated to `--n` rows,
 * exact kNN (k 80) on the CPU twin; or a kNN file with its labels. `--n 584013` is MS1M part1 scale (≈ 47M directed
 * kNN entries before thresholding); `--save DIR` keeps the kNN and labels
 * (DIR/knn.npz, DIR/labels.meta) for re-runs with `--knn … --labels …`. Our time counts building the graph from
 * the kNN arrays plus the optimisation; the reference's counts its process (parse, flow, optimise, write) and its own
 * engine total, not the writing of its link list (reported apart). Its input is the same network either way:
 * `once` (default) lists each link once with the summed weight; `knn` lists every kept kNN entry, both directions of
 * a pair included, which it sums itself — but at part1 scale that list (≈ 32M lines at th 0.6) exhausts the wasm
 * build's 2 GB heap (`std::bad_alloc`, measured), so a failure of the reference is reported, not fatal.
 * @module
 */
import { parseArgs } from "node:util";
import { LtcError } from "../shared/errors.ts";
import { l2NormalizeRows } from "../shared/features.ts";
import { type KnnGraph, readKnn, writeKnn } from "../shared/knn_file.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { pairwise } from "../cluster/metrics.ts";
import { exactKnn } from "../gpu/knn/mod.ts";
import { infomap, knnSimilarityGraph, mapEquation } from "../cluster/infomap.ts";
import { DEFAULT_SYNTH, generateSynth } from "../cluster/synth.ts";
import { HAS_REFERENCE, runReference, writeGraphLinkList, writeKnnLinkList } from "./infomap_reference.ts";

const secs = (t0: number) => (performance.now() - t0) / 1000;

/** The generator's clustered unit vectors, first `n` rows, with their identities. */
function syntheticSet(n: number, dim: number): { data: Float32Array; labels: Int32Array } {
  let ids = Math.ceil((n / DEFAULT_SYNTH.meanSize) * 1.05) + 2;
  for (;;) {
    const s = generateSynth({ ...DEFAULT_SYNTH, dim, ids, seed: 7 });
    if (s.n >= n) {
      const data = s.features.subarray(0, n * dim);
      l2NormalizeRows(data, n, dim);
      return { data, labels: s.labels.subarray(0, n) };
    }
    ids = Math.ceil(ids * 1.2);
  }
}

/** Run the benchmark with command-line style arguments. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      n: { type: "string" },
      th: { type: "string" },
      trials: { type: "string" },
      seed: { type: "string" },
      k: { type: "string" },
      knn: { type: "string" },
      labels: { type: "string" },
      save: { type: "string" },
      "skip-reference": { type: "boolean" },
      "reference-input": { type: "string" },
    },
    strict: true,
  });
  const referenceInput = values["reference-input"] ?? "once";
  if (referenceInput !== "once" && referenceInput !== "knn") {
    throw new Error(`bench infomap: --reference-input must be once or knn, got ${referenceInput}`);
  }
  const trials = Number(values.trials ?? 1), seed = Number(values.seed ?? 123), k = Number(values.k ?? 80);
  let knn: KnnGraph, gt: Int32Array;
  const t0 = performance.now();
  if (values.knn) {
    if (!values.labels) throw new Error("bench infomap: --knn needs --labels");
    knn = readKnn(values.knn);
    gt = readLabels(values.labels);
    console.log(
      `data: ${values.knn} (n=${knn.n}, k=${knn.k}), labels ${values.labels}; read in ${secs(t0).toFixed(1)} s`,
    );
  } else {
    const n = Number(values.n ?? 98279), dim = 256;
    const s = syntheticSet(n, dim);
    const tk = performance.now();
    const ex = await exactKnn({ data: s.data, n, dim }, { k, backend: "cpu", progress: true });
    knn = ex.graph;
    gt = s.labels;
    console.log(
      `data: synthetic clustered unit vectors (stages/synth.ts, seed 7) n=${n} dim=${dim}; exact kNN k=${k} ` +
        `(${ex.backend}) ${secs(tk).toFixed(1)} s`,
    );
    if (values.save) {
      Deno.mkdirSync(values.save, { recursive: true });
      writeKnn(`${values.save}/knn.npz`, knn);
      writeLabels(`${values.save}/labels.meta`, gt);
    }
  }
  console.log(
    `machine: ${navigator.hardwareConcurrency} CPU threads (shared; wall clock is noisy); trials ${trials}, seed ${seed}`,
  );
  const linkFile = Deno.makeTempFileSync({ prefix: "ltc-bench-infomap-", suffix: ".txt" });
  try {
    for (const th of (values.th ?? "0.5").split(",").map(Number)) {
      const tg = performance.now();
      const graph = knnSimilarityGraph(knn, { thSim: th });
      const buildSecs = secs(tg);
      const to = performance.now();
      const ours = infomap(graph, { trials, seed });
      const optSecs = secs(to);
      const oursSecs = buildSecs + optSecs;
      const fOurs = pairwise(gt, ours.labels).fscore;
      const cl = ours.codelength.toFixed(6);
      console.log(
        `\nth ${th}: ${graph.indices.length / 2} undirected links (${graph.n} nodes)\n` +
          `  ours (TypeScript, 1 thread): ${oursSecs.toFixed(2)} s (graph ${buildSecs.toFixed(2)} s + ` +
          `optimise ${optSecs.toFixed(2)} s); codelength ${cl} bits, ${ours.modules} modules, F ${fOurs.toFixed(4)}`,
      );
      if (values["skip-reference"] || !HAS_REFERENCE) {
        console.log(`  reference: ${HAS_REFERENCE ? "skipped" : "not installed (npm ci)"}`);
        continue;
      }
      const tw = performance.now();
      const links = referenceInput === "once"
        ? writeGraphLinkList(graph, linkFile)
        : writeKnnLinkList(knn, th, linkFile);
      const writeSecs = secs(tw);
      let ref;
      try {
        ref = await runReference(linkFile, { n: knn.n, trials, seed });
      } catch (err) {
        if (!(err instanceof LtcError)) throw err;
        console.log(`  reference failed on ${links} link lines (${referenceInput}): ${err.message.slice(0, 300)}`);
        continue;
      }
      const refModules = new Set(ref.labels).size;
      const fRef = pairwise(gt, ref.labels).fscore;
      const cross = await runReference(linkFile, { n: knn.n, evaluate: ours.labels });
      const refEngine = ref.engineSeconds.toFixed(2), refCl = ref.codelength.toFixed(6);
      console.log(
        `  reference (@mapequation/infomap 2.15.1 wasm CLI, 1 thread): ${ref.wallSeconds.toFixed(2)} s process ` +
          `(engine total ${refEngine} s; link list of ${links} lines (${referenceInput}) written in ` +
          `${writeSecs.toFixed(1)} s, not counted); codelength ${refCl} bits, ${refModules} modules, ` +
          `F ${fRef.toFixed(4)}\n` +
          `  ratio reference / ours = ${(ref.wallSeconds / oursSecs).toFixed(2)}× (process), ` +
          `${(ref.engineSeconds / oursSecs).toFixed(2)}× (its engine total alone); ` +
          `codelength ours / reference = ${(ours.codelength / ref.codelength).toFixed(5)}; ` +
          `F ours − reference = ${(fOurs - fRef).toFixed(4)}\n` +
          `  cross-check: reference scores our partition ${cross.codelength.toFixed(6)} bits; we score its ` +
          `partition ${mapEquation(graph, ref.labels).toFixed(6)} bits`,
      );
    }
  } finally {
    Deno.removeSync(linkFile);
  }
}

if (import.meta.main) await run(Deno.args);
