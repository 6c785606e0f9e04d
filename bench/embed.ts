/**
 * `npm run bench -- embed`: the forward pass that feature extraction, linear evaluation, retrieval and indexing run
 * (inference: every token, no tape, nothing kept for a backward pass), on the paper's video backbone at its input:
 * BBS's Base video backbone with its heads at 32x224x224 (1568 + 1 tokens), one clip a call. Its achieved GFLOP/s
 * (model/info.ts's count) is compared with the GEMM measured in the same run on 1024^3 (`gemmFraction`).
 */
import { randomForRun } from "../core/random.js";
import { selectBackend } from "../model/backend.js";
import { presetConfig } from "../model/config.js";
import { fastKernelsInfo } from "../model/fast/index.js";
import { inferenceFlops } from "../model/info.js";
import { embed } from "../model/step.js";
import { createModel, disposeModel } from "../model/vatt.js";
import { median, nativeGemmGflops } from "./model.js";

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

export async function benchEmbed(opts: { json: boolean; clips?: number }): Promise<Record<string, unknown>> {
  const backend = await selectBackend("auto");
  const c = presetConfig("BBS")!;
  const g = c.videoGeometry;
  const model = createModel(c, 0);
  try {
    const rng = randomForRun(1, "bench/embed");
    const video = Float32Array.from({ length: g.frames * g.height * g.width * 3 }, () => rng.uniform(-1, 1));
    const forward = () => embed(model, { size: 1, video, videoShape: [1, g.frames, g.height, g.width, 3] });
    const log = (line: string) => (opts.json ? process.stderr.write(`${line}\n`) : console.log(line));
    log(`bench embed: BBS video backbone forward at ${g.frames}x${g.height}x${g.width} on ${backend.name}`);
    forward(); // warm-up: kernels compiled, buffers allocated
    const times: number[] = [];
    for (let i = 0; i < (opts.clips ?? 3); i++) {
      const t0 = performance.now();
      forward();
      times.push(performance.now() - t0);
      log(`  clip ${i + 1}: ${(times[i] / 1e3).toFixed(2)} s`);
    }
    const seconds = median(times) / 1e3;
    const flops = inferenceFlops(c, 0, 0);
    const gflops = (flops.video + flops.heads) / 1e9 / seconds;
    const gemm = nativeGemmGflops(1024, 8);
    const fast = fastKernelsInfo();
    const result = {
      backend: backend.name,
      engine: fast.engine,
      threads: fast.threads,
      input: `${g.frames}x${g.height}x${g.width}`,
      secondsPerClip: round(seconds),
      clipsPerSecond: round(1 / seconds),
      gflopPerClip: round((flops.video + flops.heads) / 1e9, 1),
      gflops: round(gflops, 1),
      gemmGflops: gemm === undefined ? null : round(gemm, 1),
      gemmFraction: gemm === undefined ? null : round(gflops / gemm),
      target: { gemmFraction: 0.5 },
    };
    log(
      `  ${result.secondsPerClip} s a clip (${result.clipsPerSecond} clips/s), ${result.gflops} GFLOP/s = ` +
        `${result.gemmFraction === null ? "?" : (100 * result.gemmFraction).toFixed(0)} % of the GEMM's ${result.gemmGflops}`,
    );
    return result;
  } finally {
    disposeModel(model);
  }
}
