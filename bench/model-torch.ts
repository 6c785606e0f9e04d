/**
 * The model bench's comparisons with what a user would pick instead: PyTorch on the same CPU (bench/torch_model.py
 * under /usr/bin/python3, Debian's python3-torch; skipped with a note when it is absent), its BLAS pinned to our
 * thread count before torch loads, and the raw GEMMs of the machine (ours in native/sgemm.c, ONNX Runtime's MLAS,
 * PyTorch's BLAS) on 1024^3 and the shapes the steps use. Also the BBS-size video backbone forward on our side.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../core/random.js";
import { presetConfig, SIZES, voxelSize } from "../model/config.js";
import { gemmPolicyFromEnv, ownWins, withOwnSgemm } from "../model/fast/native-gemm.js";
import { loadOnnxGemm } from "../model/fast/onnx-gemm.js";
import { ParamBuilder } from "../model/params.js";
import {
  allVideoTokens,
  buildTokenizer,
  VIDEO_TABLES,
  videoPatches,
  videoTableSizes,
} from "../model/tokens.js";
import { buildEncoder } from "../model/transformer.js";
import { videoBackbone } from "../model/vatt.js";
import { nativeSgemm } from "../native/kernels.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../../bench/torch_model.py", import.meta.url));

export interface TorchRun {
  ms?: number[];
  gflops?: Record<string, number>;
  torch?: string;
  torchThreads?: number;
  blasThreads?: number | null;
  /** The BLAS library files the PyTorch process mapped (Debian: the reference BLAS unless OpenBLAS is installed). */
  blas?: string | null;
}

/** The environment that pins PyTorch and its BLAS to `threads` before torch loads. */
function pinnedEnv(threads: number): NodeJS.ProcessEnv {
  const n = String(threads);
  return { ...process.env, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n };
}

/** Whether /usr/bin/python3 has torch: undefined when it does, else why the PyTorch side is skipped. */
export function torchUnavailable(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  if (!existsSync(SCRIPT)) return `${SCRIPT} not found`;
  const r = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8", timeout: 120_000 });
  return r.status === 0 ? undefined : `${PYTHON} has no torch (apt-get install python3-torch)`;
}

