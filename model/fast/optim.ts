/**
 * Fused optimiser updates for the wasm backend: one pass per parameter over the wasm heap, updating weights and
 * slots in place, instead of a dozen tfjs kernels per parameter (each a full pass over memory, plus engine
 * bookkeeping). For the tiny preset's 2^16 x 64 word table that is the difference between ~15 passes over 4 M
 * entries and one. The pass is native/optim.c (vectorised C, float32) when the native kernels are built, else the
 * JavaScript loops below (double-precision intermediates).
 *
 * The arithmetic is model/optim.ts's (NaN gradients zeroed, global norm, optional clipping, Keras Adam / SGD
 * momentum); norms are summed in double precision, so the reported norm and the weights can differ from the tfjs
 * ones in the last float32 digits (tested within tolerance). Used only when the fast path is on, the backend is
 * wasm, and every weight and slot is held by nobody else (in-place writes must not change a tensor someone shares).
 */
import * as tf from "@tensorflow/tfjs";
import { nativeModelKernels } from "../../native/kernels.js";
import type { ParamMap } from "../params.js";
import { fastKernelsInfo } from "./index.js";
import { scatteredRowsOf } from "./replacements.js";
import type { WasmBackendLike } from "./wasm.js";

/** What the fused update needs of an optimiser (model/optim.ts's Optimizer fits). */
export interface FusedOptimizerState {
  config: {
    method:
      | { kind: "adam"; beta1: number; beta2: number; epsilon: number }
      | { kind: "sgd"; momentum: number };
    clipNorm?: number;
  };
  slots: ParamMap;
}

interface WasmRefs extends WasmBackendLike {
  refCount(dataId: object): number;
}

let applied = 0;
let sparseUpdates = 0;

/** How many fused updates have run in this process (tests check the fast path was taken). */
export function fusedUpdateCount(): number {
  return applied;
}

/** How many parameter updates read only the rows a gather's gradient touched (tests check the path is taken). */
export function sparseUpdateCount(): number {
  return sparseUpdates;
}

function wasmBackend(): WasmRefs | undefined {
  if (tf.getBackend() !== "wasm" || !fastKernelsInfo().fusedOptimizer) return undefined;
  return tf.backend() as unknown as WasmRefs;
}

/** A float32 view of a tensor's heap memory (valid until the next allocation). */
function view(b: WasmRefs, t: tf.Tensor): Float32Array {
  return b.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }) as Float32Array;
}

/**
 * Applies one update at learning rate `lr` and step `t` (1-based, for Adam's bias correction) in place. Returns the
 * global gradient norm, or undefined (having changed nothing) when the fused path does not apply.
 */
