/**
 * Randomness of GCN-D training: the shared seeded generator ({@linkcode ../../shared/random.ts}) and the named
 * streams it is split into (`new Rng(seed, RNG_STREAM.shuffle, epoch)`).
 * @module
 */

export { Rng } from "../../shared/random.ts";

/** Named streams, so adding a new use of randomness never shifts an existing one. */
export const RNG_STREAM = { init: 1, shuffle: 2, dropout: 3 } as const;