/** One run of bench/torch_model.py: `case` with `rounds` timed repetitions on `threads` threads. */
export function runTorch(kind: string, rounds: number, threads: number): TorchRun {
  const r = spawnSync(PYTHON, [SCRIPT, kind, String(rounds)], {
    encoding: "utf8",
    env: pinnedEnv(threads),
    timeout: 600_000,
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) {
    throw new Error(
      `bench/torch_model.py ${kind} failed (${r.status ?? r.signal}): ${r.stderr.trim().slice(-400)}`,
    );
  }
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as TorchRun;
}

/** (m, k, n, transA, transB) named as bench/torch_model.py names them. */
export const GEMM_SHAPES: [string, number, number, number, boolean, boolean][] = [
  ["1024^3", 1024, 1024, 1024, false, false],
  ["1024x256x256", 1024, 256, 256, false, false],
  ["1024x256x1024", 1024, 256, 1024, false, false],
  ["1024x1024x256", 1024, 1024, 256, false, false],
  ["1024x1024x256 B^T", 1024, 1024, 256, false, true],
  ["256x1024x1024 A^T", 256, 1024, 1024, true, false],
  ["1569x768x3072", 1569, 768, 3072, false, false],
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One shape's GFLOP/s per engine, the best of the machine among them, and what the fast path's own dispatch got. */
export interface GemmShape {
  ours?: number;
  mlas?: number;
  torch?: number;
  best: number;
  bestEngine: string;
  /** The products as the training step runs them: VATT_GEMM's policy picking ours or MLAS for this shape. */
  vatt?: number;
  vattEngine?: string;
}

/**
 * GFLOP/s per shape of our SGEMM, MLAS and the fast path's dispatch between them (same process, alternating product
 * by product, medians), and of PyTorch's BLAS (one run of the script between two halves of ours, so all see the
 * same minutes). The dispatch is timed on its own, not read off the engine it picks: it is what a step gets.
 */
export function gemmShapes(threads: number, torch: boolean): Record<string, GemmShape> {
  const own = nativeSgemm();
  const ort = loadOnnxGemm(threads).gemm;
  const dispatch = ort ? withOwnSgemm(ort, gemmPolicyFromEnv()) : undefined;
  const result: Record<string, GemmShape> = {};
  const times: Record<string, { ours: number[]; mlas: number[]; vatt: number[] }> = {};
  const pass = (): void => {
    for (const [name, m, k, n, ta, tb] of GEMM_SHAPES) {
      const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
      const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
      const da = ta ? [k, m] : [m, k];
      const db = tb ? [n, k] : [k, n];
      const out = new Float32Array(m * n);
      const reps = Math.max(3, Math.min(20, Math.round(1e9 / (2 * m * n * k))));
      times[name] ??= { ours: [], mlas: [], vatt: [] };
      const t = times[name];
      for (let r = -1; r < reps; r++) {
        let t0 = performance.now();
        own?.sgemm(a, da, b, db, ta, tb, out, [m, n], threads);
        if (r >= 0 && own) t.ours.push(performance.now() - t0);
        t0 = performance.now();
        ort?.matmul(a, da, b, db, ta, tb, out, [m, n]);
        if (r >= 0 && ort) t.mlas.push(performance.now() - t0);
        t0 = performance.now();
        dispatch?.matmul(a, da, b, db, ta, tb, out, [m, n]);
        if (r >= 0 && dispatch) t.vatt.push(performance.now() - t0);
      }
    }
  };
  pass();
  const fromTorch = torch ? runTorch("gemm", 0, threads).gflops : undefined;
  pass();
  ort?.dispose();
  const policy = gemmPolicyFromEnv();
  for (const [name, m, k, n, ta, tb] of GEMM_SHAPES) {
    const g = (ms: number[]): number | undefined =>
      ms.length ? Number(((2 * m * n * k) / (median(ms) / 1e3) / 1e9).toFixed(1)) : undefined;
    const entry = { ours: g(times[name].ours), mlas: g(times[name].mlas), torch: fromTorch?.[name] };
    const [bestEngine, best] = Object.entries(entry)
      .filter((e): e is [string, number] => e[1] !== undefined)
      .reduce((x, y) => (y[1] > x[1] ? y : x), ["none", 0]);
    const picksOurs =
      own && (policy === "own" || (policy === "auto" && ownWins(m, n, k, ta, tb, own.sgemmKernel())));
    result[name] = {
      ...entry,
      best,
      bestEngine,
      vatt: g(times[name].vatt),
      vattEngine: dispatch ? (picksOurs ? "ours" : "mlas") : undefined,
    };
  }
  return result;
}

/** The BBS video backbone (ViT-Base, 32x224x224 clip, 1568 + 1 tokens), inference on one clip: a forward and FLOPs. */
export function bbsForwardCase(): { forward: () => void; flops: number; dispose: () => void } {
  const base = presetConfig("BBS");
  if (!base) throw new Error("BBS preset missing");
  const g = base.videoGeometry;
  const b = new ParamBuilder(randomForRun(0, "bench/bbs"));
  buildTokenizer(b, "video", voxelSize(g), VIDEO_TABLES, videoTableSizes(g), base.video.hidden);
  buildEncoder(b, "video", SIZES.base);
  const model = { config: base, params: b.params, state: b.state };
  const rng = randomForRun(1, "bench/bbs-input");
  const video = Float32Array.from({ length: g.frames * g.height * g.width * 3 }, () => rng.uniform(-1, 1));
  const tokens = allVideoTokens(g);
  const forward = (): void => {
    tf.tidy(() => {
      const patches = videoPatches(video, 1, g, tokens);
      videoBackbone(model, patches, { training: false, dropout: 0 }).dataSync();
    });
  };
  const n = tokens.length + 1;
  const d = base.video.hidden;
  const flops =
    2 * tokens.length * voxelSize(g) * d +
    base.video.layers * (2 * n * (4 * d * d + 2 * d * base.video.mlp) + 2 * n * n * d);
  const dispose = (): void => {
    for (const v of Object.values(b.params)) v.dispose();
    for (const v of Object.values(b.state)) v.dispose();
  };
  return { forward, flops, dispose };
}
