/**
 * A whole pre-norm Transformer block as one kernel each way, for the fast path (model/fast/index.ts registers them;
 * model/transformer.ts and model/text.ts call `fusedEncoderBlock` through there):
 *
 *   h = norm1(x); q, k, v = h Wq, h Wk, h Wv (+ biases); a = attention(q, k, v, bias) with dropout
 *   x1 = x + dropout(a Wo (+ bo)); h2 = LayerNorm(x1); f = h2 W1 (+ b1)
 *   y = x1 + dropout(dropout(gelu(f)) W2 (+ b2))
 *
 * norm1 is a LayerNorm (the video/audio blocks, with all biases) or an RMS norm (the T5-style text blocks, no
 * biases). The same native loops and GEMM as the separate fused ops, in the same order, with the same dropout
 * masks; composed from those ops a block is ~25 kernels forward and ~35 backward, each an engine call with its
 * tape node and tensors. The forward pass returns its intermediates (h, q, k, v, a, x1, h2, f, the MLP activation
 * after dropout, and the attention probabilities when small) for the backward pass, which recomputes only the
 * dropout masks.
 */
import type * as tf from "@tensorflow/tfjs";
import type { NativeKernels } from "../../native/kernels.js";
import type { OnnxGemm } from "./onnx-gemm.js";
import type { WasmBackendLike } from "./wasm.js";

type Native = Pick<
  NativeKernels,
  "norm" | "attention" | "gelu" | "geluGrad" | "dropoutApply" | "sumLeading" | "addRows" | "addInto"
>;

/** Which block: the norm before attention, and whether the six projections have biases. */
export interface BlockKind {
  norm: "layer" | "rms";
  biases: boolean;
  /** Whether an additive attention bias [B, H, N, N] (padding mask, relative positions) is an input. */
  masked: boolean;
}

export interface BlockAttrs extends BlockKind {
  heads: number;
  /** Attention score scale (1 / sqrt(head size) for video/audio, 1 for T5). */
  scale: number;
  eps: number;
  /** Dropout rate (0 when not training) and the mask words of the four dropouts, in the network's order. */
  rate: number;
  words: number[];
  threads: number;
}

/** The kernel's inputs, in the order of the backward kernel's outputs (one gradient each). */
export function blockInputNames(kind: BlockKind): string[] {
  return [
    "x",
    "norm1",
    ...(kind.norm === "layer" ? ["norm1Beta"] : []),
    "wq",
    "wk",
    "wv",
    "wo",
    ...(kind.biases ? ["bq", "bk", "bv", "bo"] : []),
    "norm2",
    "norm2Beta",
    "w1",
    "w2",
    ...(kind.biases ? ["b1", "b2"] : []),
    ...(kind.masked ? ["bias"] : []),
  ];
}

/**
 * The forward kernel's second output, what the backward kernel reads: h, q, k, v, a, x1, h2 ([rows, d] each), f
 * and g = dropout(gelu(f)) ([rows, mlp] each) and the kept attention probabilities (`probs` floats, maybe none)
 * in one buffer, so the custom gradient saves one tensor rather than ten.
 */
function savedViews(work: Float32Array, rows: number, d: number, mlp: number, probs: number) {
  const part = (i: number, width = d) => work.subarray(i * rows * d, i * rows * d + rows * width);
  const end = rows * (7 * d + 2 * mlp);
  return {
    h: part(0),
    q: part(1),
    k: part(2),
    v: part(3),
    a: part(4),
    x1: part(5),
    h2: part(6),
    f: part(7, mlp),
    g: work.subarray(rows * (7 * d + mlp), end),
    probs: probs > 0 ? work.subarray(end, end + probs) : null,
  };
}

/**
 * Attention probabilities [B, H, N, N] are kept from the forward pass for the backward one when there are at most
 * this many (16 MB): the tiny preset's blocks (e.g. 8 x 4 x 65^2) then skip recomputing q k^T and the softmax; a
 * paper-sized block (1,568 tokens, 12 heads) would keep ~118 MB a clip, so it recomputes them.
 */
const KEPT_PROBABILITIES = 1 << 22;

function keptProbabilities(batch: number, heads: number, tokens: number): number {
  const count = batch * heads * tokens * tokens;
  return count <= KEPT_PROBABILITIES ? count : 0;
}

/** native/binding.c `Norm` op codes. */
const NORM = { layer: { y: 0, dx: 1, dp: 2 }, rms: { y: 3, dx: 4, dp: 5 } } as const;

