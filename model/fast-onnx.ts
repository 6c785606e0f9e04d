/**
 * Native matrix products through onnxruntime-node, run synchronously: the optional package ships its CPU library
 * inside the npm tarball (its install script, which would fetch CUDA providers, is never needed and stays denied).
 *
 * One tiny ONNX graph per (rank, broadcast, transpose) pattern holds a single com.microsoft FusedMatMul node with
 * symbolic dimensions, so a handful of sessions serve every shape. Inputs are wrapped zero-copy; the output is
 * written straight into a caller's buffer (pre-allocated fetch), so a product costs no JavaScript copies.
 *
 * Everything here is optional: `loadOnnxGemm` returns undefined (with the reason) when the package or its
 * library is missing, and callers keep their stock path.
 */
import { createRequire } from "node:module";

// ---- A minimal protobuf writer for the few ONNX messages we need. ----

class Proto {
  private readonly bytes: number[] = [];

  private varint(v: number): void {
    let x = v;
    while (x > 0x7f) {
      this.bytes.push((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    this.bytes.push(x);
  }

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }

  raw(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  str(field: number, s: string): this {
    return this.raw(field, new TextEncoder().encode(s));
  }

  msg(field: number, m: Proto): this {
    return this.raw(field, m.done());
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

/** ValueInfoProto of a float tensor whose dimensions are all symbolic (named). */
function valueInfo(name: string, dims: string[]): Proto {
  const shape = new Proto();
  for (const d of dims) shape.msg(1, new Proto().str(2, d));
  const tensor = new Proto().int(1, FLOAT).msg(2, shape);
  return new Proto().str(1, name).msg(2, new Proto().msg(1, tensor));
}

function intAttr(name: string, v: number): Proto {
  return new Proto().str(1, name).int(3, v).int(20, ATTR_INT);
}

function floatAttr(name: string, v: number): Proto {
  return new Proto().str(1, name).float(2, v).int(20, ATTR_FLOAT);
}

/**
 * Y = op(A) @ op(B) with op a transpose of the last two axes when asked. `rankA`/`rankB` are 2 or 3; a rank-3
 * operand's leading axis is a batch (broadcast against a rank-2 operand, as ONNX MatMul).
 */
export function fusedMatMulModel(rankA: number, rankB: number, transA: boolean, transB: boolean): Uint8Array {
  const dimsA = rankA === 3 ? ["batchA", "a1", "a2"] : ["a1", "a2"];
  const dimsB = rankB === 3 ? ["batchB", "b1", "b2"] : ["b1", "b2"];
  const node = new Proto()
    .str(1, "A")
    .str(1, "B")
    .str(2, "Y")
    .str(3, "mm")
    .str(4, "FusedMatMul")
    .msg(5, intAttr("transA", transA ? 1 : 0))
    .msg(5, intAttr("transB", transB ? 1 : 0))
    .msg(5, floatAttr("alpha", 1))
    .str(7, "com.microsoft");
  const outDims = rankA === 3 || rankB === 3 ? ["batchY", "y1", "y2"] : ["y1", "y2"];
  const graph = new Proto()
    .msg(1, node)
    .str(2, "vatt_matmul")
    .msg(11, valueInfo("A", dimsA))
    .msg(11, valueInfo("B", dimsB))
    .msg(12, valueInfo("Y", outDims));
  return new Proto()
    .int(1, 8) // ir_version
    .str(2, "vatt")
    .msg(7, graph)
    .msg(8, new Proto().str(1, "").int(2, 17))
    .msg(8, new Proto().str(1, "com.microsoft").int(2, 1))
    .done();
}

// ---- The synchronous session wrapper. ----

interface OrtTensor {
  readonly dims: readonly number[];
}
type OrtTensorCtor = new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor | null>, options: object): void;
  dispose(): void;
}
interface NativeBinding {
  InferenceSession: new () => NativeSession;
}

/** A synchronous native GEMM: `matmul` writes op(A) @ op(B) into `out`. */
export interface OnnxGemm {
  readonly threads: number;
  readonly version: string;
  /**
   * a: [batchA, m or k rows...] laid out row-major with dims `dimsA` (rank 2 or 3), likewise b; out must hold the
   * broadcast product's [batch, m, n].
   */
  matmul(
    a: Float32Array,
    dimsA: readonly number[],
    b: Float32Array,
    dimsB: readonly number[],
    transA: boolean,
    transB: boolean,
    out: Float32Array,
    dimsOut: readonly number[],
  ): void;
  dispose(): void;
}

export type OnnxLoad = { gemm: OnnxGemm; reason?: undefined } | { gemm?: undefined; reason: string };

/**
 * Loads onnxruntime-node's native binding and returns a GEMM running on `threads` intra-op threads, or the reason
 * it cannot (package absent, library failing to load).
 */
export function loadOnnxGemm(threads: number): OnnxLoad {
  let binding: NativeBinding;
  let Tensor: OrtTensorCtor;
  let version = "?";
  try {
    const require = createRequire(import.meta.url);
    // The public module exports Tensor; its binding module exposes the synchronous session the async API wraps.
    const ort = require("onnxruntime-node") as {
      Tensor: OrtTensorCtor;
      env: { versions?: { node?: string } };
    };
    const b = require("onnxruntime-node/dist/binding") as { binding: NativeBinding; initOrt: () => void };
    b.initOrt();
    binding = b.binding;
    Tensor = ort.Tensor;
    try {
      version = (require("onnxruntime-node/package.json") as { version: string }).version;
    } catch {
      // version is informative only
    }
  } catch (err) {
    return { reason: `onnxruntime-node unavailable: ${(err as Error).message.split("\n")[0]}` };
  }
  const options = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    enableCpuMemArena: true,
    enableMemPattern: false,
    logSeverityLevel: 3,
    executionProviders: ["cpu"],
    // Between products the JavaScript thread works alone; spinning pool threads would take its core.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
  const sessions = new Map<string, NativeSession>();
  const session = (rankA: number, rankB: number, transA: boolean, transB: boolean): NativeSession => {
    const key = `${rankA}${rankB}${transA ? 1 : 0}${transB ? 1 : 0}`;
    let s = sessions.get(key);
    if (!s) {
      const bytes = fusedMatMulModel(rankA, rankB, transA, transB);
      s = new binding.InferenceSession();
      s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, options);
      sessions.set(key, s);
    }
    return s;
  };
  const gemm: OnnxGemm = {
    threads,
    version,
    matmul(a, dimsA, b, dimsB, transA, transB, out, dimsOut) {
      const s = session(dimsA.length, dimsB.length, transA, transB);
      s.run(
        { A: new Tensor("float32", a, dimsA), B: new Tensor("float32", b, dimsB) },
        { Y: new Tensor("float32", out, dimsOut) },
        {},
      );
    },
    dispose() {
      for (const s of sessions.values()) s.dispose();
      sessions.clear();
    },
  };
  // A smoke product proves the library runs (and that pre-allocated outputs are honoured) before anyone relies on it.
  try {
    const out = new Float32Array(4).fill(Number.NaN);
    gemm.matmul(
      Float32Array.from([1, 2, 3, 4, 5, 6]),
      [2, 3],
      Float32Array.from([1, 0, 0, 1, 1, 1]),
      [2, 3],
      false,
      true,
      out,
      [2, 2],
    );
    const want = [1, 6, 4, 15];
    if (want.some((w, i) => out[i] !== w)) throw new Error(`smoke product gave ${Array.from(out)}`);
  } catch (err) {
    gemm.dispose();
    return { reason: `onnxruntime-node failed its smoke test: ${(err as Error).message.split("\n")[0]}` };
  }
  return { gemm };
}
