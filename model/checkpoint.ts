/**
 * Checkpoints: every weight, the BatchNorm state and the optimiser slots in one safetensors file, beside a JSON file
 * with the model config, optimiser config and step. Both are written atomically (temporary file + rename), the
 * JSON first, so a reader that sees the .safetensors file also sees its JSON.
 *
 * Loading into a model whose input grid differs (e.g. 224 -> 320 pixels: 14 -> 20 positions per axis) resizes the
 * positional tables by cubic interpolation along the position axis.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "./config.js";
import type { Optimizer, OptimizerConfig } from "./optim.js";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "./safetensors.js";
import type { VattModel } from "./vatt.js";

const PARAM = "param/";
const STATE = "state/";
const SLOT = "optimizer/";

export interface CheckpointInfo {
  format: "vatt-checkpoint";
  version: 1;
  config: ModelConfig;
  optimizer?: { config: OptimizerConfig; step: number };
  /** Anything the caller wants to keep (run step, epoch, data position). */
  extra: Record<string, unknown>;
}

/** The JSON file beside a checkpoint: "x.safetensors" -> "x.json". */
export function checkpointJsonPath(file: string): string {
  return file.replace(/\.safetensors$/, "") + ".json";
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

function snapshot(prefix: string, vars: Record<string, tf.Variable>, into: Record<string, SafeTensor>): void {
  for (const [name, v] of Object.entries(vars)) {
    into[prefix + name] = { dtype: "F32", shape: v.shape.slice(), data: v.dataSync() as Float32Array };
  }
}

/** Writes `file` (.safetensors) and its .json. */
export async function saveCheckpoint(
  file: string,
  model: VattModel,
  optimizer?: Optimizer,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const tensors: Record<string, SafeTensor> = {};
  snapshot(PARAM, model.params, tensors);
  snapshot(STATE, model.state, tensors);
  if (optimizer) snapshot(SLOT, optimizer.slots, tensors);
  const info: CheckpointInfo = {
    format: "vatt-checkpoint",
    version: 1,
    config: model.config,
    optimizer: optimizer ? { config: optimizer.config, step: optimizer.step } : undefined,
    extra,
  };
  const metadata: Record<string, string> = {
    format: "vatt-checkpoint",
    preset: model.config.preset,
    step: String(optimizer?.step ?? 0),
  };
  await mkdir(path.dirname(file), { recursive: true });
  await writeAtomic(checkpointJsonPath(file), `${JSON.stringify(info, null, 2)}\n`);
  await writeAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads and checks the JSON beside `file`; a damaged one is an Error naming it. */
export async function readCheckpointInfo(file: string): Promise<CheckpointInfo> {
  const json = checkpointJsonPath(file);
  let info: Partial<CheckpointInfo> | null;
  try {
    info = JSON.parse(await readFile(json, "utf8"));
  } catch (err) {
    throw new Error(
      `${json}: not a readable checkpoint JSON (${(err as Error).message}); save the checkpoint again`,
    );
  }
  const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
  const optimizer = isObject(info) ? info?.optimizer : undefined;
  if (
    !isObject(info) ||
    info?.format !== "vatt-checkpoint" ||
    info.version !== 1 ||
    !isObject(info.config) ||
    (info.extra !== undefined && !isObject(info.extra)) ||
    (optimizer !== undefined &&
      (!isObject(optimizer) ||
        !isObject(optimizer.config) ||
        !Number.isSafeInteger(optimizer.step) ||
        optimizer.step < 0))
  ) {
    throw new Error(
      `${json}: not a version 1 vatt checkpoint JSON (format, version, config, optimizer step); save the checkpoint again`,
    );
  }
  return { ...info, extra: info.extra ?? {} } as CheckpointInfo;
}

/**
 * Keys' cubic convolution (a = -0.5) resampling of rows: [n, d] -> [m, d], sampling at the centres of m equal
 * cells over the n old cells, edges clamped. m = n gives the table back unchanged.
 */
export function resizeRowsCubic(rows: Float32Array, n: number, d: number, m: number): Float32Array {
  if (m === n) return rows.slice();
  const out = new Float32Array(m * d);
  const weight = (x: number): number => {
    const a = -0.5;
    const t = Math.abs(x);
    if (t <= 1) return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1;
    if (t < 2) return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a;
    return 0;
  };
  for (let j = 0; j < m; j++) {
    const x = ((j + 0.5) * n) / m - 0.5;
    const base = Math.floor(x);
    for (let k = -1; k <= 2; k++) {
      const src = Math.min(n - 1, Math.max(0, base + k));
      const w = weight(x - (base + k));
      if (w === 0) continue;
      for (let c = 0; c < d; c++) out[j * d + c] += w * rows[src * d + c];
    }
  }
  return out;
}

function isPositionalTable(name: string): boolean {
  return /\/pos\/(temporal|vertical|horizontal)$/.test(name);
}

function assignInto(
  vars: Record<string, tf.Variable>,
  prefix: string,
  tensors: Record<string, SafeTensor>,
  what: string,
): void {
  for (const [name, v] of Object.entries(vars)) {
    const t = tensors[prefix + name];
    if (!t) throw new Error(`checkpoint lacks ${what} ${name}`);
    let data = t.data as Float32Array;
    const same = t.shape.length === v.shape.length && t.shape.every((s, i) => s === v.shape[i]);
    if (!same) {
      const resizable = isPositionalTable(name) && t.shape.length === 2 && t.shape[1] === v.shape[1];
      if (!resizable)
        throw new Error(`checkpoint ${what} ${name} has shape [${t.shape}], the model needs [${v.shape}]`);
      data = resizeRowsCubic(data, t.shape[0], t.shape[1], v.shape[0] as number);
    }
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

/**
 * Loads weights and state into `model` (built with the config to use, e.g. a new input grid) and, if given and
 * present in the file, the optimiser slots and step. Returns the checkpoint's JSON.
 */
export async function loadCheckpoint(
  file: string,
  model: VattModel,
  optimizer?: Optimizer,
): Promise<CheckpointInfo> {
  const info = await readCheckpointInfo(file);
  const { tensors } = decodeSafetensors(new Uint8Array(await readFile(file)), file);
  assignInto(model.params, PARAM, tensors, "parameter");
  assignInto(model.state, STATE, tensors, "state");
  if (optimizer && info.optimizer) {
    assignInto(optimizer.slots, SLOT, tensors, "optimizer slot");
    optimizer.step = info.optimizer.step;
  }
  return info;
}
