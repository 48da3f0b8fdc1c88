/**
 * Stage `train`: train GCN-D (reference §4.4) from a config with the original's keys.
 *
 *     deno task train --config configs/gcn_d/cfg_train_0.7_0.75.yaml [--work-dir W] [--resume-from CKPT] \
 *       [--load-from CKPT] [--backend auto|webgpu|cpu] [--seed 42] [--det-label iou|iop] [--prefix DATA]
 *
 * Defaults are the original's: SGD lr 0.01, momentum 0.9, weight decay 1e-4, step schedule [15, 24, 28] × 0.1,
 * 30 epochs, batch 32, dropout 0.5, seed 42. Every `checkpoint_config.interval` epochs it writes
 * `W/epoch_<n>.npz` and `W/latest.npz` (our checkpoint format, with momentum buffers for `--resume-from`), each with a
 * sidecar holding the per-epoch loss and timing. Test a checkpoint with
 * `deno task detect --config <same cfg> --load-from W/latest.npz` (uses the config's `test_data`).
 *
 * Deliberate difference: each epoch gets a fresh seeded shuffle; the original (non-distributed sampler that never
 * advances its epoch) repeats the same permutation every epoch.
 *
 * The code behind it: `cluster/train.ts`.
 * @module
 */
import { basename, join } from "node:path";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import { trainGcnD } from "../cluster/train.ts";
import type { BackendChoice } from "../gpu/device.ts";
import { loadGcnConfig } from "../gpu/gcn/mod.ts";

const spec: CliSpec = {
  name: "train",
  summary: "Train GCN-D from a config with the original's keys; writes epoch_<n>.npz and latest.npz checkpoints.",
  options: {
    config: { type: "string", required: true, help: "YAML config (train_data, optimizer, lr_config, …)" },
    "work-dir": {
      type: "string",
      help: "output folder (default: the config's work_dir, else ./data/work_dir/<cfg name>)",
    },
    "resume-from": { type: "string", help: "continue from one of our checkpoints (weights, momentum, epoch)" },
    "load-from": { type: "string", help: "initial weights (ours or a .pth), starting at epoch 0" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "compute backend" },
    seed: { type: "int", help: "seed of init, shuffles and dropout (default: the config's, else 42)" },
    "det-label": { type: "string", default: "iou", choices: ["iou", "iop"], help: "regression target" },
    prefix: { type: "string", help: "data prefix for relative paths in the config (default: the config's, ./data)" },
    "total-epochs": { type: "int", help: "override total_epochs" },
    center: { type: "boolean", help: "subtract the feature mean before L2-normalising (not in the original)" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const cfg = loadGcnConfig(args.reqStr("config"), { prefix: args.str("prefix") });
    const workDir = args.str("work-dir") ?? cfg.workDir ??
      join("./data/work_dir", basename(cfg.path).replace(/\.ya?ml$/, ""));
    const result = await trainGcnD(cfg, {
      workDir,
      backend: args.str("backend") as BackendChoice,
      seed: args.optNum("seed"),
      detLabel: args.str("det-label") as "iou" | "iop",
      resumeFrom: args.str("resume-from"),
      loadFrom: args.str("load-from"),
      totalEpochs: args.optNum("total-epochs"),
      center: args.bool("center"),
      progress: true,
    });
    log(`train: ${result.epochs.length} epoch(s) recorded; latest checkpoint ${result.latest} (${result.backend})`);
  });
}
