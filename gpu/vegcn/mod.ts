/**
 * GCN-V and GCN-E (CVPR'20, the original's `vegcn/`) for ltc-deno: the networks' parameters and checkpoints, their
 * forward/backward passes over pluggable dense kernels and graph aggregations, and SGD. The clustering rules built
 * on them live in `cluster/gcn_v.ts` and `cluster/gcn_e.ts`.
 * @module
 */
export * from "./checkpoint.ts";
export * from "./cpu.ts";
export * from "./kernels.ts";
export * from "./model.ts";
export * from "./sgd.ts";
export * from "./webgpu.ts";
