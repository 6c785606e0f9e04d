/**
 * Training step time on the fast path (wasm + native matrix kernels + fused optimiser, model/fast/index.ts) against the
 * stock wasm backend, measured in one run in alternating blocks of steps (other processes share the cores):
 *
 * - the tiny preset (DropToken 0), `ratio` = stock / fast, and on the fast path DropToken 0/25/50/75 %;
 * - a bigger case where matrix speed matters: one pre-LN Transformer block (attention + FFN), B=8, T=128, D=256,
 *   MLP 1024, 4 heads, variableGrads + Adam;
 * - a BBS-size video backbone forward (32x224x224, batch 1, inference);
 * - raw GEMM GFLOP/s on 1024^3 and the block's shapes of every engine here (ours, ONNX Runtime's MLAS, PyTorch's
 *   BLAS) and the stock wasm matmul's, and each step's achieved GFLOP/s with its fraction of the best 1024^3 figure;
 * - PyTorch on the CPU (bench/model-torch.ts) doing the same tiny step, block step and BBS forward, alternating with
 *   ours, pinned to the same thread count: `torchRatio` = PyTorch ms / ours ms.
 */
import * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../core/random.js";
import type { Batch } from "../core/records.js";
import { selectBackend } from "../model/backend.js";
import {
  audioTokens,
  keptTokens,
  type ModelConfig,
  presetConfig,
  videoTokens,
  voxelSize,
} from "../model/config.js";
import {
  disableFastKernels,
  enableFastKernels,
  type FastKernelsInfo,
  fastGemm,
} from "../model/fast/index.js";
import { encoderFlops } from "../model/info.js";
import {
  applyGradients,
  createOptimizer,
  disposeOptimizer,
  type Optimizer,
  pretrainingOptimizer,
} from "../model/optim.js";
import { ParamBuilder, type ParamMap } from "../model/params.js";
import { trainStep } from "../model/step.js";
import { buildEncoder, encoderBlock } from "../model/transformer.js";
import { createModel, disposeModel } from "../model/vatt.js";
import {
  bbsForwardCase,
  type GemmShape,
  gemmShapes,
  runTorch,
  type TorchRun,
  torchUnavailable,
} from "./model-torch.js";

const BATCH = 8;
const CAPTIONS = 2;
/** The DropToken rates' runs (fast path only): warm-up long enough to reach the steady state, then timed steps. */
const WARMUP_STEPS = 20;
const TIMED_STEPS = 10;
/**
 * Alternating blocks of the fast/stock comparisons: rounds, and each mode's untimed and timed steps per block. Five
 * rounds of the tiny step: its median over 40 fast steps moved less between runs than over 24 in three.
 */
const TINY_BLOCKS = { rounds: 5, fast: { settle: 20, timed: 8 }, stock: { settle: 2, timed: 3 } };
const BLOCK_BLOCKS = { rounds: 2, fast: { settle: 4, timed: 4 }, stock: { settle: 1, timed: 2 } };
/** PyTorch's timed steps per round (each round one process, after its own warm-up), and the BBS forward's rounds. */
const TORCH_STEPS = { tiny: 8, block: 4, bbs: 2 };
const BBS_ROUNDS = 2;

/**
 * FLOPs of one training step as executed: forward over the kept tokens (this implementation projects only kept
 * patches), backward counted as twice the forward.
 */
export function trainingStepFlops(c: ModelConfig, rate: number, batch: number, captions: number): number {
  const nv = keptTokens(videoTokens(c.videoGeometry), rate);
  const na = keptTokens(audioTokens(c.audioGeometry), rate);
  const words = c.textConfig.maxWords + 1;
  const video = 2 * nv * voxelSize(c.videoGeometry) * c.video.hidden + encoderFlops(c.video, nv + 1);
  const audio = 2 * na * c.audioGeometry.patch * c.audio.hidden + encoderFlops(c.audio, na + 1);
  const text = 2 * words * c.textConfig.embedDim * c.text.hidden + encoderFlops(c.text, words);
  return 3 * (batch * (video + audio) + batch * captions * text);
}

