/**
 * The ONNX graphs of the CPU twin. One onnxruntime call handles a whole batch: its proposals come as G groups of
 * similar size, each padded to its largest member (zero feature rows, identity adjacency — the original's collate),
 * and everything that would be large stays inside the graph. Only pooled features, predictions and weight gradients
 * come back: onnxruntime-node hands outputs to Deno at ≈ 110 MB/s (inputs go in at GB/s), so a graph must never
 * return activations or the first-layer table.
 *
 * Names: group g has adjacency `A_g` [b, n, n], row sums `D_g` [b, n, 1] (the original's D), node inputs and, for
 * training, dropout row scales `M<l>_g` [b, n, 1], targets `Y_g` [b] and row ids `R_g` [1, n, 1] (int64 0..n−1).
 * Layer l: H<l+1> = Relu(MatMul(A, MatMul(H<l>, W<l>)) / D) · M<l>.
 * @module
 */
import { int64Initializer, type OnnxModel, type OnnxNode, OnnxType, type OnnxValue } from "../onnx.ts";

function layerNodes(l: number, g: number, input: string, skipProduct: boolean, masked: boolean): OnnxNode[] {
  const s = `_${g}`;
  const xw = skipProduct ? input : `XW${l}${s}`;
  const nodes: OnnxNode[] = [];
  if (!skipProduct) nodes.push({ op: "MatMul", inputs: [input, `W${l}`], outputs: [xw] });
  nodes.push(
    { op: "MatMul", inputs: [`A${s}`, xw], outputs: [`AXW${l}${s}`] },
    { op: "Div", inputs: [`AXW${l}${s}`, `D${s}`], outputs: [`Z${l}${s}`] },
    { op: "Relu", inputs: [`Z${l}${s}`], outputs: [masked ? `R${l}${s}` : `H${l + 1}${s}`] },
  );
  if (masked) nodes.push({ op: "Mul", inputs: [`R${l}${s}`, `M${l}${s}`], outputs: [`H${l + 1}${s}`] });
  return nodes;
}

function groupInputs(g: number): OnnxValue[] {
  return [{ name: `A_${g}`, dims: [`b${g}`, `n${g}`, `n${g}`] }, { name: `D_${g}`, dims: [`b${g}`, `n${g}`, 1] }];
}

function weightInputs(dims: number[], from: number): OnnxValue[] {
  const out: OnnxValue[] = [];
  for (let l = from; l < dims.length - 1; l++) out.push({ name: `W${l}`, dims: [dims[l]!, dims[l + 1]!] });
  return out;
}

/**
 * Inference, pooled features per group. `shared`: the first-layer table T = XU·W₀ is computed once for the batch's
 * distinct nodes (`XU` [u, F], its last row zero for padding) and gathered by `I_g` [b, n] (int64 rows of T);
 * otherwise each group brings its node features `X_g` [b, n, F] and x·W₀ is computed per proposal, as the original.
 * Outputs `V_g` [b, C_L] (max over nodes of the last layer).
 */
export function inferenceGraph(dims: number[], groups: number, shared: boolean): OnnxModel {
  const L = dims.length - 1;
  const nodes: OnnxNode[] = [];
  const inputs: OnnxValue[] = [];
  if (shared) {
    inputs.push({ name: "XU", dims: ["u", dims[0]!] });
    nodes.push({ op: "MatMul", inputs: ["XU", "W0"], outputs: ["T"] });
  }
  inputs.push(...weightInputs(dims, 0));
  const outputs: OnnxValue[] = [];
  for (let g = 0; g < groups; g++) {
    inputs.push(...groupInputs(g));
    if (shared) {
      inputs.push({ name: `I_${g}`, type: OnnxType.INT64, dims: [`b${g}`, `n${g}`] });
      nodes.push({ op: "Gather", inputs: ["T", `I_${g}`], outputs: [`H0_${g}`], attrs: { axis: 0 } });
    } else inputs.push({ name: `X_${g}`, dims: [`b${g}`, `n${g}`, dims[0]!] });
    for (let l = 0; l < L; l++) {
      const input = l === 0 ? (shared ? `H0_${g}` : `X_${g}`) : `H${l}_${g}`;
      nodes.push(...layerNodes(l, g, input, l === 0 && shared, false));
    }
    nodes.push({ op: "ReduceMax", inputs: [`H${L}_${g}`], outputs: [`V_${g}`], attrs: { axes: [1], keepdims: 0 } });
    outputs.push({ name: `V_${g}`, dims: [`b${g}`, dims[L]!] });
  }
  return { nodes, inputs, outputs };
}

