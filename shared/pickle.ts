/**
 * A small, safe pickle reader. It interprets the opcodes that numpy (object arrays, 0-d object arrays such as the
 * `meta` dict of prediction files) and PyTorch (checkpoints) emit, and never executes code: a GLOBAL is only
 * honoured when it names one of an explicit allow-list of constructors, implemented here in TypeScript.
 *
 * Python values map to: None → null, bool → boolean, int → number (bigint beyond 2^53), float → number,
 * str → string, bytes → Uint8Array, list → array, tuple → {@linkcode PyTuple}, dict → Map, ndarray → NdArray.
 *
 * {@linkcode pickleValue} is the matching writer for the few values this tool must hand to Python (the `meta` dict
 * of prediction files): protocol 3, the bytes CPython and numpy 1.x write.
 * @module
 */
import { LtcError } from "./errors.ts";
import { type DType, fromRawBytes, type NdArray, parseDescr } from "./ndarray.ts";

/** A Python tuple (kept apart from lists so callers can tell them apart). */
export class PyTuple extends Array<unknown> {}

/** A named Python global the reader allows; `call` builds its value from REDUCE/NEWOBJ arguments. */
export interface PyGlobal {
  module: string;
  name: string;
  call?: (args: unknown[]) => unknown;
}

/** Objects that accept a BUILD opcode's state. */
interface Buildable {
  __setstate__(state: unknown): unknown;
}

/** Options for {@linkcode unpickle}. */
export interface UnpickleOptions {
  /** extra allowed globals, keyed `"module.name"` (e.g. torch's `_rebuild_tensor_v2`) */
  globals?: Record<string, (args: unknown[]) => unknown>;
  /** handler for persistent ids (BINPERSID): PyTorch storages */
  persistentLoad?: (pid: unknown) => unknown;
  /** name of the file, for error messages */
  path?: string;
  /**
   * include the built-in allow-list (numpy arrays and scalars, sets, OrderedDict, bytes helpers); default true.
   * With false only `globals` are allowed — PyTorch checkpoints use this to admit nothing beyond what they need.
   */
  builtins?: boolean;
}

/** Result of {@linkcode unpickle}: the value and the offset just past the STOP opcode. */
export interface UnpickleResult {
  value: unknown;
  end: number;
}

/** numpy's `dtype` as met inside a pickle: filled in by its BUILD state. */
class PickledDType implements Buildable {
  byteOrder = "|";
  constructor(public code: string) {}
  __setstate__(state: unknown): this {
    if (state instanceof PyTuple && typeof state[1] === "string") this.byteOrder = state[1];
    return this;
  }
  descr(): string {
    const c = this.code;
    if (c === "O" || c === "O8") return "|O";
    if (/^[<>|=]/.test(c)) return c;
    const order = this.byteOrder === "=" ? "<" : this.byteOrder;
    return `${order}${c}`;
  }
}

/** An ndarray under reconstruction (numpy `_reconstruct` then BUILD). */
class PendingArray implements Buildable {
  result: NdArray | null = null;
  __setstate__(state: unknown): NdArray {
    if (!(state instanceof PyTuple) || state.length < 5) throw new Error("bad ndarray state");
    const shape = Array.from(state[1] as unknown[], Number);
    const dtype = state[2] as PickledDType;
    const fortran = state[3] as boolean;
    const raw = state[4];
    const descr = dtype.descr();
    if (descr === "|O") {
      if (!Array.isArray(raw)) throw new Error("object ndarray state without a list");
      this.result = { dtype: "O", shape, data: [...raw] };
    } else {
      const { dtype: dt, littleEndian } = parseDescr(descr);
      if (!(raw instanceof Uint8Array)) throw new Error("numeric ndarray state without bytes");
      this.result = fromRawBytes(raw, dt, shape, { littleEndian, fortranOrder: fortran });
    }
    return this.result;
  }
}

function numpyScalar(args: unknown[]): unknown {
  const dt = args[0] as PickledDType;
  const bytes = args[1] as Uint8Array;
  const { dtype, littleEndian } = parseDescr(dt.descr());
  const arr = fromRawBytes(bytes, dtype as DType, [], { littleEndian, fortranOrder: false });
  const v = (arr.data as ArrayLike<number | bigint>)[0];
  return typeof v === "bigint" && v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
}

