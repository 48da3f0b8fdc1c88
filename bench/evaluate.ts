/**
 * Benchmark: the evaluate metrics at benchmark scale (5.21 M labels, ~86 K classes — the size of the original's full
 * benchmark). Comparison point in the same run: the same formulas in numpy (`/usr/bin/python3`, sort-based
 * contingency like sklearn's sparse one) when numpy is installed.
 * @module
 */
import { writeLabels } from "../shared/meta.ts";
import { evaluateAll } from "../cluster/metrics.ts";

/** Run the benchmark; `--n N` sets the number of labels. */
export async function run(args: string[]): Promise<void> {
  const nArg = args.find((a) => a.startsWith("--n="));
  const n = nArg ? Number(nArg.slice(4)) : 5_210_000;
  const classes = Math.round(n / 60);
  const gt = new Int32Array(n), pred = new Int32Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    gt[i] = i % classes;
    pred[i] = x % 7 === 0 ? classes + (x % 50000) : i % classes; // 1 in 7 moved to a wrong cluster
  }
  const t0 = performance.now();
  const m = evaluateAll(gt, pred);
  const ours = (performance.now() - t0) / 1000;
  console.log(`backend: cpu (TypeScript)  n=${n} classes=${classes}`);
  console.log(`ltc evaluate (pairwise+bcubed+nmi): ${ours.toFixed(2)} s  F=${m.pairwise.fscore.toFixed(4)}`);
  const dir = Deno.makeTempDirSync();
  writeLabels(`${dir}/gt.txt`, gt);
  writeLabels(`${dir}/pred.txt`, pred);
  const py = `
import numpy as np, time
gt = np.loadtxt("${dir}/gt.txt", dtype=np.int64); pred = np.loadtxt("${dir}/pred.txt", dtype=np.int64)
t = time.time()
n = len(gt); _, g = np.unique(gt, return_inverse=True); _, p = np.unique(pred, return_inverse=True)
key = g * (p.max() + 1) + p
uk, cnt = np.unique(key, return_counts=True)
a = np.bincount(g).astype(np.float64); b = np.bincount(p).astype(np.float64); c = cnt.astype(np.float64)
tk = (c**2).sum() - n; P = tk / ((b**2).sum() - n); R = tk / ((a**2).sum() - n)
gi = uk // (p.max() + 1); pj = uk % (p.max() + 1)
bp = (c**2 / b[pj]).sum() / n; br = (c**2 / a[gi]).sum() / n
mi = (c / n * (np.log(c) - np.log(n)) + c / n * (-np.log(a[gi] * b[pj]) + 2 * np.log(n))).sum()
h = lambda s: -(s / n * (np.log(s) - np.log(n))).sum()
nmi = mi / ((h(a) + h(b)) / 2)
print("%.3f %.6f" % (time.time() - t, 2 * P * R / (P + R)))
`;
  try {
    const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", py], stdout: "piped", stderr: "piped" })
      .output();
    if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr).split("\n").slice(-2).join(" "));
    const [secs, f] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
    console.log(`numpy same formulas (comparison point): ${secs!.toFixed(2)} s  F=${f!.toFixed(4)}`);
    console.log(`ratio numpy / ltc: ${(secs! / ours).toFixed(2)}×`);
  } catch (err) {
    console.log(`numpy comparison point unavailable (${(err as Error).message.slice(0, 80)})`);
  }
  Deno.removeSync(dir, { recursive: true });
}

if (import.meta.main) await run(Deno.args);
