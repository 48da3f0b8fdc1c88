/**
 * The CPU twin's bridge to onnxruntime-node: a tiny ONNX model encoder (protobuf written by hand — only the fields
 * our graphs use: nodes with int/ints attributes, typed inputs/outputs with symbolic dims, raw initializers) and a
 * lazily loaded runtime. Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto, TensorProto).
 * @module
 */

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

/** Protobuf writer: accumulates bytes; nested messages are encoded first and embedded length-delimited. */
class ProtoWriter {
  #bytes: number[] = [];
  #chunks: Uint8Array[] = [];

  #flush(): void {
    if (this.#bytes.length) {
      this.#chunks.push(Uint8Array.from(this.#bytes));
      this.#bytes = [];
    }
  }
  #varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.#bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#bytes.push(Number(x));
  }
  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }
  int(field: number, v: number | bigint): this {
    this.#tag(field, 0);
    this.#varint(v);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.#tag(field, 2);
    this.#varint(b.length);
    this.#flush();
    this.#chunks.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, w: ProtoWriter): this {
    return this.bytes(field, w.finish());
  }
  finish(): Uint8Array {
    this.#flush();
    let n = 0;
    for (const c of this.#chunks) n += c.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.#chunks) out.set(c, o), o += c.length;
    this.#chunks = [out];
    return out;
  }
}

function valueInfo(v: OnnxValue): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    const dim = new ProtoWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.str(2, d);
    shape.msg(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, v.elem ?? ELEM_FLOAT).msg(2, shape);
  return new ProtoWriter().str(1, v.name).msg(2, new ProtoWriter().msg(1, tensorType));
}

/** Encode a model as ONNX protobuf bytes (IR version 8, default-domain opset 17). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const graph = new ProtoWriter();
  model.nodes.forEach((n, i) => {
    const node = new ProtoWriter();
    for (const s of n.inputs) node.str(1, s);
    for (const s of n.outputs) node.str(2, s);
    node.str(3, `${n.op}_${i}`).str(4, n.op);
    for (const [name, value] of Object.entries(n.attrs ?? {})) {
      const attr = new ProtoWriter().str(1, name);
      if (Array.isArray(value)) {
        for (const x of value) attr.int(8, x);
        attr.int(20, 7);
      } else attr.int(3, value).int(20, 2);
      node.msg(5, attr);
    }
    graph.msg(1, node);
  });
  graph.str(2, "ltc_gcn");
  for (const init of model.initializers ?? []) {
    const t = new ProtoWriter();
    for (const d of init.dims) t.int(1, d);
    t.int(2, init.elem).str(8, init.name);
    t.bytes(9, new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength).slice());
    graph.msg(5, t);
  }
  for (const v of model.inputs) graph.msg(11, valueInfo(v));
  for (const v of model.outputs) graph.msg(12, valueInfo(v));
  return new ProtoWriter()
    .int(1, 8)
    .str(2, "ltc-deno")
    .msg(7, graph)
    .msg(8, new ProtoWriter().str(1, "").int(2, 17))
    .finish();
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