const BUILTIN_GLOBALS: Record<string, (args: unknown[]) => unknown> = {
  "numpy.core.multiarray._reconstruct": () => new PendingArray(),
  "numpy._core.multiarray._reconstruct": () => new PendingArray(),
  // numpy.ndarray only appears as the class argument of _reconstruct; calling it directly is not supported.
  "numpy.ndarray": () => {
    throw new Error("direct ndarray construction is not supported");
  },
  "numpy.dtype": (a) => new PickledDType(String(a[0])),
  "numpy.core.multiarray.scalar": numpyScalar,
  "numpy._core.multiarray.scalar": numpyScalar,
  "collections.OrderedDict": (a) => new Map(a.length ? (a[0] as Iterable<[unknown, unknown]>) : []),
  "builtins.set": (a) => new Set(a.length ? (a[0] as Iterable<unknown>) : []),
  "builtins.frozenset": (a) => new Set(a.length ? (a[0] as Iterable<unknown>) : []),
  "_codecs.encode": (a) => {
    const s = String(a[0]);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
    return out;
  },
  "builtins.bytearray": (a) => (a[0] instanceof Uint8Array ? a[0] : new Uint8Array(0)),
};

/**
 * Read one pickle starting at `offset`. Throws an {@linkcode LtcError} naming the file for anything outside the
 * supported subset (an unknown opcode, a global not on the allow-list, a truncated stream).
 */
