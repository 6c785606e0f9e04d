/**
 * Chooses the TensorFlow.js engine: @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node (both optional, loaded
 * by dynamic import only if installed), then WebAssembly, then the plain JavaScript cpu backend.
 *
 * On wasm the fast kernels (model/fast/index.ts: native matrix products) are installed unless turned off with
 * `fastKernels: false` or VATT_FAST_KERNELS=0; when they cannot load, the stock kernels stay and the reason is
 * reported in `BackendInfo.fast`.
 */
import { createRequire } from "node:module";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  disableFastKernels,
  enableFastKernels,
  type FastKernelsInfo,
  fastKernelsFromEnv,
} from "./fast/index.js";

export { threadGovernorFor } from "./fast/index.js";

export const BACKEND_CHOICES = ["auto", "node-gpu", "node", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendInfo {
  /** What was asked for. */
  requested: BackendChoice;
  /** The choice that succeeded. */
  choice: Exclude<BackendChoice, "auto">;
  /** tf.getBackend() afterwards ("tensorflow" for the node bindings). */
  name: string;
  /** Why earlier candidates were passed over, one line each. */
  skipped: string[];
  /** The fast kernels' state (wasm only; otherwise disabled with a reason). */
  fast: FastKernelsInfo;
}

export interface BackendOptions {
  /** Install the fast wasm kernels (default: on unless VATT_FAST_KERNELS=0). */
  fastKernels?: boolean;
  /** Native threads of the fast kernels (default: VATT_THREADS, else model/fast/index.ts's `fastThreads`). */
  threads?: number;
}

/** Absolute folder (with trailing separator) holding the .wasm binaries of @tensorflow/tfjs-backend-wasm. */
export function wasmBinaryFolder(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")) + path.sep;
}

async function tryNodeBindings(pkg: string): Promise<void> {
  // A computed specifier keeps TypeScript from requiring the optional package at compile time.
  const specifier: string = pkg;
  await import(specifier);
  if (!(await tf.setBackend("tensorflow"))) throw new Error("backend 'tensorflow' did not initialise");
}

async function tryWasm(): Promise<void> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  // In Node the binaries are read from disk, so the prefix is a file path into the installed package.
  wasm.setWasmPaths(wasmBinaryFolder());
  if (!(await tf.setBackend("wasm"))) throw new Error("backend 'wasm' did not initialise");
}

async function tryCpu(): Promise<void> {
  if (!(await tf.setBackend("cpu"))) throw new Error("backend 'cpu' did not initialise");
}

const ATTEMPTS: Record<Exclude<BackendChoice, "auto">, () => Promise<void>> = {
  "node-gpu": () => tryNodeBindings("@tensorflow/tfjs-node-gpu"),
  node: () => tryNodeBindings("@tensorflow/tfjs-node"),
  wasm: tryWasm,
  cpu: tryCpu,
};

/**
 * Selects and initialises a backend. `auto` walks node-gpu, node, wasm, cpu; any other choice is used alone and
 * throws with the reason when it cannot start.
 */
export async function selectBackend(
  requested: BackendChoice = "auto",
  opts: BackendOptions = {},
): Promise<BackendInfo> {
  const order: Exclude<BackendChoice, "auto">[] =
    requested === "auto" ? ["node-gpu", "node", "wasm", "cpu"] : [requested];
  const skipped: string[] = [];
  for (const choice of order) {
    try {
      await ATTEMPTS[choice]();
      await tf.ready();
      return { requested, choice, name: tf.getBackend(), skipped, fast: fastKernelsFor(choice, opts) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // An optional engine that is simply not installed is the common case: say so in two words.
      const reason = e.code === "ERR_MODULE_NOT_FOUND" ? "not installed" : e.message.split("\n")[0];
      skipped.push(`${choice}: ${reason}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start (${skipped.join("; ")})`);
}

function fastKernelsFor(choice: Exclude<BackendChoice, "auto">, opts: BackendOptions): FastKernelsInfo {
  const wanted = opts.fastKernels ?? fastKernelsFromEnv();
  if (choice === "wasm" && wanted) return enableFastKernels({ threads: opts.threads });
  // Kernels are registered per backend name; turning them off keeps a later wasm choice stock.
  if (!wanted) disableFastKernels();
  const reason = wanted ? `fast kernels are for the wasm backend, not ${choice}` : "turned off";
  return { enabled: false, fusedOptimizer: false, engine: "stock", threads: 1, kernels: [], reason };
}

export function isBackendChoice(x: string): x is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(x);
}
