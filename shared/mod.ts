/**
 * The bottom floor: file formats and I/O, configuration, CLI parsing, sidecars, progress, RNGs, errors. Every other
 * floor reads and writes files through these modules and never hand-rolls a format.
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
export * from "./proposal_io.ts";
export * from "./py_format.ts";
export * from "./random.ts";
export * from "./svg.ts";
export * from "./torch.ts";