export function unpickle(bytes: Uint8Array, offset = 0, options: UnpickleOptions = {}): UnpickleResult {
  const path = options.path ?? "<pickle>";
  const fail = (msg: string): never => {
    throw new LtcError(`${path}: ${msg}`);
  };
  const allowed = { ...(options.builtins === false ? {} : BUILTIN_GLOBALS), ...(options.globals ?? {}) };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = offset;
  const need = (n: number) => {
    // a negative length (BINSTRING's is signed) would move the reader backwards
    if (n < 0) fail(`negative length ${n} in pickle stream at byte ${p}`);
    if (p + n > bytes.length) fail("truncated pickle stream");
  };
  const u8 = () => (need(1), bytes[p++]!);
  const u16 = () => (need(2), p += 2, view.getUint16(p - 2, true));
  const u32 = () => (need(4), p += 4, view.getUint32(p - 4, true));
  const i32 = () => (need(4), p += 4, view.getInt32(p - 4, true));
  const u64 = () => (need(8), p += 8, Number(view.getBigUint64(p - 8, true)));
  const take = (n: number) => (need(n), p += n, bytes.subarray(p - n, p));
  const text = (n: number) => new TextDecoder().decode(take(n));
  const line = () => {
    const start = p;
    while (p < bytes.length && bytes[p] !== 0x0a) p++;
    if (p >= bytes.length) fail("truncated pickle stream");
    const s = new TextDecoder("latin1").decode(bytes.subarray(start, p));
    p++;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) fail("pickle stack underflow");
    return stack.pop();
  };
  // A memo entry stored between REDUCE and BUILD still holds the pending array: hand out the built one.
  const memoGet = (k: number) => {
    if (!memo.has(k)) fail("pickle memo miss");
    const v = memo.get(k);
    return v instanceof PendingArray && v.result ? v.result : v;
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail("pickle MARK missing");
    return stack.splice(m!);
  };
  const top = () => {
    if (stack.length === 0) fail("pickle stack underflow");
    return stack[stack.length - 1];
  };
  const global = (module: string, name: string): PyGlobal => {
    const key = `${module}.${name}`;
    const call = allowed[key];
    if (!call) fail(`pickle refers to ${key}, which is not an allowed type (no code is executed)`);
    return { module, name, call };
  };
  const callGlobal = (fn: unknown, args: unknown[]) => {
    const g = fn as PyGlobal;
    if (!g || typeof g.call !== "function") fail("pickle REDUCE on a non-callable value");
    try {
      return g.call!(args);
    } catch (err) {
      if (err instanceof LtcError) throw err;
      return fail(`cannot rebuild ${g.module}.${g.name}: ${(err as Error).message}`);
    }
  };
  // REDUCE and NEWOBJ take their arguments as a tuple; anything else is a corrupt stream, not a call to attempt.
  const argTuple = (args: unknown, opcode: string): unknown[] => {
    if (!Array.isArray(args)) fail(`pickle ${opcode} arguments are not a tuple`);
    return [...(args as unknown[])];
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
  };
  const setItems = (d: unknown, items: unknown[]) => {
    if (d instanceof Map) { for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]); }
    else fail("pickle SETITEM on a non-dict");
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: p };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(decodeLong(take(u32())));
        break;
      case 0x49: { // INT (protocol 0)
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : Number(s));
        break;
      }
      case 0x4c: // LONG (protocol 0)
        stack.push(Number(line().replace(/L$/, "")));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        p += 8;
        stack.push(view.getFloat64(p - 8, false));
        break;
      case 0x46: // FLOAT (protocol 0)
        stack.push(Number(line()));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x56: // UNICODE (protocol 0, raw-unicode-escape)
        stack.push(line());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(new Uint8Array(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(new Uint8Array(take(u32())));
        break;
      case 0x8e: // BINBYTES8
        stack.push(new Uint8Array(take(u64())));
        break;
      case 0x55: // SHORT_BINSTRING (python 2 str): keep as latin-1 text
        stack.push(new TextDecoder("latin1").decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(new TextDecoder("latin1").decode(take(i32())));
        break;
      case 0x53: { // STRING (protocol 0, quoted)
        const s = line();
        stack.push(s.slice(1, -1));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x74: // TUPLE
        stack.push(PyTuple.from(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(PyTuple.of(pop()));
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push(PyTuple.of(a, b));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push(PyTuple.of(a, b, c));
        break;
      }
      case 0x64: { // DICT
        const items = popMark();
        const d = new Map();
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail("pickle APPEND on a non-list");
        (l as unknown[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail("pickle APPENDS on a non-list");
        (l as unknown[]).push(...items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail("pickle ADDITEMS on a non-set");
        for (const it of items) (s as Set<unknown>).add(it);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: // PUT (protocol 0)
        memo.set(Number(line()), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: { // BINGET
        stack.push(memoGet(u8()));
        break;
      }
      case 0x6a: { // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      }
      case 0x67: { // GET (protocol 0)
        stack.push(memoGet(Number(line())));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        stack.push(global(String(module), String(name)));
        break;
      }
      case 0x52: { // REDUCE
        const args = argTuple(pop(), "REDUCE");
        const fn = pop();
        stack.push(callGlobal(fn, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = argTuple(pop(), "NEWOBJ");
        const cls = pop();
        stack.push(callGlobal(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = pop() as Partial<Buildable> | null;
        if (obj && typeof obj.__setstate__ === "function") {
          try {
            stack.push(obj.__setstate__(state));
          } catch (err) {
            if (err instanceof LtcError) throw err;
            fail(`cannot set the state of a ${obj.constructor?.name ?? "value"}: ${(err as Error).message}`);
          }
        } else if (obj instanceof Map && state instanceof Map) {
          for (const [k, v] of state) obj.set(k, v);
          stack.push(obj);
        } else if (obj && typeof obj === "object") {
          // Plain objects (e.g. a torch module's attribute dict): keep the state beside the object.
          (obj as Record<string, unknown>).__state__ = state;
          stack.push(obj);
        } else fail("pickle BUILD on a value that takes no state");
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail("pickle uses persistent ids, which this file type does not allow");
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)} at byte ${p - 1}`);
    }
  }
}

/** A Python float whose value happens to be integral (a plain integral `number` is pickled as an int). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** What {@linkcode pickleValue} writes as a dict (keys in insertion order, as Python keeps them). */
type PyDictLike = Map<string, unknown> | Record<string, unknown>;

/**
 * Write `value` as a protocol-3 pickle, byte for byte what CPython's pickler (and so numpy 1.x's `np.save`) emits
 * for the same value built from fresh objects: BINPUT memo entries after every str, bytes, tuple, list, dict,
 * global and reduced object, lists and dicts filled in batches of 1000 (APPEND / SETITEM for one item), ints as
 * BININT1 / BININT2 / BININT / LONG1 / LONG4, floats as BINFLOAT, str as BINUNICODE (UTF-8).
 *
 * Scope: null → None, boolean → bool, safe-integer number or bigint → int, other number or {@linkcode PyFloat} → float,
 * string → str, Uint8Array → bytes, array → list, {@linkcode PyTuple} → tuple, Map with string keys or a plain
 * object → dict (insertion order), and an object-dtype {@linkcode NdArray} (`dtype: "O"`, any shape, C order) → a
 * numpy ndarray rebuilt by `numpy.core.multiarray._reconstruct` (the form every numpy version can load). Nothing is
 * shared through the memo (no BINGET), so a value reached twice is written twice; a cycle is an error.
 */
export function pickleValue(value: unknown): Uint8Array {
  const out: number[] = [0x80, 3]; // PROTO 3
  let memoSize = 0;
  const open = new Set<unknown>();
  const u32 = (v: number) => out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const raw = (b: Uint8Array | number[]) => {
    for (const x of b) out.push(x);
  };
  const memoize = () => {
    if (memoSize < 256) out.push(0x71, memoSize); // BINPUT
    else out.push(0x72), u32(memoSize); // LONG_BINPUT
    memoSize++;
  };
  const fail = (where: string, what: string): never => {
    throw new LtcError(`cannot pickle ${what} at ${where || "the top level"}`);
  };
  const int = (v: bigint) => {
    if (v >= 0n && v <= 0xffn) out.push(0x4b, Number(v)); // BININT1
    else if (v >= 0n && v <= 0xffffn) out.push(0x4d, Number(v) & 0xff, Number(v) >> 8); // BININT2
    else if (v >= -(2n ** 31n) && v < 2n ** 31n) out.push(0x4a), u32(Number(v)); // BININT
    else {
      // Little-endian two's complement in the fewest bytes (Python's encode_long).
      const bytes: number[] = [];
      let x = v;
      for (;;) {
        const b = Number(x & 0xffn);
        bytes.push(b);
        x >>= 8n;
        if ((x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80)) break;
      }
      if (bytes.length < 256) out.push(0x8a, bytes.length); // LONG1
      else out.push(0x8b), u32(bytes.length); // LONG4
      raw(bytes);
    }
  };
  const float = (v: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, false);
    out.push(0x47); // BINFLOAT
    raw(b);
  };
  const str = (s: string, where: string) => {
    if (!s.isWellFormed()) fail(where, "a string with a lone surrogate");
    const b = new TextEncoder().encode(s);
    out.push(0x58); // BINUNICODE
    u32(b.length);
    raw(b);
    memoize();
  };
  const global = (module: string, name: string) => {
    out.push(0x63); // GLOBAL
    raw(new TextEncoder().encode(`${module}\n${name}\n`));
    memoize();
  };
  // CPython's C pickler (what np.save runs): one item → APPEND / SETITEM; more → MARK … APPENDS / SETITEMS per
  // batch of 1000. Its dict loop repeats while a batch came out full, so a dict of exactly 1000·k items ends with an
  // empty MARK SETITEMS; its list loop does not.
  const BATCH = 1000;
  const list = (items: unknown[], where: string) => {
    if (items.length === 1) return save(items[0], `${where}[0]`), out.push(0x61); // APPEND
    for (let start = 0; start < items.length; start += BATCH) {
      out.push(0x28); // MARK
      items.slice(start, start + BATCH).forEach((item, j) => save(item, `${where}[${start + j}]`));
      out.push(0x65); // APPENDS
    }
  };
  const dict = (entries: [unknown, unknown][], where: string) => {
    const item = ([k, v]: [unknown, unknown]) => {
      if (typeof k !== "string") fail(where, `a dict key of type ${typeof k} (only str keys are supported)`);
      str(k as string, where);
      save(v, `${where}[${JSON.stringify(k)}]`);
    };
    if (entries.length === 1) return item(entries[0]!), out.push(0x73); // SETITEM
    if (entries.length === 0) return;
    let start = 0, batch: [unknown, unknown][];
    do {
      batch = entries.slice(start, start + BATCH);
      start += BATCH;
      out.push(0x28); // MARK
      batch.forEach(item);
      out.push(0x75); // SETITEMS
    } while (batch.length === BATCH);
  };
  const enter = (v: object, where: string) => {
    if (open.has(v)) fail(where, "a value that contains itself");
    open.add(v);
  };
  const isObjectArray = (v: object): v is NdArray =>
    (v as NdArray).dtype === "O" && Array.isArray((v as NdArray).shape) && Array.isArray((v as NdArray).data);

  const save = (v: unknown, where: string): void => {
    if (v === null) out.push(0x4e); // NONE
    else if (typeof v === "boolean") out.push(v ? 0x88 : 0x89); // NEWTRUE / NEWFALSE
    else if (typeof v === "bigint") int(v);
    else if (typeof v === "number") Number.isSafeInteger(v) && !Object.is(v, -0) ? int(BigInt(v)) : float(v);
    else if (v instanceof PyFloat) float(v.value);
    else if (typeof v === "string") str(v, where);
    else if (v instanceof Uint8Array) {
      if (v.length < 256) out.push(0x43, v.length); // SHORT_BINBYTES
      else out.push(0x42), u32(v.length); // BINBYTES
      raw(v);
      memoize();
    } else if (v instanceof PyTuple) {
      enter(v, where);
      if (v.length === 0) out.push(0x29); // EMPTY_TUPLE
      else {
        if (v.length > 3) out.push(0x28); // MARK
        v.forEach((item, i) => save(item, `${where}(${i})`));
        out.push(v.length > 3 ? 0x74 : [0x85, 0x86, 0x87][v.length - 1]!); // TUPLE / TUPLE1..3
        memoize();
      }
      open.delete(v);
    } else if (Array.isArray(v)) {
      enter(v, where);
      out.push(0x5d); // EMPTY_LIST
      memoize();
      list(v, where);
      open.delete(v);
    } else if (typeof v === "object" && isObjectArray(v)) {
      enter(v, where);
      const items = v.data as unknown[];
      const size = v.shape.reduce((a, b) => a * b, 1);
      if (items.length !== size) fail(where, `an object array of ${items.length} items with shape (${v.shape})`);
      // numpy's ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b'), then BUILD with
      // (version 1, shape, dtype, fortran_order, list of the items).
      global("numpy.core.multiarray", "_reconstruct");
      global("numpy", "ndarray");
      save(PyTuple.of(0), where);
      save(new Uint8Array([0x62]), where);
      out.push(0x87); // TUPLE3
      memoize();
      out.push(0x52); // REDUCE
      memoize();
      out.push(0x28, 0x4b, 1); // MARK, version 1
      save(PyTuple.from(v.shape), where);
      // dtype('O8', False, True) with state (3, '|', None, None, None, -1, -1, 63), as numpy reduces it.
      global("numpy", "dtype");
      save(PyTuple.of<unknown>("O8", false, true), where);
      out.push(0x52); // REDUCE
      memoize();
      save(PyTuple.of<unknown>(3, "|", null, null, null, -1, -1, 63), where);
      out.push(0x62, 0x89); // BUILD, fortran_order False
      save(items, where);
      out.push(0x74); // TUPLE
      memoize();
      out.push(0x62); // BUILD
      open.delete(v);
    } else if (v instanceof Map || (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype)) {
      const d = v as PyDictLike;
      enter(d, where);
      const entries = d instanceof Map ? [...d.entries()] : Object.entries(d);
      out.push(0x7d); // EMPTY_DICT
      memoize();
      dict(entries, where);
      open.delete(d);
    } else fail(where, `a value of type ${v?.constructor?.name ?? typeof v}`);
  };
  save(value, "");
  out.push(0x2e); // STOP
  return new Uint8Array(out);
}
