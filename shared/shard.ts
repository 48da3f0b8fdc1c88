/**
 * `--shard I/S`, the option every sharded stage takes (kNN rows, GCN-D proposals): shard I of S, counted from 0.
 * @module
 */
import { LtcError } from "./errors.ts";

/** Shard `index` of `count` (0 ≤ index < count). */
export interface Shard {
  index: number;
  count: number;
}

/** Parse `--shard I/S`: integers with 0 ≤ I < S and S ≥ 1; anything else is an error naming the option. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new LtcError(`--shard must be I/S (shard I of S, counted from 0, e.g. 0/4), got '${text}'`);
  const index = Number(m[1]), count = Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count)) {
    throw new LtcError(`--shard '${text}' is out of range`);
  }
  if (count < 1) throw new LtcError(`--shard ${text}: the shard count S must be at least 1`);
  if (index >= count) throw new LtcError(`--shard ${text}: the shard index I must be below S (0 … ${count - 1})`);
  return { index, count };
}

/** The part file of `shard` beside the unsharded artifact `path` (`x.npz` → `x.part_<I>_of_<S>.npz`). */
export function shardPartPath(path: string, shard: Shard): string {
  return path.replace(/\.npz$/, `.part_${shard.index}_of_${shard.count}.npz`);
}