type Infos = Record<string, tf.TensorInfo>;

/**
 * Heap memory of one kernel call: all of it allocated before any view is taken (allocation may move the heap);
 * everything is freed if the call fails, the temporaries when it ends.
 */
class Allocation {
  private readonly infos: tf.TensorInfo[] = [];
  constructor(private readonly backend: WasmBackendLike) {}

  add(shape: number[]): tf.TensorInfo {
    const t = this.backend.makeOutput(shape, "float32");
    this.infos.push(t);
    return t;
  }

  free(infos: tf.TensorInfo[]): void {
    for (const t of infos) this.backend.disposeData(t.dataId);
  }

  freeAll(): void {
    this.free(this.infos);
  }
}

function view(b: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  return b.typedArrayFromHeap(t) as Float32Array;
}

/** Runs `body`; on error every allocation is freed before the error goes on. */
function guarded<T>(alloc: Allocation, body: () => T): T {
  try {
    return body();
  } catch (err) {
    alloc.freeAll();
    throw err;
  }
}

/** The block's four dropout masks' words (0 attention, 1 output, 2 MLP activation, 3 MLP) and in-place dropout. */
function dropouts(attrs: BlockAttrs, native: Native) {
  const mask = (i: number) => Uint32Array.from(attrs.words.slice(4 * i, 4 * i + 4));
  const drop = (buf: Float32Array, i: number) => {
    if (attrs.rate > 0) native.dropoutApply(buf, buf, attrs.rate, mask(i));
  };
  return { mask, drop };
}

function dimensions(inputs: Infos, attrs: BlockAttrs) {
  const [batch, tokens, d] = inputs.x.shape;
  const mlp = inputs.w1.shape[1];
  return { batch, tokens, d, mlp, rows: batch * tokens, headDim: d / attrs.heads };
}

/** Forward: inputs (`blockInputNames`) -> [y, the saved intermediates (`savedViews`)]. */
export function blockForward(
  backend: WasmBackendLike,
  inputs: Infos,
  attrs: BlockAttrs,
  gemm: OnnxGemm,
  native: Native,
): tf.TensorInfo[] {
  const { batch, tokens, d, mlp, rows, headDim } = dimensions(inputs, attrs);
  const alloc = new Allocation(backend);
  const probs = keptProbabilities(batch, attrs.heads, tokens);
  return guarded(alloc, () => {
    const outs = [alloc.add([batch, tokens, d]), alloc.add([rows * (7 * d + 2 * mlp) + probs])];
    const temps = [alloc.add([rows * d])];
    const b = backend;
    const y = view(b, outs[0]);
    const { h, q, k, v, a, x1, h2, f, g, probs: kept } = savedViews(view(b, outs[1]), rows, d, mlp, probs);
    const [rd] = temps.map((t) => view(b, t));
    const w = (name: string) => view(b, inputs[name]);
    const x = w("x");
    const { mask, drop } = dropouts(attrs, native);
    const dense = (
      input: Float32Array,
      din: number,
      kernel: string,
      dout: number,
      bias: string,
      out: Float32Array,
    ) => {
      gemm.matmul(input, [rows, din], w(kernel), [din, dout], false, false, out, [rows, dout]);
      if (attrs.biases) native.addRows(out, w(bias));
    };
    const n1 = NORM[attrs.norm];
    native.norm(n1.y, x, w("norm1"), attrs.norm === "layer" ? w("norm1Beta") : null, h, d, attrs.eps);
    dense(h, d, "wq", d, "bq", q);
    dense(h, d, "wk", d, "bk", k);
    dense(h, d, "wv", d, "bv", v);
    const bias = attrs.masked ? w("bias") : null;
    native.attention(
      q,
      k,
      v,
      bias,
      null,
      a,
      null,
      null,
      null,
      batch,
      tokens,
      attrs.heads,
      headDim,
      attrs.scale,
      attrs.rate,
      mask(0),
      attrs.threads,
      kept,
    );
    dense(a, d, "wo", d, "bo", rd);
    drop(rd, 1);
    x1.set(x);
    native.addInto(x1, rd);
    native.norm(NORM.layer.y, x1, w("norm2"), w("norm2Beta"), h2, d, attrs.eps);
    dense(h2, d, "w1", mlp, "b1", f);
    native.gelu(f, g);
    drop(g, 2);
    dense(g, mlp, "w2", d, "b2", rd);
    drop(rd, 3);
    y.set(x1);
    native.addInto(y, rd);
    alloc.free(temps);
    return outs;
  });
}

