/**
 * Identity-disjoint train/test split of a labelled dataset (how the benchmark's part0_train / part1_test relate).
 * @module
 */
import { LtcError } from "../shared/errors.ts";
import { Rng } from "../gpu/gcn/mod.ts";

/** Which rows go to the test side: whole identities, a seeded random `testShare` of them. */
export function identitySplit(
  lb2idxs: Map<number, number[]>,
  options: { testShare: number; seed: number },
): Uint8Array {
  if (!(options.testShare > 0 && options.testShare < 1)) {
    throw new LtcError(`split: --test-share must lie strictly between 0 and 1, got ${options.testShare}`);
  }
  const ids = [...lb2idxs.keys()].sort((a, b) => a - b);
  if (ids.length < 2) throw new LtcError("split: need at least two identities");
  new Rng(options.seed).shuffle(ids);
  const nTest = Math.min(ids.length - 1, Math.max(1, Math.round(ids.length * options.testShare)));
  const isTest = new Uint8Array([...lb2idxs.values()].reduce((n, l) => n + l.length, 0));
  for (const id of ids.slice(0, nTest)) for (const i of lb2idxs.get(id)!) isTest[i] = 1;
  return isTest;
}
