/**
 * Worker of `fuzz_test.ts`: runs a range of fuzz cases and posts each outcome as it finishes, so the test can bound
 * every case's time (a reader that hangs is caught by the test terminating this worker).
 * @module
 */
/// <reference lib="deno.worker" />
import { type FuzzTargetOptions, loadFuzzTargets, runFuzzCase } from "./_fuzz_cases.ts";

/** What the test sends: the fixtures, the seed, the cases [from, to) and a scratch folder (the test removes it). */
export interface FuzzJob extends FuzzTargetOptions {
  seed: number;
  from: number;
  to: number;
  tmpDir: string;
}

self.onmessage = (ev: MessageEvent<FuzzJob>) => {
  const job = ev.data;
  const targets = loadFuzzTargets(job);
  for (let index = job.from; index < job.to; index++) {
    self.postMessage({ kind: "start", index });
    self.postMessage({ kind: "done", outcome: runFuzzCase(targets, { seed: job.seed, index, tmpDir: job.tmpDir }) });
  }
  self.postMessage({ kind: "end", targets: targets.map((t) => t.name) });
};
