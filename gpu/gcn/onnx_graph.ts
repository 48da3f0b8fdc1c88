/**
 * The CPU twin's bridge to onnxruntime-node: the GCN graphs' model description (nodes with int/ints attributes,
 * typed inputs/outputs with symbolic dims, raw initializers), encoded by the kNN twin's protobuf writer, and a
 * lazily loaded runtime.
 * @module
 */
import { encodeModel } from "../knn/onnx_proto.ts";

/** ONNX element types we emit (TensorProto.DataType). */
export const ELEM_FLOAT = 1;
/** int64 element type. */
export const ELEM_INT64 = 7;

/** One operator node. Attribute values: a number is an INT, a number[] is INTS. */
export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[]>;
}

/** A graph input or output: name, element type and dims (numbers fixed, strings symbolic). */
export interface OnnxValue {
  name: string;
  elem?: number;
  dims: (number | string)[];
}

/** A constant tensor baked into the model. */
export interface OnnxInitializer {
  name: string;
  elem: number;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

/** A whole single-graph model. */
export interface OnnxModel {
  nodes: OnnxNode[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  initializers?: OnnxInitializer[];
}

/**
 * Encode a model as ONNX protobuf bytes (IR version 8, default-domain opset 17) with the project's one protobuf
 * encoder ({@linkcode ../knn/onnx_proto.ts}); this module's types differ only in naming (`elem`, plain int lists).
 */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  return encodeModel({
    nodes: model.nodes.map((n) => ({
      op: n.op,
      inputs: n.inputs,
      outputs: n.outputs,
      attrs: n.attrs &&
        Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, Array.isArray(v) ? { ints: v } : v])),
    })),
    inputs: model.inputs.map((v) => ({ name: v.name, type: v.elem ?? ELEM_FLOAT, dims: v.dims })),
    outputs: model.outputs.map((v) => ({ name: v.name, type: v.elem ?? ELEM_FLOAT, dims: v.dims })),
    initializers: model.initializers?.map((t) => ({ name: t.name, type: t.elem, dims: t.dims, data: t.data })),
    opset: 17,
  });
}

/** The subset of onnxruntime-node's API used here. */
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose?(): void;
}
/** An onnxruntime inference session. */
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
/** The onnxruntime module. */
export interface OrtModule {
  Tensor: new (type: "float32" | "int64", data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor;
  InferenceSession: {
    create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession>;
  };
}

let ortPromise: Promise<OrtModule | null> | null = null;

/** onnxruntime-node, or null when its native library cannot load here (the TypeScript kernels take over). */
export function loadOrt(): Promise<OrtModule | null> {
  if (!ortPromise) {
    ortPromise = import("onnxruntime-node").then(
      (m) => ((m as { default?: OrtModule }).default ?? m) as unknown as OrtModule,
      () => null,
    );
  }
  return ortPromise;
}

/** Threads onnxruntime may use: the machine's cores (the original's CPU path also used them all). */
export function ortThreads(): number {
  return Math.max(1, navigator.hardwareConcurrency ?? 1);
}

/** Create a session for `model` with our standard options (all graph optimisations, intra-op threads = cores). */
export async function createSession(ort: OrtModule, model: OnnxModel): Promise<OrtSession> {
  return await ort.InferenceSession.create(encodeOnnxModel(model), {
    intraOpNumThreads: ortThreads(),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  });
}
