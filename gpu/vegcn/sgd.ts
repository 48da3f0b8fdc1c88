/**
 * `torch.optim.SGD` (momentum, weight decay, no dampening or Nesterov) over a whole GCN-V/E network, with the
 * per-parameter update of GCN-D ({@linkcode sgdUpdate}), and mmcv's step milestones.
 * @module
 */
import { type SgdHyper, sgdUpdate } from "../gcn/model.ts";
import { paramList, type VeGcnWeights } from "./model.ts";

export { type SgdHyper, stepLr } from "../gcn/model.ts";

/** The optimiser's state: momentum buffers in parameter order (null before the first step) and steps taken. */
export interface SgdState {
  momentum: Float32Array[] | null;
  steps: number;
}

/** One SGD step on every parameter of `weights` (in place) with `grads`; `state` is updated. */
export function sgdStep(weights: VeGcnWeights, grads: VeGcnWeights, state: SgdState, hyper: SgdHyper): void {
  const w = paramList(weights), g = paramList(grads);
  const first = state.momentum === null;
  state.momentum ??= w.map((p) => new Float32Array(p.length));
  w.forEach((p, i) => sgdUpdate(p, g[i]!, state.momentum![i]!, { ...hyper, first }));
  state.steps++;
}

/** The original's learning-rate milestones: `[int(r · total) for r in ratios]`. */
export function stepMilestones(total: number, ratios: number[]): number[] {
  return ratios.map((r) => Math.trunc(r * total));
}
