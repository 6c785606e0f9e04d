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
import { readFileSync } from "node:fs";
import { nativeOrtCaller } from "../../native/kernels.js";
import { requireOnnxRuntime } from "../../native/onnxruntime.js";

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

// ---- The synchronous session wrappers. ----

/** Where the process loaded onnxruntime's library from (Linux: /proc/self/maps), once its binding is loaded. */
function loadedOnnxLibrary(): string | undefined {
  try {
    const maps = readFileSync("/proc/self/maps", "utf8");
    const line = maps.split("\n").find((l) => /\/libonnxruntime\.so[.\d]*$/.test(l));
    return line?.slice(line.indexOf("/"));
  } catch {
    return undefined;
  }
}

/**
 * Products through ONNX Runtime's C API from vatt's native module, over the library onnxruntime-node loaded, or
 * undefined when that is not possible (no native module, not Linux, the API refused).
 */
function directSessions(threads: number): { matmul: OnnxGemm["matmul"]; dispose(): void } | undefined {
  const native = nativeOrtCaller();
  const library = loadedOnnxLibrary();
  if (!native || !library) return undefined;
  try {
    native.ortOpen(library);
  } catch {
    return undefined;
  }
  let sessions = new Map<string, object>();
  return {
    matmul(a, dimsA, b, dimsB, transA, transB, out, dimsOut) {
      const key = `${dimsA.length}${dimsB.length}${transA ? 1 : 0}${transB ? 1 : 0}`;
      let s = sessions.get(key);
      if (!s) {
        s = native.ortSession(fusedMatMulModel(dimsA.length, dimsB.length, transA, transB), threads);
        sessions.set(key, s);
      }
      native.ortMatmul(s, a, dimsA, b, dimsB, out, dimsOut);
    },
    // The sessions are released when their handles are collected.
    dispose() {
      sessions = new Map();
    },
  };
}

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
   * How products reach the library: "c-api" from vatt's native module (native/ort_gemm.c: no JavaScript objects,
   * no output copies), else "node-binding" (onnxruntime-node's run, which copies every output into a new
   * ArrayBuffer).
   */
  readonly caller: "c-api" | "node-binding";
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
 * A product proving the library runs and honours pre-allocated outputs: undefined, or what went wrong.
 */
function smokeTest(matmul: OnnxGemm["matmul"]): string | undefined {
  try {
    const out = new Float32Array(4).fill(Number.NaN);
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
    matmul(a, [2, 3], Float32Array.from([1, 0, 0, 1, 1, 1]), [2, 3], false, true, out, [2, 2]);
    const want = [1, 6, 4, 15];
    return want.some((w, i) => out[i] !== w) ? `smoke product gave ${Array.from(out)}` : undefined;
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

/**
 * Loads onnxruntime-node's native binding and returns a GEMM running on `threads` intra-op threads, or the reason
 * it cannot (package absent, library failing to load). Products go through the C API from vatt's native module
 * when that works (`caller` "c-api", the default), else, or when asked, through onnxruntime-node's run.
 */
export function loadOnnxGemm(threads: number, caller: OnnxGemm["caller"] = "c-api"): OnnxLoad {
  let binding: NativeBinding;
  let Tensor: OrtTensorCtor;
  let version = "?";
  try {
    // The public module exports Tensor; its binding module exposes the synchronous session the async API wraps.
    const ort = requireOnnxRuntime("onnxruntime-node") as {
      Tensor: OrtTensorCtor;
      env: { versions?: { node?: string } };
    };
    const b = requireOnnxRuntime("onnxruntime-node/dist/binding") as {
      binding: NativeBinding;
      initOrt: () => void;
    };
    b.initOrt();
    binding = b.binding;
    Tensor = ort.Tensor;
    try {
      version = requireOnnxRuntime<{ version: string }>("onnxruntime-node/package.json").version;
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
  const direct = caller === "c-api" ? directSessions(threads) : undefined;
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
  const viaBinding: OnnxGemm["matmul"] = (a, dimsA, b, dimsB, transA, transB, out, dimsOut) => {
    const s = session(dimsA.length, dimsB.length, transA, transB);
    s.run(
      { A: new Tensor("float32", a, dimsA), B: new Tensor("float32", b, dimsB) },
      { Y: new Tensor("float32", out, dimsOut) },
      {},
    );
  };
  // The C API caller when it passes the smoke test, else onnxruntime-node's own run.
  const directWorks = direct !== undefined && smokeTest(direct.matmul) === undefined;
  const gemm: OnnxGemm = {
    threads,
    version,
    caller: directWorks ? "c-api" : "node-binding",
    matmul: directWorks ? direct.matmul : viaBinding,
    dispose() {
      for (const s of sessions.values()) s.dispose();
      sessions.clear();
      direct?.dispose();
    },
  };
  const failure = smokeTest(gemm.matmul);
  if (failure) {
    gemm.dispose();
    return { reason: `onnxruntime-node failed its smoke test: ${failure}` };
  }
  return { gemm };
}
