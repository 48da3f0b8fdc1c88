/**
 * Stage `synth`: the embedded benchmark — an MS-Celeb-1M-like set of face embeddings with ground truth, so the whole
 * pipeline has realistic data without downloads.
 *
 *     deno task synth --prefix data/synth [--scale default|part1|small|tiny] [--seed 42]
 *
 * Writes, in the original layout, a training split and a test split with disjoint identities:
 * `PREFIX/features/part0_train.bin`, `PREFIX/labels/part0_train.meta`, `PREFIX/features/part1_test.bin`,
 * `PREFIX/labels/part1_test.meta` (+ sidecars with the similarity statistics it produced).
 *
 * The generative model (every knob is an option; defaults make the benchmark hard in the way MS1M is):
 * - identity sizes are log-normal with mean `--mean-size` 68 (MS1M part1: 584,013 / 8,573) and spread `--size-sigma`;
 * - each identity has 1..`--modes-max` modes (pose, age, capture conditions) at cosine `--mode-cos` to a random
 *   centre;
 * - a share `--confusable` of identities are look-alikes of an earlier identity: each of their modes sits at a cosine
 *   drawn in [`--confusable-cos-min`, `--confusable-cos-max`] to one of that identity's modes;
 * - each sample sits at cosine q to its mode, q drawn per sample around `--quality` with spread `--quality-sigma`
 *   (image quality: blurred or occluded faces are far from everyone);
 * - a share `--mislabel` of samples carries an identity's label but the face of another (annotation noise).
 * Sample order is shuffled. Everything derives from `--seed`, so the same options give byte-identical files.
 *
 * The code behind it: `cluster/synth.ts`.
 * @module
 */