/** Backward: inputs, the saved intermediates ("work") and dy -> one gradient per input, in `blockInputNames` order. */
export function blockBackward(
  backend: WasmBackendLike,
  inputs: Infos,
  attrs: BlockAttrs,
  gemm: OnnxGemm,
  native: Native,
): tf.TensorInfo[] {
  const { batch, tokens, d, mlp, rows, headDim } = dimensions(inputs, attrs);
  const names = blockInputNames(attrs);
  const alloc = new Allocation(backend);
  return guarded(alloc, () => {
    const outs = names.map((n) => alloc.add([...inputs[n].shape]));
    const temps = [0, 1, 2, 3, 4, 5].map(() => alloc.add([rows * d]));
    temps.push(alloc.add([rows * mlp]), alloc.add([rows * mlp]));
    const b = backend;
    const grad: Record<string, Float32Array> = {};
    names.forEach((n, i) => {
      grad[n] = view(b, outs[i]);
    });
    const [t1, t2, t3, t4, t5, t6, m1, m2] = temps.map((t) => view(b, t));
    const w = (name: string) => view(b, inputs[name]);
    const [x, dy] = [w("x"), w("dy")];
    const saved = savedViews(w("work"), rows, d, mlp, keptProbabilities(batch, attrs.heads, tokens));
    const { mask, drop } = dropouts(attrs, native);
    // Gradients of one dense layer given d(out) [rows, dout]: kernel (and bias), and d(input) when asked.
    const denseGrad = (
      input: Float32Array,
      din: number,
      kernel: string,
      dout: number,
      bias: string,
      dOut: Float32Array,
      dInput: Float32Array | null,
    ) => {
      gemm.matmul(input, [rows, din], dOut, [rows, dout], true, false, grad[kernel], [din, dout]);
      if (attrs.biases) native.sumLeading(dOut, grad[bias]);
      if (dInput) gemm.matmul(dOut, [rows, dout], w(kernel), [din, dout], false, true, dInput, [rows, din]);
    };
    // MLP: y = x1 + drop3(drop2(gelu(f)) W2 + b2), f = h2 W1 + b1.
    t1.set(dy);
    drop(t1, 3);
    denseGrad(saved.g, mlp, "w2", d, "b2", t1, m2);
    drop(m2, 2);
    native.geluGrad(saved.f, m2, m1);
    denseGrad(saved.h2, d, "w1", mlp, "b1", m1, t1);
    // h2 = LayerNorm(x1): dx1 = dy + its gradient.
    native.norm(NORM.layer.dx, saved.x1, w("norm2"), t1, t2, d, attrs.eps);
    native.norm(NORM.layer.dp, saved.x1, t1, null, grad.norm2, d, attrs.eps);
    native.sumLeading(t1, grad.norm2Beta);
    native.addInto(t2, dy);
    // Attention: x1 = x + drop1(a Wo + bo).
    t1.set(t2);
    drop(t1, 1);
    denseGrad(saved.a, d, "wo", d, "bo", t1, t3);
    const dBias = attrs.masked ? grad.bias : null;
    const bias = attrs.masked ? w("bias") : null;
    native.attention(
      saved.q,
      saved.k,
      saved.v,
      bias,
      t3,
      t1,
      t4,
      t5,
      dBias,
      batch,
      tokens,
      attrs.heads,
      headDim,
      attrs.scale,
      attrs.rate,
      mask(0),
      attrs.threads,
      saved.probs,
    );
    denseGrad(saved.h, d, "wq", d, "bq", t1, t3);
    denseGrad(saved.h, d, "wk", d, "bk", t4, t6);
    native.addInto(t3, t6);
    denseGrad(saved.h, d, "wv", d, "bv", t5, t6);
    native.addInto(t3, t6);
    // h = norm1(x): dx = dx1 + its gradient.
    const n1 = NORM[attrs.norm];
    native.norm(n1.dx, x, w("norm1"), t3, grad.x, d, attrs.eps);
    native.norm(n1.dp, x, t3, null, grad.norm1, d, attrs.eps);
    if (attrs.norm === "layer") native.sumLeading(t3, grad.norm1Beta);
    native.addInto(grad.x, t2);
    alloc.free(temps);
    return outs;
  });
}
