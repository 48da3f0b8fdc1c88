/**
 * Stage `train-gcn-v`: train GCN-V (reference §10.2) from a config with the original's keys.
 *
 *     deno task train-gcn-v --config configs/gcn_v/cfg_train_gcnv_ms1m.yaml [--prefix DIR] [--name NAME] \
 *       [--work-dir W] [--resume-from CKPT] [--load-from CKPT] [--backend auto|webgpu|cpu] [--seed 42] [--dim 256]
 *
 * The original's schedule (`workflow [[train_gcnv, 1]]`): 80,000 whole-graph SGD iterations (lr 0.1, momentum 0.9,
 * weight decay 1e-5, steps at 40,000 / 64,000 / 72,000), MSE to the `s_nbr` confidence of the ground truth on the
 * kNN graph (k 80). Ours for CPUs (`[[train_gcnv_nodes, 1]]`, configs/gcn_v/cfg_pipeline_train_gcnv.yaml): the
 * same network, target and loss on batches of `batch_nodes` sampled nodes, `total_epochs` passes over the nodes.
 * Writes `W/epoch_<n>.npz` every `checkpoint_config.interval` epochs (iterations) and `W/latest.npz` (our format,
 * with momentum buffers for `--resume-from`), each with a sidecar (losses, timings). Test a checkpoint with
 * `deno task test-gcn-v --load-from W/latest.npz …`.
 *
 * The code behind it: `cluster/vegcn_run.ts` (`runTrainGcnV`), `cluster/gcn_v.ts`.
 * @module
 */
import { basename, join } from "node:path";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import { defaultKnnPath, loadVeGcnConfig } from "../cluster/vegcn_config.ts";
import { runTrainGcnV } from "../cluster/vegcn_run.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "train-gcn-v",
  summary: "Train GCN-V from a config with the original's keys (whole-graph iterations, or sampled nodes on CPUs); " +
    "writes epoch_<n>.npz and latest.npz checkpoints.",
  options: {
    config: { type: "string", required: true, help: "YAML config (train_name/train_data, optimizer, lr_config, …)" },
    prefix: { type: "string", help: "data folder with features/, labels/, knns/ (default: the config's, ./data)" },
    name: { type: "string", help: "training set name: <prefix>/features/<name>.bin etc. (default: the config's)" },
    "work-dir": { type: "string", help: "output folder (default: the config's work_dir, else ./data/work_dir/<cfg>)" },
    "resume-from": { type: "string", help: "continue from one of our checkpoints (weights, momentum, epochs done)" },
    "load-from": { type: "string", help: "initial weights (ours or a .pth), starting at epoch 0" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "compute backend" },
    seed: { type: "int", help: "seed of the initialisation and shuffles (default: the config's, else 42)" },
    "total-epochs": { type: "int", help: "override total_epochs (iterations of the whole-graph workflow)" },
    dim: { type: "int", help: "feature dimension (default: the config's model feature_dim)" },
    center: { type: "boolean", help: "subtract the feature mean before L2-normalising (not in the original)" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const cfgPath = args.reqStr("config");
    const cfg = loadVeGcnConfig(cfgPath, { kind: "gcn-v", prefix: args.str("prefix") });
    const data = args.given("name") ? undefined : cfg.trainData;
    const name = args.str("name") ?? cfg.trainData?.name;
    const featPath = data?.featPath ?? (name ? join(cfg.prefix, "features", `${name}.bin`) : undefined);
    if (!featPath) throw new LtcError(`train-gcn-v: --name is required (or ${cfgPath} with train_name/train_data)`);
    const labelPath = data?.labelPath ?? (name ? join(cfg.prefix, "labels", `${name}.meta`) : undefined);
    if (!labelPath) throw new LtcError(`train-gcn-v: ${cfgPath}: train_data needs 'label_path' (or train_name)`);
    const knnPath = data?.knnGraphPath ??
      (name ? defaultKnnPath(cfg.prefix, name, cfg.knnMethod, cfg.knn) : undefined);
    if (!knnPath) throw new LtcError(`train-gcn-v: ${cfgPath}: train_data needs 'knn_graph_path' (or train_name)`);
    const workDir = args.str("work-dir") ?? cfg.workDir ??
      join("./data/work_dir", basename(cfgPath).replace(/\.ya?ml$/, ""));
    const r = await runTrainGcnV(cfg, {
      data: {
        featPath,
        labelPath,
        knnPath,
        dim: args.optNum("dim") ?? cfg.model.featureDim,
        center: args.bool("center"),
      },
      workDir,
      backend: args.str("backend") as BackendChoice,
      seed: args.optNum("seed"),
      loadFrom: args.str("load-from"),
      resumeFrom: args.str("resume-from"),
      totalEpochs: args.optNum("total-epochs"),
    });
    log(`train-gcn-v: ${r.history.length} checkpoint(s); latest ${r.latest} (${r.backend})`);
  });
}
