/**
 * The comparison point for cluster/infomap.ts: the reference Infomap (npm `@mapequation/infomap`, its wasm CLI, one
 * thread), run as a separate process on a link-list file. That package is GPLv3 and a devDependency only: tests and
 * benchmarks use it as a black box; nothing in the product imports or runs it.
 *
 * Input is written the way the issue measured it: one line `i j similarity` per kNN entry with similarity > th (self
 * and padding skipped), so a pair listed from both sides appears twice and the reference sums it.
 * @module
 */
import { existsSync } from "node:fs";
import { LtcError } from "../shared/errors.ts";
import type { KnnGraph } from "../shared/knn_file.ts";
import type { WeightedGraph } from "../cluster/infomap.ts";

/** Where npm installs the reference's CLI (after `npm ci`). */
export const REFERENCE_CLI = new URL("../node_modules/@mapequation/infomap/cli.js", import.meta.url).pathname;

/** True when the reference package is installed. */
export const HAS_REFERENCE = existsSync(REFERENCE_CLI);

/** Write the kNN's thresholded entries as an Infomap link list; returns the number of links written. */
export function writeKnnLinkList(knn: KnnGraph, thSim: number, path: string): number {
  const { n, k, nbrs, dists } = knn;
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let links = 0;
  try {
    let lines: string[] = [];
    for (let i = 0; i < n; i++) {
      for (let t = i * k; t < i * k + k; t++) {
        const j = nbrs[t]!, s = 1 - dists[t]!;
        if (j < 0 || j === i || !(s > thSim)) continue;
        lines.push(`${i} ${j} ${s}\n`); // shortest round-trip decimal: the reference parses the same double
        links++;
      }
      if (lines.length >= 1 << 16 || i === n - 1) {
        const bytes = enc.encode(lines.join(""));
        for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
        lines = [];
      }
    }
  } finally {
    file.close();
  }
  return links;
}

/**
 * Write an undirected graph as an Infomap link list, each link once (`i j w` with i < j): the same network as the kNN
 * list with both directions (the reference sums those), in about half the lines and the reference's memory.
 */
export function writeGraphLinkList(graph: WeightedGraph, path: string): number {
  const { n, indptr, indices, weights } = graph;
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let links = 0;
  try {
    let lines: string[] = [];
    for (let i = 0; i < n; i++) {
      for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
        const j = indices[p]!;
        if (j <= i) continue;
        lines.push(`${i} ${j} ${weights[p]}\n`);
        links++;
      }
      if (lines.length >= 1 << 16 || i === n - 1) {
        const bytes = enc.encode(lines.join(""));
        for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
        lines = [];
      }
    }
  } finally {
    file.close();
  }
  return links;
}

/** Options of {@linkcode runReference}. */
export interface ReferenceOptions {
  /** number of nodes (nodes absent from the link list become singletons) */
  n: number;
  trials?: number;
  seed?: number;
  /** a partition to evaluate instead of optimising (`--cluster-data … --no-infomap`) */
  evaluate?: ArrayLike<number>;
}

/** What the reference reported. */
export interface ReferenceResult {
  /** module per node, as the reference numbers them; absent nodes get fresh ids after its modules */
  labels: Int32Array;
  /** codelength in bits (its summary JSON, full precision) */
  codelength: number;
  /** wall time of the whole process (start, parse, optimise, write), seconds */
  wallSeconds: number;
  /** the reference's own total (its timing JSON), seconds */
  engineSeconds: number;
}

/** Run the reference two-level, undirected, one thread, on a link-list file; output goes to a temp folder. */
export async function runReference(linkFile: string, options: ReferenceOptions): Promise<ReferenceResult> {
  if (!HAS_REFERENCE) throw new LtcError(`${REFERENCE_CLI}: reference Infomap not installed (run npm ci)`);
  const dir = Deno.makeTempDirSync({ prefix: "ltc-infomap-ref-" });
  try {
    const args = [
      "run",
      "-A",
      REFERENCE_CLI,
      linkFile,
      dir,
      "--two-level",
      "--flow-model",
      "undirected",
      "--num-threads",
      "1",
      "--num-trials",
      String(options.trials ?? 1),
      "--seed",
      String(options.seed ?? 123),
      "--output",
      "clu",
      "--out-name",
      "result",
      "--silent",
      "--summary-json",
      `${dir}/summary.json`,
      "--timing-json",
      `${dir}/timing.json`,
    ];
    if (options.evaluate) {
      const parts: string[] = [];
      for (let i = 0; i < options.evaluate.length; i++) parts.push(`${i} ${options.evaluate[i]! + 1}\n`);
      Deno.writeTextFileSync(`${dir}/input.clu`, parts.join(""));
      args.push("--cluster-data", `${dir}/input.clu`, "--no-infomap");
    }
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
    const wallSeconds = (performance.now() - t0) / 1000;
    if (out.code !== 0) {
      const err = new TextDecoder().decode(out.stderr).slice(-2000);
      throw new LtcError(`reference Infomap failed (exit ${out.code}): ${err}`);
    }
    const summary = JSON.parse(Deno.readTextFileSync(`${dir}/summary.json`));
    const timing = JSON.parse(Deno.readTextFileSync(`${dir}/timing.json`));
    return {
      labels: readClu(`${dir}/result.clu`, options.n),
      codelength: summary.codelength,
      wallSeconds,
      engineSeconds: timing.timing.total_s,
    };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Parse a `.clu` file (`node_id module flow` lines after `#` comments) into a label per node. */
function readClu(path: string, n: number): Int32Array {
  const labels = new Int32Array(n).fill(-1);
  let next = 0;
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [id, module] = line.split(" ").map(Number) as [number, number];
    if (!(id >= 0 && id < n)) throw new LtcError(`${path}: node id ${id} outside 0..${n - 1}`);
    labels[id] = module;
    if (module + 1 > next) next = module + 1;
  }
  for (let i = 0; i < n; i++) if (labels[i] === -1) labels[i] = next++;
  return labels;
}
