/**
 * The clustering library, between the compute backends (`gpu/`) and the stage commands (`stages/`): kNN sources,
 * super-vertex proposals, the baselines, de-overlap, the GCN-D upper bound, detection and training drivers, graph
 * algorithms, metrics, the benchmark generator and the report. Stages call one function from here each.
 * @module
 */
export * from "./baselines/mod.ts";
export * from "./deoverlap.ts";
export * from "./detect.ts";
export * from "./detect_shard.ts";
export * from "./graph.ts";
export * from "./knn_source.ts";
export * from "./metrics.ts";
export * from "./proposals/mod.ts";
export * from "./report.ts";
export * from "./split.ts";
export * from "./synth.ts";
export * from "./train.ts";
export * from "./upper_bound.ts";