/**
 * One training step's forward and backward pass over all groups of a batch. Inputs per group `X_g`, `A_g`, `D_g`,
 * `M<l>_g`, `Y_g`, `R_g`; shared `W<l>`, `WC` [1, C_L], `BC` [1], `SCALE` (= 2 / batch size, nn.MSELoss's mean).
 * Outputs `P_g` [b] (predictions) and the batch gradients `dW<l>`, `dWC`, `dBC`.
 *
 * Backward: dpred = SCALE·(pred − y); dWC = Σ dpred·V; dBC = Σ dpred; the max-pool sends dpred·WC to the first
 * row reaching each channel's maximum (ArgMax, as PyTorch's max); then per layer dZ = dH·M·[H > 0],
 * dP = Aᵀ·(dZ / D), dW = Σ H<l>ᵀ·dP, dH<l> = dP·W<l>ᵀ.
 */
export function trainGraph(dims: number[], groups: number): OnnxModel {
  const L = dims.length - 1, cl = dims[L]!;
  const nodes: OnnxNode[] = [
    { op: "Transpose", inputs: ["WC"], outputs: ["WCT"], attrs: { perm: [1, 0] } },
  ];
  for (let l = 1; l < L; l++) {
    nodes.push({ op: "Transpose", inputs: [`W${l}`], outputs: [`WT${l}`], attrs: { perm: [1, 0] } });
  }
  const inputs: OnnxValue[] = [
    ...weightInputs(dims, 0),
    { name: "WC", dims: [1, cl] },
    { name: "BC", dims: [1] },
    { name: "SCALE", dims: [] },
  ];
  const outputs: OnnxValue[] = [];
  const grads: string[][] = dims.slice(0, L).map(() => []);
  const gradWC: string[] = [], gradBC: string[] = [];
  for (let g = 0; g < groups; g++) {
    const s = `_${g}`;
    inputs.push(
      ...groupInputs(g),
      { name: `X${s}`, dims: [`b${g}`, `n${g}`, dims[0]!] },
      ...dims.slice(0, L).map((_, l) => ({ name: `M${l}${s}`, dims: [`b${g}`, `n${g}`, 1] })),
      { name: `Y${s}`, dims: [`b${g}`] },
      { name: `R${s}`, type: OnnxType.INT64, dims: [1, `n${g}`, 1] },
    );
    nodes.push({ op: "Identity", inputs: [`X${s}`], outputs: [`H0${s}`] });
    for (let l = 0; l < L; l++) nodes.push(...layerNodes(l, g, `H${l}${s}`, false, true));
    nodes.push(
      { op: "ReduceMax", inputs: [`H${L}${s}`], outputs: [`V${s}`], attrs: { axes: [1], keepdims: 0 } },
      { op: "MatMul", inputs: [`V${s}`, "WCT"], outputs: [`PR${s}`] },
      { op: "Add", inputs: [`PR${s}`, "BC"], outputs: [`PB${s}`] },
      { op: "Reshape", inputs: [`PB${s}`, "flat"], outputs: [`P${s}`] },
      { op: "Sub", inputs: [`P${s}`, `Y${s}`], outputs: [`E${s}`] },
      { op: "Mul", inputs: [`E${s}`, "SCALE"], outputs: [`G${s}`] },
      { op: "Reshape", inputs: [`G${s}`, "column"], outputs: [`G2${s}`] },
      { op: "Transpose", inputs: [`G2${s}`], outputs: [`GT${s}`], attrs: { perm: [1, 0] } },
      { op: "MatMul", inputs: [`GT${s}`, `V${s}`], outputs: [`dWC${s}`] },
      { op: "ReduceSum", inputs: [`G2${s}`, "axis0"], outputs: [`dBC${s}`], attrs: { keepdims: 0 } },
      { op: "MatMul", inputs: [`G2${s}`, "WC"], outputs: [`dV${s}`] },
      { op: "Reshape", inputs: [`dV${s}`, "unsq1"], outputs: [`dV3${s}`] },
      {
        op: "ArgMax",
        inputs: [`H${L}${s}`],
        outputs: [`AM${s}`],
        attrs: { axis: 1, keepdims: 1, select_last_index: 0 },
      },
      { op: "Equal", inputs: [`R${s}`, `AM${s}`], outputs: [`OHb${s}`] },
      { op: "Cast", inputs: [`OHb${s}`], outputs: [`OH${s}`], attrs: { to: OnnxType.FLOAT } },
      { op: "Mul", inputs: [`OH${s}`, `dV3${s}`], outputs: [`dH${L}${s}`] },
      { op: "Transpose", inputs: [`A${s}`], outputs: [`AT${s}`], attrs: { perm: [0, 2, 1] } },
    );
    gradWC.push(`dWC${s}`);
    gradBC.push(`dBC${s}`);
    outputs.push({ name: `P${s}`, dims: [`b${g}`] });
    for (let l = L - 1; l >= 0; l--) {
      nodes.push(
        { op: "Greater", inputs: [`H${l + 1}${s}`, "zero"], outputs: [`pos${l}${s}`] },
        { op: "Cast", inputs: [`pos${l}${s}`], outputs: [`posf${l}${s}`], attrs: { to: OnnxType.FLOAT } },
        { op: "Mul", inputs: [`dH${l + 1}${s}`, `M${l}${s}`], outputs: [`dHM${l}${s}`] },
        { op: "Mul", inputs: [`dHM${l}${s}`, `posf${l}${s}`], outputs: [`dZ${l}${s}`] },
        { op: "Div", inputs: [`dZ${l}${s}`, `D${s}`], outputs: [`S${l}${s}`] },
        { op: "MatMul", inputs: [`AT${s}`, `S${l}${s}`], outputs: [`dP${l}${s}`] },
        { op: "Reshape", inputs: [`H${l}${s}`, `shape${l}`], outputs: [`H2d${l}${s}`] },
        { op: "Reshape", inputs: [`dP${l}${s}`, `shape${l + 1}`], outputs: [`dP2d${l}${s}`] },
        { op: "Gemm", inputs: [`H2d${l}${s}`, `dP2d${l}${s}`], outputs: [`dW${l}${s}`], attrs: { transA: 1 } },
      );
      grads[l]!.push(`dW${l}${s}`);
      if (l > 0) nodes.push({ op: "MatMul", inputs: [`dP${l}${s}`, `WT${l}`], outputs: [`dH${l}${s}`] });
    }
  }
  grads.forEach((list, l) => {
    nodes.push({ op: "Sum", inputs: list, outputs: [`dW${l}`] });
    outputs.push({ name: `dW${l}`, dims: [dims[l]!, dims[l + 1]!] });
  });
  nodes.push({ op: "Sum", inputs: gradWC, outputs: ["dWC"] }, { op: "Sum", inputs: gradBC, outputs: ["dBC"] });
  outputs.push({ name: "dWC", dims: [1, cl] }, { name: "dBC", dims: [1] });
  return {
    nodes,
    inputs,
    outputs,
    initializers: [
      { name: "zero", type: OnnxType.FLOAT, dims: [], data: new Float32Array([0]) },
      int64Initializer("flat", [-1n]),
      int64Initializer("column", [-1n, 1n]),
      int64Initializer("unsq1", [0n, 1n, -1n]),
      int64Initializer("axis0", [0n]),
      ...dims.map((d, l) => int64Initializer(`shape${l}`, [-1n, BigInt(d)])),
    ],
  };
}
