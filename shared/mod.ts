/**
 * The one module for I/O, configuration, CLI parsing, progress and metrics. Stages import from here and never
 * hand-roll a file format.
 * @module
 */
export * from "./errors.ts";
export * from "./artifact.ts";
export * from "./cli.ts";
export * from "./config.ts";
export * from "./features.ts";
export * from "./meta.ts";
export * from "./ndarray.ts";
export * from "./npy.ts";
export * from "./knn_file.ts";
export * from "./pickle.ts";
export * from "./progress.ts";
export * from "./zip.ts";
export * from "./metrics.ts";
export * from "./proposal_io.ts";
export * from "./deoverlap.ts";
