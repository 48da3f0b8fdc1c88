/**
 * Stage `test-gcn-v`: GCN-V inference on the whole kNN graph and the peak rule (reference §10.2, the original's
 * `vegcn/main.py --phase test` with a GCN-V config).
 *
 *     deno task test-gcn-v --prefix DIR --name NAME --load-from CKPT --work-dir W [--knn 80] [--th-sim 0] \
 *       [--tau-0 0.65] [--tau 0.8] [--use-gcn-feat] [--backend auto|webgpu|cpu] [--config cfg.yaml] [--dim 256]
 *
 * Reads `DIR/features/NAME.bin` and its kNN `DIR/knns/NAME/faiss_k_<knn>.npz` (built when missing); evaluates
 * against `DIR/labels/NAME.meta` when present. Writes, as the original:
 * `W/<NAME>_gcnv_k_<knn>_th_<th_sim>/pred_confs/<ckpt>.npz` (`pred_confs` float32[N], `inst_num`),
 * `…/tau_<tau_0>_pred_labels.txt`, and with `--use-gcn-feat` the GCN features `…/features/<ckpt>.bin` (N × 512, not
 * normalised), their kNN `…/knns/<ckpt>/faiss_k_<knn>.npz` and `…/<ckpt>_gcn_feat/tau_<tau>_pred_labels.txt`.
 * Checkpoints: the original's `.pth` unchanged, or ours (`.npz`). With `--config`, its `test_data` and settings are
 * used; options given on the command line win.
 *
 * The code behind it: `cluster/vegcn_run.ts` (`runTestGcnV`), `cluster/gcn_v.ts`.
 * @module
 */
import { basename, join } from "node:path";
import { type CliSpec, parseCli } from "../shared/cli.ts";
import { LtcError, runMain } from "../shared/errors.ts";
import { log } from "../shared/progress.ts";
import { isFile } from "../shared/artifact.ts";
import { defaultKnnPath, loadVeGcnConfig } from "../cluster/vegcn_config.ts";
import { runTestGcnV } from "../cluster/vegcn_run.ts";
import type { BackendChoice } from "../gpu/device.ts";

const spec: CliSpec = {
  name: "test-gcn-v",
  summary: "GCN-V: predict every node's confidence on the whole kNN graph (the original's .pth or ours), link each " +
    "node to its nearest more confident neighbour within tau_0, and write the original's pred_confs and labels.",
  options: {
    config: { type: "string", help: "YAML config (the original's cfg_test_gcnv keys: test_data, knn, tau_0, …)" },
    prefix: { type: "string", help: "data folder with features/, labels/, knns/ (default: the config's, ./data)" },
    name: { type: "string", help: "dataset name (default: the config's test_name)" },
    "feat-path": { type: "string", help: "features .bin (default <prefix>/features/<name>.bin)" },
    "label-path": { type: "string", help: "ground truth .meta (default <prefix>/labels/<name>.meta when present)" },
    "knn-graph-path": { type: "string", help: "kNN file (default <prefix>/knns/<name>/<knn-method>_k_<knn>.npz)" },
    "load-from": { type: "string", help: "GCN-V checkpoint: the original's .pth (zip or legacy) or ours (.npz)" },
    "work-dir": { type: "string", help: "output root (default: the config's work_dir, else ./data/work_dir/<cfg>)" },
    knn: { type: "int", help: "neighbours of the input graph (default 80)" },
    "knn-method": { type: "string", choices: ["faiss", "hnsw"], help: "kNN file to use or build (default faiss)" },
    "th-sim": { type: "number", help: "keep kNN edges with similarity ≥ th-sim (default 0)" },
    "tau-0": { type: "number", help: "edge threshold of the clustering (default 0.65)" },
    tau: { type: "number", help: "edge threshold on the GCN features with --use-gcn-feat (default 0.8)" },
    "max-conn": { type: "int", help: "peaks per node (default 1)" },
    "use-gcn-feat": { type: "boolean", help: "also write the GCN features and cluster on their kNN (tau)" },
    dim: { type: "int", help: "feature dimension (default: the config's model feature_dim, else 256)" },
    center: { type: "boolean", help: "subtract the feature mean before L2-normalising (not in the original)" },
    backend: { type: "string", default: "auto", choices: ["auto", "webgpu", "cpu"], help: "compute backend" },
  },
};

if (import.meta.main) {
  await runMain(async () => {
    const args = parseCli(spec, Deno.args);
    const cfgPath = args.str("config");
    const cfg = cfgPath ? loadVeGcnConfig(cfgPath, { kind: "gcn-v", prefix: args.str("prefix") }) : null;
    const prefix = args.str("prefix") ?? cfg?.prefix ?? "./data";
    const data = cfg?.testData;
    const name = args.str("name") ?? data?.name;
    if (!name) throw new LtcError("test-gcn-v: --name is required (or a --config with test_name)");
    const fromName = args.given("name") || !data;
    const featPath = args.str("feat-path") ?? (fromName ? undefined : data?.featPath) ??
      join(prefix, "features", `${name}.bin`);
    const guess = join(prefix, "labels", `${name}.meta`);
    const labelPath = args.str("label-path") ?? (fromName ? undefined : data?.labelPath) ??
      (isFile(guess) ? guess : undefined);
    const knn = args.optNum("knn") ?? cfg?.knn ?? 80;
    const knnMethod = (args.str("knn-method") ?? cfg?.knnMethod ?? "faiss") as "faiss" | "hnsw";
    const knnPath = args.str("knn-graph-path") ?? (fromName ? undefined : data?.knnGraphPath) ??
      defaultKnnPath(prefix, name, knnMethod, knn);
    const loadFrom = args.str("load-from") ?? cfg?.loadFrom;
    if (!loadFrom) throw new LtcError("test-gcn-v: --load-from is required (a GCN-V checkpoint)");
    const workDir = args.str("work-dir") ?? cfg?.workDir ??
      join("./data/work_dir", cfgPath ? basename(cfgPath).replace(/\.ya?ml$/, "") : "test_gcn_v");
    const r = await runTestGcnV({
      data: {
        featPath,
        labelPath,
        knnPath,
        dim: args.optNum("dim") ?? cfg?.model.featureDim ?? 256,
        center: args.bool("center"),
      },
      name,
      loadFrom,
      workDir,
      knn,
      knnMethod,
      thSim: args.optNum("th-sim") ?? cfg?.thSim ?? 0,
      tau0: args.optNum("tau-0") ?? cfg?.tau0 ?? 0.65,
      tau: args.optNum("tau") ?? cfg?.tau ?? 0.8,
      maxConn: args.optNum("max-conn") ?? cfg?.maxConn ?? 1,
      useGcnFeat: args.bool("use-gcn-feat") || (cfg?.useGcnFeat ?? false),
      backend: args.str("backend") as BackendChoice,
    });
    log(`test-gcn-v: ${r.labels} (${r.backend}, ${r.timings.total().toFixed(1)} s)`);
  });
}