export function fusedApplyGradients(
  o: FusedOptimizerState,
  params: ParamMap,
  grads: Record<string, tf.Tensor>,
  lr: number,
  t: number,
): number | undefined {
  const b = wasmBackend();
  if (!b) return undefined;
  const m = o.config.method;
  const names = Object.keys(grads);
  const slotNames = m.kind === "adam" ? ["adam/m", "adam/v"] : ["sgd/momentum"];
  for (const name of names) {
    const p = params[name];
    if (!p) throw new Error(`gradient for unknown parameter ${name}`);
    const g = grads[name];
    const owned = [p, ...slotNames.map((s) => o.slots[`${s}/${name}`])];
    if (g.dtype !== "float32" || g.size !== p.size) return undefined;
    for (const x of owned) {
      if (x?.dtype !== "float32" || x.size !== p.size || b.refCount(x.dataId) !== 1) return undefined;
    }
  }
  const native = nativeModelKernels();
  const clip = o.config.clipNorm;
  // Without clipping, native Adam sums the squares in its own pass: no separate pass over the gradients.
  if (native && m.kind === "adam" && clip === undefined) {
    let squares = 0;
    const lrT = (lr * Math.sqrt(1 - m.beta2 ** t)) / (1 - m.beta1 ** t);
    for (const name of names) {
      const args = [
        view(b, params[name]),
        view(b, o.slots[`adam/m/${name}`]),
        view(b, o.slots[`adam/v/${name}`]),
        view(b, grads[name]),
        1,
        m.beta1,
        m.beta2,
        m.epsilon,
        lrT,
      ] as const;
      // A gather's gradient (the word table's) is zero outside the rows it scattered: only those are read.
      const sparse = scatteredRowsOf(grads[name].dataId);
      squares += sparse ? native.adamUpdate(...args, sparse.rows, sparse.width) : native.adamUpdate(...args);
      if (sparse) sparseUpdates++;
    }
    applied++;
    return Math.fround(Math.sqrt(squares));
  }
  // Global norm over the NaN-cleaned gradients.
  let squares = 0;
  for (const name of names) {
    const g = view(b, grads[name]);
    if (native) {
      squares += native.sumSquares(g);
      continue;
    }
    let s = 0;
    for (let i = 0; i < g.length; i++) {
      const x = g[i];
      if (!Number.isNaN(x)) s += x * x;
    }
    squares += s;
  }
  const norm = Math.fround(Math.sqrt(squares));
  const factor = clip === undefined ? 1 : Math.fround(clip / Math.max(norm, clip));
  if (m.kind === "adam") {
    const b1 = m.beta1;
    const b2 = m.beta2;
    const c1 = 1 - b1;
    const c2 = 1 - b2;
    const eps = m.epsilon;
    const lrT = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
    for (const name of names) {
      const g = view(b, grads[name]);
      const p = view(b, params[name]);
      const ms = view(b, o.slots[`adam/m/${name}`]);
      const vs = view(b, o.slots[`adam/v/${name}`]);
      if (native) {
        native.adamUpdate(p, ms, vs, g, factor, b1, b2, eps, lrT);
        continue;
      }
      // Double-precision intermediates, rounded to float32 on store (within an ulp of tfjs's float32 kernels).
      for (let i = 0; i < g.length; i++) {
        let x = g[i];
        if (Number.isNaN(x)) x = 0;
        x *= factor;
        const mi = ms[i] * b1 + x * c1;
        const vi = vs[i] * b2 + x * x * c2;
        ms[i] = mi;
        vs[i] = vi;
        p[i] -= (mi / (Math.sqrt(vi) + eps)) * lrT;
      }
    }
  } else {
    const mu = m.momentum;
    for (const name of names) {
      const g = view(b, grads[name]);
      const p = view(b, params[name]);
      const u = view(b, o.slots[`sgd/momentum/${name}`]);
      for (let i = 0; i < g.length; i++) {
        let x = g[i];
        if (Number.isNaN(x)) x = 0;
        x *= factor;
        const ui = Math.fround(u[i] * mu - x * lr);
        u[i] = ui;
        p[i] += ui;
      }
    }
  }
  applied++;
  return norm;
}

/**
 * BatchNorm moving statistics in place (moving = momentum * moving + (1 - momentum) * batch, in float32 as the
 * composed ops round it): ~18 tiny kernels a step otherwise. Returns false, having changed nothing, when the fused
 * path does not apply (not wasm, a statistic shared or of another size).
 */
export function fusedMovingAverages(
  state: ParamMap,
  stats: { name: string; mean: tf.Tensor; variance: tf.Tensor }[],
  momentum: number,
): boolean {
  const b = wasmBackend();
  if (!b) return false;
  const pairs = stats.flatMap((s) => [
    [state[`${s.name}/moving_mean`], s.mean],
    [state[`${s.name}/moving_variance`], s.variance],
  ]);
  for (const [moving, batch] of pairs) {
    if (moving?.dtype !== "float32" || batch.dtype !== "float32" || moving.size !== batch.size) return false;
    if (b.refCount(moving.dataId) !== 1) return false;
  }
  const keep = Math.fround(momentum);
  const take = Math.fround(1 - momentum);
  for (const [moving, batch] of pairs) {
    const m = view(b, moving);
    const x = view(b, batch);
    for (let i = 0; i < m.length; i++) m[i] = Math.fround(m[i] * keep) + Math.fround(x[i] * take);
  }
  return true;
}