function benchBatch(c: ModelConfig): Batch {
  const rng = randomForRun(0, "bench/model");
  const g = c.videoGeometry;
  const video = Float32Array.from({ length: BATCH * g.frames * g.height * g.width * 3 }, () =>
    rng.uniform(-1, 1),
  );
  const audio = Float32Array.from({ length: BATCH * c.audioGeometry.samples }, () => rng.uniform(-1, 1));
  const words = c.textConfig.maxWords;
  const textIds = Int32Array.from({ length: BATCH * CAPTIONS * words }, (_, i) =>
    i % words < 10 ? 1 + rng.int(c.textConfig.vocabSize - 1) : 0,
  );
  return {
    size: BATCH,
    video,
    videoShape: [BATCH, g.frames, g.height, g.width, 3],
    audio,
    audioMask: new Float32Array(BATCH).fill(1),
    textIds,
    textMask: new Float32Array(BATCH * CAPTIONS).fill(1),
    labels: new Float32Array(0),
    sources: new Array(BATCH).fill("bench"),
    ids: Array.from({ length: BATCH }, (_, i) => `bench-${i}`),
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function timeMs(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** GFLOP/s of a square tf.matMul on the current backend and kernels. */
function matmulGflops(n: number, repeats: number): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const times: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    times.push(
      timeMs(() => {
        const c = tf.matMul(a, b);
        c.dataSync();
        c.dispose();
      }),
    );
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / (median(times.slice(1)) / 1e3) / 1e9;
}

/** GFLOP/s of the native GEMM alone on n^3 (no tfjs in the loop), best of the shapes a step uses. */
export function nativeGemmGflops(n: number, repeats: number): number | undefined {
  const g = fastGemm();
  if (!g) return undefined;
  const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const out = new Float32Array(n * n);
  const times: number[] = [];
  for (let i = 0; i <= repeats; i++)
    times.push(timeMs(() => g.matmul(a, [n, n], a, [n, n], false, false, out, [n, n])));
  return (2 * n ** 3) / (median(times.slice(1)) / 1e3) / 1e9;
}

/** The shape where the fast path's dispatch is furthest from the machine's best GEMM, and whether it makes 90 %. */
function gemmTarget(shapes: Record<string, GemmShape>): {
  worstShape: string;
  vattFraction: number;
  met: boolean;
} {
  const [worstShape, vattFraction] = Object.entries(shapes)
    .map(([name, v]): [string, number] => [name, v.vatt === undefined ? 0 : v.vatt / v.best])
    .reduce((x, y) => (y[1] < x[1] ? y : x));
  return { worstShape, vattFraction: round(vattFraction, 3), met: vattFraction >= 0.9 };
}

/** PyTorch's median ms and torchRatio (PyTorch ms / ours ms) for a case, when it ran. */
function torchFields(torchMs: number[], oursMs: number): { torchMs?: number; torchRatio?: number } {
  if (!torchMs.length) return {};
  const t = median(torchMs);
  return { torchMs: round(t, 1), torchRatio: round(t / oursMs) };
}

type Mode = "fast" | "stock";

/** Switches between the fast path and the stock wasm kernels (the model and optimiser state stay). */
function useMode(mode: Mode, threads: number | undefined): void {
  if (mode === "fast") enableFastKernels({ threads });
  else disableFastKernels();
}

/** Steps of one mode's block: untimed steps after the switch, then timed ones. */
interface Block {
  settle: number;
  timed: number;
}

/**
 * Median ms per step of `step` in both modes, measured in alternating blocks (fast, stock, fast, stock, ...) so load
 * from other processes falls on both alike. Each block first runs `settle` untimed steps in its mode: after a switch
 * (new kernels registered, the other mode's garbage on the heap) the fast path runs 20-30 % slower for ~15 steps,
 * every other step paying for garbage collection, which a training run that never switches does not see. Stock is
 * skipped (undefined) when the fast path is unavailable.
 */
function interleaved(
  step: () => void,
  fastOn: boolean,
  threads: number | undefined,
  plan: { rounds: number; fast: Block; stock: Block },
  /** Runs after each round (the PyTorch side of the same case). */
  afterRound?: () => void,
): { fast: number; stock?: number } {
  const modes: Mode[] = fastOn ? ["fast", "stock"] : ["stock"];
  const times: Record<Mode, number[]> = { fast: [], stock: [] };
  for (let r = 0; r < plan.rounds; r++) {
    for (const mode of modes) {
      useMode(mode, threads);
      const block = fastOn ? plan[mode] : plan.fast;
      for (let i = 0; i < block.settle; i++) step();
      for (let i = 0; i < block.timed; i++) times[mode].push(timeMs(step));
    }
    afterRound?.();
  }
  if (fastOn) useMode("fast", threads);
  return fastOn ? { fast: median(times.fast), stock: median(times.stock) } : { fast: median(times.stock) };
}

/** The block case: sizes, FLOPs, and a training step (forward, backward, Adam) over fixed inputs. */
const BLOCK = { batch: 8, tokens: 128, hidden: 256, mlp: 1024, heads: 4 };

function blockCase(): { step: () => void; flops: number; dispose: () => void } {
  const size = { name: "block", layers: 1, hidden: BLOCK.hidden, mlp: BLOCK.mlp, heads: BLOCK.heads };
  const b = new ParamBuilder(randomForRun(0, "bench/block"));
  buildEncoder(b, "block", size);
  const params: ParamMap = b.params;
  const names = Object.keys(params).filter((n) => n.startsWith("block/layer_0/"));
  const vars = names.map((n) => params[n]);
  const opt: Optimizer = createOptimizer(
    pretrainingOptimizer({ lr: 1e-4, warmupSteps: 10, totalSteps: 1000 }),
    Object.fromEntries(names.map((n) => [n, params[n]])),
  );
  const rng = randomForRun(1, "bench/block-input");
  const x = tf.tensor3d(
    Float32Array.from({ length: BLOCK.batch * BLOCK.tokens * BLOCK.hidden }, () => rng.uniform(-1, 1)),
    [BLOCK.batch, BLOCK.tokens, BLOCK.hidden],
  );
  const step = (): void => {
    const { value, grads } = tf.variableGrads(() => {
      const y = encoderBlock(params, "block/layer_0", size, x, 1e-6, { training: false, dropout: 0 });
      return tf.mean(tf.square(y)) as tf.Scalar;
    }, vars);
    value.dataSync();
    const byName: Record<string, tf.Tensor> = {};
    names.forEach((n, i) => {
      byName[n] = grads[vars[i].name];
    });
    applyGradients(opt, params, byName);
    value.dispose();
    tf.dispose(Object.values(grads));
  };
  const flops = 3 * BLOCK.batch * encoderFlops(size, BLOCK.tokens);
  const dispose = (): void => {
    disposeOptimizer(opt);
    for (const v of Object.values(params)) v.dispose();
    for (const v of Object.values(b.state)) v.dispose();
    x.dispose();
  };
  return { step, flops, dispose };
}

export async function benchModel(opts: { json: boolean }): Promise<Record<string, unknown>> {
  const note = (s: string): void => {
    if (opts.json) console.error(s);
    else console.log(s);
  };
  const threads = process.env.VATT_THREADS ? Number(process.env.VATT_THREADS) : undefined;
  const backend = await selectBackend("wasm", { fastKernels: true, threads });
  const fast: FastKernelsInfo = backend.fast;
  // Without the native library the fast path is the fused optimiser alone; without either, stock alone is timed.
  const fastOn = fast.enabled || fast.fusedOptimizer;
  if (!fast.enabled) note(`native kernels unavailable (${fast.reason})`);
  const base = presetConfig("tiny");
  if (!base) throw new Error("tiny preset missing");

  const torchThreads = fast.enabled ? fast.threads : 1;
  const noTorch = torchUnavailable();
  if (noTorch) note(`PyTorch side skipped: ${noTorch}`);
  /** The PyTorch side of a case: timed ms over rounds, and the threads it reported. */
  const torchSide = { tiny: [] as number[], block: [] as number[], bbs: [] as number[] };
  let torchInfo: TorchRun | undefined;
  const torchRound = (kind: keyof typeof torchSide) =>
    noTorch
      ? undefined
      : () => {
          const r = runTorch(kind, TORCH_STEPS[kind], torchThreads);
          torchInfo ??= r;
          torchSide[kind].push(...(r.ms ?? []));
        };

  // Raw matrix speed: every engine on 1024^3 and the block's shapes, and the stock wasm matmul.
  const shapes = fast.enabled ? gemmShapes(fast.threads, !noTorch) : undefined;
  const gemm = shapes?.["1024^3"];
  disableFastKernels();
  const stockMatmul = matmulGflops(1024, 4);
  if (fastOn) enableFastKernels({ threads });
  const gemmGflops = gemm?.best ?? stockMatmul;
  note(
    `GEMM 1024^3 on ${torchThreads} thread(s): ${gemm ? `ours ${gemm.ours}, MLAS ${gemm.mlas}, PyTorch ${gemm.torch ?? "-"} GFLOP/s, ` : ""}` +
      `stock wasm ${stockMatmul.toFixed(1)} GFLOP/s`,
  );

  // Tiny preset, DropToken 0: fast vs stock on one model, interleaved.
  const c0: ModelConfig = { ...base, dropTokenRate: 0 };
  const model = createModel(c0, 0);
  const opt = createOptimizer(
    pretrainingOptimizer({ lr: 1e-4, warmupSteps: 10, totalSteps: 1000 }),
    model.params,
  );
  const batch = benchBatch(c0);
  const tinyTimes = interleaved(
    () => trainStep(model, opt, batch, { seed: 0 }),
    fastOn,
    threads,
    TINY_BLOCKS,
    torchRound("tiny"),
  );
  disposeOptimizer(opt);
  disposeModel(model);
  const tinyFlops = trainingStepFlops(c0, 0, BATCH, CAPTIONS);
  const tiny = {
    preset: "tiny",
    batch: BATCH,
    captions: CAPTIONS,
    vocabSize: base.textConfig.vocabSize,
    video: `${base.videoGeometry.frames}x${base.videoGeometry.height}x${base.videoGeometry.width}`,
    audioSamples: base.audioGeometry.samples,
    gflopPerStep: round(tinyFlops / 1e9, 3),
    fastMsPerStep: round(tinyTimes.fast, 1),
    stockMsPerStep: tinyTimes.stock === undefined ? null : round(tinyTimes.stock, 1),
    ratio: tinyTimes.stock === undefined ? null : round(tinyTimes.stock / tinyTimes.fast),
    gflops: round(tinyFlops / 1e9 / (tinyTimes.fast / 1e3)),
    gemmFraction: round(tinyFlops / 1e9 / (tinyTimes.fast / 1e3) / gemmGflops, 3),
    ...torchFields(torchSide.tiny, tinyTimes.fast),
  };
  note(`tiny: fast ${tiny.fastMsPerStep} ms/step, stock ${tiny.stockMsPerStep} ms/step, ratio ${tiny.ratio}`);

  // DropToken rates on the fast path.
  const rates: { dropRate: number; msPerStep: number; gflopPerStep: number; gflops: number }[] = [];
  for (const rate of [0, 0.25, 0.5, 0.75]) {
    const c: ModelConfig = { ...base, dropTokenRate: rate };
    const m = createModel(c, 0);
    const o = createOptimizer(
      pretrainingOptimizer({ lr: 1e-4, warmupSteps: 10, totalSteps: 1000 }),
      m.params,
    );
    const bb = benchBatch(c);
    for (let i = 0; i < WARMUP_STEPS; i++) trainStep(m, o, bb, { seed: 0 });
    const times: number[] = [];
    for (let i = 0; i < TIMED_STEPS; i++) times.push(timeMs(() => trainStep(m, o, bb, { seed: 0 })));
    const msPerStep = median(times);
    const flops = trainingStepFlops(c, rate, BATCH, CAPTIONS);
    rates.push({
      dropRate: rate,
      msPerStep: round(msPerStep, 1),
      gflopPerStep: round(flops / 1e9, 3),
      gflops: round(flops / 1e9 / (msPerStep / 1e3)),
    });
    disposeOptimizer(o);
    disposeModel(m);
  }

  // The bigger case: one Transformer block at sizes where matrix speed decides.
  const block = blockCase();
  const blockTimes = interleaved(block.step, fastOn, threads, BLOCK_BLOCKS, torchRound("block"));
  block.dispose();
  const blockResult = {
    config: `one pre-LN Transformer block (attention + FFN), B=${BLOCK.batch}, T=${BLOCK.tokens}, D=${BLOCK.hidden}, MLP ${BLOCK.mlp}, ${BLOCK.heads} heads, variableGrads + Adam`,
    gflopPerStep: round(block.flops / 1e9, 3),
    fastMsPerStep: round(blockTimes.fast, 1),
    stockMsPerStep: blockTimes.stock === undefined ? null : round(blockTimes.stock, 1),
    ratio: blockTimes.stock === undefined ? null : round(blockTimes.stock / blockTimes.fast),
    gflops: round(block.flops / 1e9 / (blockTimes.fast / 1e3)),
    gemmFraction: round(block.flops / 1e9 / (blockTimes.fast / 1e3) / gemmGflops, 3),
    ...torchFields(torchSide.block, blockTimes.fast),
  };
  note(
    `block: fast ${blockResult.fastMsPerStep} ms/step (${blockResult.gflops} GFLOP/s, ` +
      `${(100 * blockResult.gemmFraction).toFixed(0)} % of GEMM), stock ${blockResult.stockMsPerStep} ms/step, ` +
      `ratio ${blockResult.ratio}`,
  );

  // A BBS-size video backbone forward, inference, fast path only, alternating with PyTorch's.
  const bbs = bbsForwardCase();
  const bbsTimes: number[] = [];
  const bbsTorch = torchRound("bbs");
  bbs.forward();
  for (let r = 0; r < BBS_ROUNDS; r++) {
    bbsTimes.push(timeMs(bbs.forward));
    bbsTorch?.();
  }
  bbs.dispose();
  const bbsMs = median(bbsTimes);
  const bbsResult = {
    config:
      "BBS video backbone (12 layers, D=768, MLP 3072), 32x224x224 clip, 1568 + 1 tokens, batch 1, inference",
    gflopPerForward: round(bbs.flops / 1e9, 1),
    msPerForward: round(bbsMs, 0),
    gflops: round(bbs.flops / 1e9 / (bbsMs / 1e3)),
    gemmFraction: round(bbs.flops / 1e9 / (bbsMs / 1e3) / gemmGflops, 3),
    ...torchFields(torchSide.bbs, bbsMs),
  };
  note(`BBS forward: ${bbsResult.msPerForward} ms, PyTorch ${bbsResult.torchMs ?? "-"} ms`);

  return {
    name: "model",
    backend: backend.name,
    fast,
    threads: fast.enabled ? fast.threads : 1,
    /** tiny preset: stock ms/step / fast ms/step */
    ratio: tiny.ratio,
    fastMsPerStep: tiny.fastMsPerStep,
    stockMsPerStep: tiny.stockMsPerStep,
    stepGflops: tiny.gflops,
    gemmGflops: round(gemmGflops),
    gemmEngine: gemm === undefined ? "wasm (stock)" : `best of the machine: ${gemm.bestEngine}`,
    /** GFLOP/s per shape: ours (native/sgemm.c), MLAS (onnxruntime), PyTorch's BLAS; fractions of the best. */
    gemmShapes: shapes
      ? Object.fromEntries(
          Object.entries(shapes).map(([k, v]) => [
            k,
            {
              ...v,
              oursFraction: v.ours === undefined ? null : round(v.ours / v.best, 3),
              vattFraction: v.vatt === undefined ? null : round(v.vatt / v.best, 3),
            },
          ]),
        )
      : null,
    /** Issue 21's target: the fast path's products at >= 90 % of the machine's best GEMM on every shape above. */
    gemmTarget: shapes ? gemmTarget(shapes) : null,
    torch: noTorch
      ? { skipped: noTorch }
      : {
          version: torchInfo?.torch,
          threadsPinned: torchThreads,
          torchThreads: torchInfo?.torchThreads,
          blasThreads: torchInfo?.blasThreads,
          blas: torchInfo?.blas,
        },
    stockMatmulGflops: round(stockMatmul),
    tiny: { ...tiny, rates },
    block: blockResult,
    bbsForward: bbsResult,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}
