/**
 * GCN-D checkpoints. Loads the original's PyTorch files unchanged (`.pth`, zip or legacy format, with or without a
 * `state_dict` wrapper and `module.` prefixes) and reads/writes our own format:
 *
 * **ltc GCN-D checkpoint** — an `.npz` (numpy zip, readable with `np.load`) holding
 * - `config`: uint8 bytes of a UTF-8 JSON object `{"format": "ltc-gcn-d", "version": 1, "feature_dim": 256,
 *   "hidden_dims": [512, 64], "epoch": <epochs completed>, "iter": <SGD steps taken>, ...}` plus whatever the
 *   trainer records (hyper-parameters, seed, det_label, wo_weight);
 * - one float32 array per parameter, named after the PyTorch key with dots as underscores:
 *   `layers_0_gc_weight` (256 × 512), `layers_1_gc_weight` (512 × 64), `classifier_weight` (1 × 64),
 *   `classifier_bias` (1);
 * - optionally `momentum_<name>` for each parameter: torch.optim.SGD's momentum buffers (for `--resume-from`).
 * @module
 */
import { basename } from "node:path";
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
import { type GcnWeights, paramList, paramSpecs, weightsFromStateDict } from "./model.ts";

/** npz member name of a parameter (dots as underscores), as our checkpoint files name them. */
export { arrayName } from "../../shared/checkpoint_npz.ts";

/** Format tag in our checkpoints' config. */
export const CHECKPOINT_FORMAT = "ltc-gcn-d";

/** A loaded GCN-D checkpoint. */
export type GcnCheckpoint = LoadedCheckpoint<GcnWeights>;

/** The original's output name for a checkpoint: its basename without `.pth` (ours: without `.npz`). */
export function checkpointName(path: string | undefined): string {
  if (!path) return "random";
  return basename(path).replace(/\.(pth|npz)$/, "");
}

/** Write one of our checkpoints atomically (deterministic bytes: same values → same file). */
export function saveCheckpoint(
  path: string,
  ckpt: { weights: GcnWeights; momentum: Float32Array[] | null; epoch: number; iter: number; meta?: object },
): void {
  const cfg = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    feature_dim: ckpt.weights.config.featureDim,
    hidden_dims: ckpt.weights.config.hiddenDims,
    epoch: ckpt.epoch,
    iter: ckpt.iter,
    ...ckpt.meta,
  };
  writeCheckpointNpz(path, {
    config: cfg,
    specs: paramSpecs(ckpt.weights.config),
    params: paramList(ckpt.weights),
    momentum: ckpt.momentum,
  });
}

function loadOurs(path: string, featureDim: number | undefined): GcnCheckpoint {
  const npz = new NpzFile(path);
  const raw = npz.get("config");
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(new TextDecoder().decode(raw.data as Uint8Array));
  } catch {
    throw new LtcError(`${path}: 'config' is not valid JSON`);
  }
  if (cfg.format !== CHECKPOINT_FORMAT) throw new LtcError(`${path}: not a GCN-D checkpoint (format ${cfg.format})`);
  const tensors = new Map<string, NdArray>();
  for (const key of npz.keys()) {
    if (key !== "config" && !key.startsWith("momentum_")) tensors.set(key, npz.get(key));
  }
  // Our member names use underscores; map them back to the PyTorch keys the model expects.
  const byTorchKey = new Map<string, NdArray>();
  const hidden = Array.isArray(cfg.hidden_dims) ? cfg.hidden_dims.map(Number) : [];
  const specs = paramSpecs({ featureDim: Number(cfg.feature_dim), hiddenDims: hidden });
  for (const [k, v] of tensors) {
    const spec = specs.find((s) => arrayName(s.name) === k);
    byTorchKey.set(spec ? spec.name : k, v);
  }
  const weights = weightsFromStateDict(byTorchKey, { path, featureDim });
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

/** Load any GCN-D checkpoint: ours (`.npz`) or the original's (`.pth`). `featureDim` is checked when given. */
export function loadCheckpoint(path: string, options: { featureDim?: number } = {}): GcnCheckpoint {
  const bytes = readFileChecked(path);
  const kind = looksLikeTorch(bytes);
  if (kind === "zip") {
    const names = [...readZip(bytes, path).keys()];
    if (names.includes("config.npy")) return loadOurs(path, options.featureDim);
    if (!names.some((n) => n === "data.pkl" || n.endsWith("/data.pkl"))) {
      throw new LtcError(`${path}: a zip archive that is neither a PyTorch checkpoint nor an ltc GCN-D checkpoint`);
    }
  }
  const sd = readStateDict(path);
  const weights = weightsFromStateDict(sd.tensors, { path, featureDim: options.featureDim });
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
