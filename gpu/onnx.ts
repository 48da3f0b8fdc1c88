/**
 * The ONNX model writer of the CPU twins (kNN, k-means products, GCN-D): a model description — nodes with
 * int / ints / float attributes, typed graph inputs and outputs with fixed or symbolic dims, raw-data initializers —
 * and its encoding as ONNX protobuf bytes (IR version 8, one default-domain opset). Only the protobuf needed for
 * that is written here (varints, length-delimited fields, fixed32 floats); field numbers follow onnx.proto3.
 * @module
 */

/** ONNX tensor element types used here (TensorProto.DataType). */
export const OnnxType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

/** An attribute value: a number is an INT, a number[] is INTS, `{ float }` is a FLOAT. */
export type AttrValue = number | number[] | { float: number };

/** One graph node. */
export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

/** A typed graph input/output: element type (default FLOAT) and dims (numbers fixed, strings symbolic). */
export interface OnnxValue {
  name: string;
  type?: number;
  dims: (number | string)[];
}

/** A constant tensor stored in the model. */
export interface OnnxInitializer {
  name: string;
  type: number;
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;
}

/** A whole model: one graph at one default-domain opset (default 17). */
export interface OnnxModel {
  nodes: OnnxNode[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  initializers?: OnnxInitializer[];
  opset?: number;
}

/** A protobuf message under construction: a list of byte chunks. */
class Pb {
  readonly parts: Uint8Array[] = [];
  #len = 0;
  get length(): number {
    return this.#len;
  }
  #raw(b: Uint8Array): void {
    this.parts.push(b);
    this.#len += b.length;
  }
  #varint(v: bigint): void {
    const out: number[] = [];
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.#raw(Uint8Array.from(out));
  }
  #key(field: number, wire: number): void {
    this.#varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | bigint): this {
    this.#key(field, 0);
    this.#varint(BigInt(v));
    return this;
  }
  float(field: number, v: number): this {
    this.#key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#raw(b);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.#key(field, 2);
    this.#varint(BigInt(b.length));
    this.#raw(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    this.#key(field, 2);
    this.#varint(BigInt(m.length));
    for (const p of m.parts) this.#raw(p);
    return this;
  }
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.#len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** AttributeProto: name (1), then f (2) / i (3) / ints (8) and the type tag (20: FLOAT 1, INT 2, INTS 7). */
function attribute(name: string, v: AttrValue): Pb {
  const a = new Pb().str(1, name);
  if (typeof v === "number") return a.int(3, v).int(20, 2);
  if (Array.isArray(v)) {
    for (const x of v) a.int(8, x);
    return a.int(20, 7);
  }
  return a.float(2, v.float).int(20, 1);
}

function valueInfo(v: OnnxValue): Pb {
  const shape = new Pb();
  for (const d of v.dims) shape.msg(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, v.type ?? OnnxType.FLOAT).msg(2, shape);
  return new Pb().str(1, v.name).msg(2, new Pb().msg(1, tensorType));
}

function tensor(t: OnnxInitializer): Pb {
  const m = new Pb();
  for (const d of t.dims) m.int(1, d);
  m.int(2, t.type).str(8, t.name);
  return m.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/** Serialise a model to ONNX protobuf bytes (IR version 8). */
export function encodeModel(model: OnnxModel): Uint8Array {
  const graph = new Pb();
  model.nodes.forEach((n, idx) => {
    const node = new Pb();
    for (const i of n.inputs) node.str(1, i);
    for (const o of n.outputs) node.str(2, o);
    node.str(3, `n${idx}_${n.op}`).str(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.msg(5, attribute(k, v));
    graph.msg(1, node);
  });
  graph.str(2, "ltc");
  for (const t of model.initializers ?? []) graph.msg(5, tensor(t));
  for (const v of model.inputs) graph.msg(11, valueInfo(v));
  for (const v of model.outputs) graph.msg(12, valueInfo(v));
  return new Pb()
    .int(1, 8)
    .str(2, "ltc-deno")
    .msg(7, graph)
    .msg(8, new Pb().str(1, "").int(2, model.opset ?? 17))
    .toBytes();
}

/** A 1-D int64 initializer (shapes, axes, counts for ops that take them as inputs). */
export function int64Initializer(name: string, values: (number | bigint)[]): OnnxInitializer {
  return { name, type: OnnxType.INT64, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) };
}
