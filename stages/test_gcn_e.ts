/**
 * Stage `test-gcn-e`: GCN-E connections on candidate subgraphs (reference §10.3, the original's
 * `vegcn/main.py --phase test` with a GCN-E config), on GCN-V's outputs.
 *
 *     deno task test-gcn-e --feat-path GV/features/CKPT.bin --pred-confs GV/pred_confs/CKPT.npz --name NAME \
 *       --load-from GCN_E_CKPT --work-dir W [--label-path L] [--knn 160] [--th-sim 0] [--ignore-ratio 0.8] \
 *       [--tau 0.8] [--backend auto|webgpu|cpu] [--config cfg.yaml] [--dim 512]
 *
 * GV is a `test-gcn-v` output folder (`<name>_gcnv_k_80_th_0.0`). The features are read L2-normalised; their kNN
 * is `GV/knns/CKPT/faiss_k_<knn>.npz` as the original lays it out (built when missing). Writes, as the original:
 * `W/pred_conns.npz` (`pred_conns` int64 [subgraphs, max_conn]: the chosen candidate of each subgraph, `inst_num`)
 * and `W/<NAME>_gcne_k_<knn>_th_<th_sim>_ig_<ignore_ratio>/tau_<tau>_pred_labels.txt`, evaluated when labels are
 * given. With `--config`, its `test_data` (`feat_path`, `pred_confs`, `label_path`, `ignore_ratio`) and settings are
 * used; options given on the command line win.
 *
 * The code behind it: `cluster/vegcn_run.ts` (`runTestGcnE`), `cluster/gcn_e.ts`.
 * @module
 */
import { basename, join } from "node:path";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import { loadVeGcnConfig } from "../cluster/vegcn_config.ts";
import { gcnFeatureKnnPath, runTestGcnE } from "../cluster/vegcn_run.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "test-gcn-e",
  summary: "GCN-E: for every node with several more confident neighbours, choose its connection with the model " +
    "(the original's .pth or ours) on the GCN-V features, then cluster with tau and write the original's files.",
  options: {
    config: { type: "string", help: "YAML config (the original's cfg_test_gcne keys: test_data, knn, tau, …)" },
    prefix: { type: "string", help: "data prefix for relative paths in the config (default: the config's, ./data)" },
    name: { type: "string", help: "dataset name for the output folder (default: the config's test_name)" },
    "feat-path": { type: "string", help: "GCN-V features .bin (test-gcn-v --use-gcn-feat: …/features/<ckpt>.bin)" },
    "pred-confs": { type: "string", help: "GCN-V confidences (…/pred_confs/<ckpt>.npz)" },
    "label-path": { type: "string", help: "ground truth .meta for evaluation" },
    "knn-graph-path": { type: "string", help: "kNN of the GCN-V features (default …/knns/<ckpt>/faiss_k_<knn>.npz)" },
    "load-from": { type: "string", help: "GCN-E checkpoint: the original's .pth or ours (.npz)" },
    "work-dir": { type: "string", help: "output folder (default: the config's work_dir, else ./data/work_dir/<cfg>)" },
    knn: { type: "int", help: "neighbours of the GCN-feature graph (default 160)" },
    "knn-method": { type: "string", choices: ["faiss", "hnsw"], help: "kNN file to use or build (default faiss)" },
    "th-sim": { type: "number", help: "keep kNN edges with similarity ≥ th-sim (default 0)" },
    "ignore-ratio": { type: "number", help: "share of least confident nodes that connect directly (default 0.8)" },
    tau: { type: "number", help: "edge threshold of the clustering (default 0.8)" },
    "max-conn": { type: "int", help: "connections per node (default 1)" },
    dim: { type: "int", help: "GCN-V feature dimension (default: the config's model feature_dim, else 512)" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "compute backend" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const cfgPath = args.str("config");
    const cfg = cfgPath ? loadVeGcnConfig(cfgPath, { kind: "gcn-e", prefix: args.str("prefix") }) : null;
    const data = cfg?.testData;
    const name = args.str("name") ?? data?.name;
    if (!name) throw new LtcError("test-gcn-e: --name is required (or a --config with test_name)");
    const featPath = args.str("feat-path") ?? data?.featPath;
    if (!featPath) throw new LtcError("test-gcn-e: --feat-path (GCN-V's features) is required");
    const predConfs = args.str("pred-confs") ?? data?.predConfs;
    if (!predConfs) throw new LtcError("test-gcn-e: --pred-confs (GCN-V's confidences) is required");
    const loadFrom = args.str("load-from") ?? cfg?.loadFrom;
    if (!loadFrom) throw new LtcError("test-gcn-e: --load-from is required (a GCN-E checkpoint)");
    const knn = args.optNum("knn") ?? cfg?.knn ?? 160;
    const knnMethod = (args.str("knn-method") ?? cfg?.knnMethod ?? "faiss") as "faiss" | "hnsw";
    const workDir = args.str("work-dir") ?? cfg?.workDir ??
      join("./data/work_dir", cfgPath ? basename(cfgPath).replace(/\.ya?ml$/, "") : "test_gcn_e");
    const r = await runTestGcnE({
      data: {
        featPath,
        labelPath: args.str("label-path") ?? data?.labelPath,
        knnPath: args.str("knn-graph-path") ?? data?.knnGraphPath ?? gcnFeatureKnnPath(featPath, knnMethod, knn),
        dim: args.optNum("dim") ?? cfg?.model.featureDim ?? 512,
      },
      predConfs,
      name,
      loadFrom,
      workDir,
      knn,
      knnMethod,
      thSim: args.optNum("th-sim") ?? cfg?.thSim ?? 0,
      ignoreRatio: args.optNum("ignore-ratio") ?? data?.ignoreRatio ?? 0.8,
      tau: args.optNum("tau") ?? cfg?.tau ?? 0.8,
      maxConn: args.optNum("max-conn") ?? cfg?.maxConn ?? 1,
      backend: args.str("backend") as BackendChoice,
    });
    log(`test-gcn-e: ${r.labels} (${r.backend}, ${r.timings.total().toFixed(1)} s)`);
  });
}
