/**
 * GCN-V / GCN-E checkpoints. Loads the original's PyTorch files unchanged (`.pth`, zip or legacy format, with or
 * without the `state_dict` wrapper and `module.` prefixes) and reads/writes our own format:
 *
 * **ltc GCN-V / GCN-E checkpoint** — an `.npz` (readable with `np.load`) holding
 * - `config`: uint8 bytes of a UTF-8 JSON object `{"format": "ltc-gcn-v" | "ltc-gcn-e", "version": 1,
 *   "feature_dim": 256, "conv_dims": [512], "classes": 1, "epoch": …, "iter": …, …}` plus whatever the trainer
 *   records;
 * - one float32 array per parameter, named after the PyTorch key with dots as underscores (`conv1_weight`,
 *   `classifier_0_weight`, …);
 * - optionally `momentum_<name>` for each parameter: the SGD momentum buffers (for resuming).
 * @module
 */
import {
  arrayName,
  type LoadedCheckpoint,
  plainMeta,
  readMomentum,
  writeCheckpointNpz,
} from "../../shared/checkpoint_npz.ts";
import { LtcError, readFileChecked } from "../../shared/errors.ts";
import type { NdArray } from "../../shared/ndarray.ts";
import { NpzFile } from "../../shared/npy.ts";
import { looksLikeTorch, readStateDict } from "../../shared/torch.ts";
import { readZip } from "../../shared/zip.ts";
import { paramList, paramSpecs, type VeGcnKind, type VeGcnWeights, weightsFromStateDict } from "./model.ts";

/** npz member name of a parameter (dots as underscores), as our checkpoint files name them. */
export { arrayName } from "../../shared/checkpoint_npz.ts";

/** Format tag of our checkpoints for each network. */
export function checkpointFormat(kind: VeGcnKind): string {
  return `ltc-${kind}`;
}

/** A loaded GCN-V or GCN-E checkpoint. */
export type VeGcnCheckpoint = LoadedCheckpoint<VeGcnWeights>;

/** Write one of our checkpoints atomically (deterministic bytes). */
export function saveVeGcnCheckpoint(
  path: string,
  ckpt: { weights: VeGcnWeights; momentum: Float32Array[] | null; epoch: number; iter: number; meta?: object },
): void {
  const cfg = ckpt.weights.config;
  writeCheckpointNpz(path, {
    config: {
      format: checkpointFormat(cfg.kind),
      version: 1,
      feature_dim: cfg.featureDim,
      conv_dims: cfg.convDims,
      classes: cfg.classes,
      epoch: ckpt.epoch,
      iter: ckpt.iter,
      ...ckpt.meta,
    },
    specs: paramSpecs(cfg),
    params: paramList(ckpt.weights),
    momentum: ckpt.momentum,
  });
}

function loadOurs(path: string, kind: VeGcnKind, featureDim: number | undefined): VeGcnCheckpoint {
  const npz = new NpzFile(path);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(new TextDecoder().decode(npz.get("config").data as Uint8Array));
  } catch {
    throw new LtcError(`${path}: 'config' is not valid JSON`);
  }
  if (cfg.format !== checkpointFormat(kind)) {
    throw new LtcError(`${path}: not a ${kind.toUpperCase()} checkpoint (format ${cfg.format})`);
  }
  // member names use underscores; the PyTorch keys are recovered from the parameter names the format allows
  const tensors = new Map<string, NdArray>();
  const known = new Map<string, string>();
  for (let i = 1; i <= 8; i++) {
    known.set(`conv${i}_weight`, `conv${i}.weight`), known.set(`conv${i}_bias`, `conv${i}.bias`);
  }
  for (const key of ["classifier.0.weight", "classifier.0.bias", "classifier.1.weight", "classifier.2.weight"]) {
    known.set(arrayName(key), key);
  }
  known.set("classifier_2_bias", "classifier.2.bias");
  for (const key of npz.keys()) {
    if (key === "config" || key.startsWith("momentum_")) continue;
    tensors.set(known.get(key) ?? key, npz.get(key));
  }
  const weights = weightsFromStateDict(tensors, { path, kind, featureDim });
  const momentum = readMomentum(npz, path, { specs: paramSpecs(weights.config), params: paramList(weights) });
  return {
    weights,
    momentum,
    epoch: Number(cfg.epoch ?? 0),
    iter: Number(cfg.iter ?? 0),
    meta: cfg,
    source: "ltc-npz",
  };
}

/**
 * Load a GCN-V or GCN-E checkpoint: ours (`.npz`) or the original's (`.pth`). A checkpoint of another network
 * (GCN-D, or GCN-E given for GCN-V) or for features of another width (`featureDim`, checked when given) is a clear
 * {@linkcode LtcError}.
 */
export function loadVeGcnCheckpoint(
  path: string,
  options: { kind: VeGcnKind; featureDim?: number },
): VeGcnCheckpoint {
  const bytes = readFileChecked(path);
  if (looksLikeTorch(bytes) === "zip") {
    const names = [...readZip(bytes, path).keys()];
    if (names.includes("config.npy")) return loadOurs(path, options.kind, options.featureDim);
    if (!names.some((n) => n === "data.pkl" || n.endsWith("/data.pkl"))) {
      throw new LtcError(`${path}: a zip archive that is neither a PyTorch checkpoint nor an ltc checkpoint`);
    }
  }
  const sd = readStateDict(path);
  const weights = weightsFromStateDict(sd.tensors, { path, kind: options.kind, featureDim: options.featureDim });
  const meta = plainMeta(sd.meta);
  return {
    weights,
    momentum: null,
    epoch: typeof meta.epoch === "number" ? meta.epoch : 0,
    iter: typeof meta.iter === "number" ? meta.iter : 0,
    meta,
    source: sd.format === "zip" ? "pytorch-zip" : "pytorch-legacy",
  };
}
