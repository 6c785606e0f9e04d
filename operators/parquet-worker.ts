/**
 * Worker thread of `parquetExamples` (a core/worker-pool.ts thread): JPEG decode + augmentation of one cut, off the
 * main thread. Augmentation (crop, resize, colour over 32 x 224 x 224 x 3 floats, one fused kernel) costs ~30-40 ms
 * a clip in JavaScript: on the main thread it would cap training input at ~25-30 clips/s whatever the cores.
 * Buffers come in and go out transferred, not copied.
 */
import { isMainThread } from "node:worker_threads";
import { serveJobs } from "../core/worker-pool.js";
import type { AugmentOptions } from "./augment.js";
import { augmentCut, type ClipCut } from "./parquet-cut.js";

export interface AugmentTask {
  cut: ClipCut;
  augment: Partial<AugmentOptions>;
}

if (!isMainThread) {
  serveJobs(async ({ cut, augment }: AugmentTask) => {
    const example = await augmentCut(cut, augment);
    const transfer = [example.video.buffer, example.audio.buffer] as ArrayBuffer[];
    return { reply: example, transfer: transfer[0] === transfer[1] ? [transfer[0]] : transfer };
  });
}
