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
 * Resizes a positional table [n, d] -> [m, d] as the reference does: per column, a cubic spline through the points
 * (i / n, row i), i < n (not-a-knot ends, as scipy's interp1d(kind="cubic")), read at j / m, j < m; a point past the
 * last knot follows the last piece. m = n gives the table back unchanged; n < 4 fits the polynomial through the
 * points (a line, a parabola).
 */
export function resizeRowsCubic(rows: Float32Array, n: number, d: number, m: number): Float32Array {
  if (m === n) return rows.slice();
  const h = 1 / n;
  // Second derivatives at the knots, per column: A M = r, the same A for every column.
  const second = new Float64Array(n * d);
  if (n >= 4) {
    const a = Array.from({ length: n }, () => new Float64Array(n));
    const rhs = Array.from({ length: n }, () => new Float64Array(d));
    a[0][0] = 1;
    a[0][1] = -2;
    a[0][2] = 1; // not-a-knot: the third derivative is continuous at knot 1
    a[n - 1][n - 3] = 1;
    a[n - 1][n - 2] = -2;
    a[n - 1][n - 1] = 1; // and at knot n - 2
    for (let i = 1; i < n - 1; i++) {
      a[i][i - 1] = 1;
      a[i][i] = 4;
      a[i][i + 1] = 1;
      for (let c = 0; c < d; c++)
        rhs[i][c] = (6 * (rows[(i + 1) * d + c] - 2 * rows[i * d + c] + rows[(i - 1) * d + c])) / (h * h);
    }
    // Gaussian elimination with partial pivoting (n is a table length: tens).
    for (let col = 0; col < n; col++) {
      let pivot = col;
      for (let r = col + 1; r < n; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
      [a[col], a[pivot]] = [a[pivot], a[col]];
      [rhs[col], rhs[pivot]] = [rhs[pivot], rhs[col]];
      for (let r = col + 1; r < n; r++) {
        const f = a[r][col] / a[col][col];
        if (f === 0) continue;
        for (let k = col; k < n; k++) a[r][k] -= f * a[col][k];
        for (let c = 0; c < d; c++) rhs[r][c] -= f * rhs[col][c];
      }
    }
    for (let r = n - 1; r >= 0; r--) {
      for (let c = 0; c < d; c++) {
        let v = rhs[r][c];
        for (let k = r + 1; k < n; k++) v -= a[r][k] * second[k * d + c];
        second[r * d + c] = v / a[r][r];
      }
    }
  } else if (n === 3) {
    for (let c = 0; c < d; c++) {
      const curvature = (rows[2 * d + c] - 2 * rows[d + c] + rows[c]) / (h * h);
      for (let i = 0; i < 3; i++) second[i * d + c] = curvature;
    }
  }
  const out = new Float32Array(m * d);
  for (let j = 0; j < m; j++) {
    const x = j / m;
    const k = Math.max(0, Math.min(n - 2, Math.floor(x / h)));
    const t = x - k * h;
    for (let c = 0; c < d; c++) {
      if (n === 1) {
        out[j * d + c] = rows[c];
        continue;
      }
      const [y0, y1] = [rows[k * d + c], rows[(k + 1) * d + c]];
      const [m0, m1] = [second[k * d + c], second[(k + 1) * d + c]];
      const slope = (y1 - y0) / h - (h * (2 * m0 + m1)) / 6;
      out[j * d + c] = y0 + slope * t + (m0 / 2) * t * t + ((m1 - m0) / (6 * h)) * t * t * t;
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
