/**
 * Stage `train-gcn-e`: train GCN-E (reference §10.3) from a config with the original's keys, on GCN-V's outputs for
 * the training split (`test-gcn-v --use-gcn-feat` on it writes them, as the original's config load runs
 * `extract_gcn_v`).
 *
 *     deno task train-gcn-e --config configs/gcn_e/cfg_train_gcne_ms1m.yaml --feat-path GV/features/CKPT.bin \
 *       --pred-confs GV/pred_confs/CKPT.npz --label-path labels/part0_train.meta [--work-dir W] \
 *       [--resume-from CKPT] [--load-from CKPT] [--backend auto|webgpu|cpu] [--seed 42]
 *
 * The original's schedule (`workflow [[train_iter_size, 1]]`): 40 epochs over every candidate subgraph of the
 * training split (ignore_ratio 0.7), gradients summed over `iter_size` 32 subgraphs per SGD step (lr 0.1, momentum
 * 0.9, weight decay 1e-5, steps at epochs 20 / 32 / 36). Ours for CPUs adds `subgraphs_per_epoch` (a seeded sample of
 * the subgraphs each epoch). The GCN-V features are read L2-normalised; their kNN is `GV/knns/CKPT/faiss_k_<knn>.npz`
 * (built when missing). Writes `W/epoch_<n>.npz` and `W/latest.npz` (our format) with sidecars.
 *
 * The code behind it: `cluster/vegcn_run.ts` (`runTrainGcnE`), `cluster/gcn_e.ts`.
 * @module
 */
import { basename, join } from "node:path";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import { loadVeGcnConfig } from "../cluster/vegcn_config.ts";
import { gcnFeatureKnnPath, runTrainGcnE } from "../cluster/vegcn_run.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "train-gcn-e",
  summary: "Train GCN-E from a config with the original's keys on GCN-V's features and confidences of the " +
    "training split; writes epoch_<n>.npz and latest.npz checkpoints.",
  options: {
    config: { type: "string", required: true, help: "YAML config (train_data, iter_size, optimizer, lr_config, …)" },
    prefix: { type: "string", help: "data prefix for relative paths in the config (default: the config's, ./data)" },
    "feat-path": { type: "string", help: "GCN-V features of the training split (…/features/<ckpt>.bin)" },
    "pred-confs": { type: "string", help: "GCN-V confidences of the training split (…/pred_confs/<ckpt>.npz)" },
    "label-path": { type: "string", help: "ground truth .meta of the training split" },
    "knn-graph-path": { type: "string", help: "kNN of the GCN-V features (default …/knns/<ckpt>/faiss_k_<knn>.npz)" },
    "work-dir": { type: "string", help: "output folder (default: the config's work_dir, else ./data/work_dir/<cfg>)" },
    "resume-from": { type: "string", help: "continue from one of our checkpoints (weights, momentum, epochs done)" },
    "load-from": { type: "string", help: "initial weights (ours or a .pth), starting at epoch 0" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "compute backend" },
    seed: { type: "int", help: "seed of the initialisation and shuffles (default: the config's, else 42)" },
    "total-epochs": { type: "int", help: "override total_epochs" },
    dim: { type: "int", help: "GCN-V feature dimension (default: the config's model feature_dim, else 512)" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const cfgPath = args.reqStr("config");
    const cfg = loadVeGcnConfig(cfgPath, { kind: "gcn-e", prefix: args.str("prefix") });
    const data = cfg.trainData;
    const featPath = args.str("feat-path") ?? data?.featPath;
    if (!featPath) throw new LtcError("train-gcn-e: --feat-path (GCN-V's features of the training split) is required");
    const predConfs = args.str("pred-confs") ?? data?.predConfs;
    if (!predConfs) throw new LtcError("train-gcn-e: --pred-confs (GCN-V's confidences) is required");
    const labelPath = args.str("label-path") ?? data?.labelPath;
    if (!labelPath) throw new LtcError("train-gcn-e: --label-path (ground truth of the training split) is required");
    const workDir = args.str("work-dir") ?? cfg.workDir ??
      join("./data/work_dir", basename(cfgPath).replace(/\.ya?ml$/, ""));
    const r = await runTrainGcnE(cfg, {
      data: {
        featPath,
        labelPath,
        knnPath: args.str("knn-graph-path") ?? data?.knnGraphPath ??
          gcnFeatureKnnPath(featPath, cfg.knnMethod, cfg.knn),
        dim: args.optNum("dim") ?? cfg.model.featureDim,
      },
      predConfs,
      workDir,
      backend: args.str("backend") as BackendChoice,
      seed: args.optNum("seed"),
      loadFrom: args.str("load-from"),
      resumeFrom: args.str("resume-from"),
      totalEpochs: args.optNum("total-epochs"),
    });
    log(`train-gcn-e: ${r.history.length} checkpoint(s); latest ${r.latest} (${r.backend})`);
  });
}