import { join } from "node:path";
import { ensureWritable, Timings } from "../shared/artifact.ts";
import { CliArgs, type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import {
  DEFAULT_SYNTH,
  generateSynth,
  partSeed,
  SCALES,
  type SynthParams,
  writeSynthParts,
  writeSynthSet,
} from "../cluster/synth.ts";

const spec: CliSpec = {
  name: "synth",
  summary: "Generate the embedded MS1M-like benchmark: a training split and a test split with disjoint identities.",
  options: {
    prefix: { type: "string", default: "data/synth", help: "output data folder (original layout)" },
    scale: { type: "string", default: "default", choices: Object.keys(SCALES), help: "benchmark size" },
    "train-name": { type: "string", default: "part0_train", help: "name of the training split" },
    "test-name": { type: "string", help: "name of the test split (default part1_test; part<n>_test for scale n)" },
    "test-parts": {
      type: "int",
      help: "test split made of this many parts of --ids identities (default: the scale's)",
    },
    ids: { type: "int", help: "identities per split (overrides --scale)" },
    seed: { type: "int", default: 42, help: "random seed" },
    dim: { type: "int", default: DEFAULT_SYNTH.dim, help: "feature dimension" },
    "mean-size": { type: "number", default: DEFAULT_SYNTH.meanSize, help: "mean images per identity" },
    "size-sigma": { type: "number", default: DEFAULT_SYNTH.sizeSigma, help: "log-normal spread of identity sizes" },
    "min-size": { type: "int", default: DEFAULT_SYNTH.minSize, help: "smallest identity" },
    "max-size": { type: "int", default: DEFAULT_SYNTH.maxSize, help: "largest identity" },
    confusable: { type: "number", default: DEFAULT_SYNTH.confusable, help: "share of look-alike identities" },
    "confusable-cos-min": {
      type: "number",
      default: DEFAULT_SYNTH.confusableCosMin,
      help: "look-alike centre cos, low",
    },
    "confusable-cos-max": {
      type: "number",
      default: DEFAULT_SYNTH.confusableCosMax,
      help: "look-alike centre cos, high",
    },
    "modes-max": { type: "int", default: DEFAULT_SYNTH.modesMax, help: "most modes per identity" },
    "mode-cos": { type: "number", default: DEFAULT_SYNTH.modeCos, help: "cosine of a mode to its identity centre" },
    quality: { type: "number", default: DEFAULT_SYNTH.quality, help: "mean cosine of a sample to its mode" },
    "quality-sigma": { type: "number", default: DEFAULT_SYNTH.qualitySigma, help: "per-sample spread of quality" },
    "quality-min": { type: "number", default: DEFAULT_SYNTH.qualityMin, help: "lowest sample quality" },
    mislabel: { type: "number", default: DEFAULT_SYNTH.mislabel, help: "share of mislabelled samples" },
    "ui-share": { type: "number", default: DEFAULT_SYNTH.uiShare, help: "share of unrecognisable samples" },
    "ui-quality": { type: "number", default: DEFAULT_SYNTH.uiQuality, help: "their mean cosine to their mode" },
    "ui-cos": { type: "number", default: DEFAULT_SYNTH.uiCos, help: "their residual's cosine to the shared direction" },
    "nuisance-dim": { type: "int", default: DEFAULT_SYNTH.nuisanceDim, help: "dimension of the shared pose subspace" },
  },
};

/** Parameters of one split from parsed options. */
export function paramsFromArgs(args: CliArgs, ids: number, seed: number, worldSeed: number): SynthParams {
  return {
    ids,
    seed,
    worldSeed,
    nuisanceDim: args.num("nuisance-dim"),
    dim: args.num("dim"),
    meanSize: args.num("mean-size"),
    sizeSigma: args.num("size-sigma"),
    minSize: args.num("min-size"),
    maxSize: args.num("max-size"),
    confusable: args.num("confusable"),
    confusableCosMin: args.num("confusable-cos-min"),
    confusableCosMax: args.num("confusable-cos-max"),
    modesMax: args.num("modes-max"),
    modeCos: args.num("mode-cos"),
    quality: args.num("quality"),
    qualitySigma: args.num("quality-sigma"),
    qualityMin: args.num("quality-min"),
    mislabel: args.num("mislabel"),
    uiShare: args.num("ui-share"),
    uiQuality: args.num("ui-quality"),
    uiCos: args.num("ui-cos"),
  };
}

if (import.meta.main) {
  await runMain(() => {
    const args = parseCli(spec, Deno.args);
    const scale = SCALES[args.reqStr("scale")]!;
    const prefix = args.reqStr("prefix");
    const seed = args.num("seed");
    const testParts = args.optNum("test-parts") ?? scale.testParts ?? 1;
    if (!(Number.isInteger(testParts) && testParts >= 1)) {
      throw new LtcError(`synth: --test-parts must be a positive integer, got ${testParts}`);
    }
    const testName = args.str("test-name") ?? (testParts > 1 ? `part${testParts}_test` : "part1_test");
    const splits: [string, number, number, number][] = [
      [args.reqStr("train-name"), args.optNum("ids") ?? scale.train, seed * 2 + 1, 1],
      [testName, args.optNum("ids") ?? scale.test, seed * 2 + 2, testParts],
    ];
    // Every output is checked writable before anything is generated (part1 scale takes minutes to generate).
    for (const [name] of splits) {
      ensureWritable(join(prefix, "features", `${name}.bin`));
      ensureWritable(join(prefix, "labels", `${name}.meta`));
    }
    for (const [name, ids, splitSeed, parts] of splits) {
      const timings = new Timings();
      if (parts > 1) {
        const list = Array.from({ length: parts }, (_, j) => paramsFromArgs(args, ids, partSeed(splitSeed, j), seed));
        writeSynthParts(prefix, name, list, timings);
        continue;
      }
      const params = paramsFromArgs(args, ids, splitSeed, seed);
      const set = timings.step("generate", () => generateSynth(params));
      timings.step("write", () => writeSynthSet(prefix, name, set, params, timings));
    }
  });
}
