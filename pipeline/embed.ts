/**
 * `vatt embed`: per-clip common-space embeddings of a dataset from a trained checkpoint, written as Arrow IPC or
 * Parquet (sinks/embed-writer.ts) for retrieval and analysis in other tools. Each ref gives `windows` uniformly
 * spaced clips (centre crops, as in evaluation); each clip is one row with its video (S_va, S_vt) and audio (S_va)
 * embeddings, and the text (S_vt) embedding of the caption nearest to it when the dataset has captions.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { nearestCaptions } from "../core/captions.js";
import type { ClipRef, ClipSource } from "../core/records.js";
import { SkipLog } from "../core/skips.js";
import { audioSet } from "../datasets/audioset.js";
import { howTo100M } from "../datasets/howto100m.js";
import { manifest } from "../datasets/manifest.js";
import { type BackendChoice, selectBackend } from "../model/backend.js";
import { loadCheckpoint, readCheckpointInfo } from "../model/checkpoint.js";
import { embed } from "../model/step.js";
import { createModel, disposeModel } from "../model/vatt.js";
import { loadVocabulary, tokenize, type Vocabulary } from "../operators/tokenize.js";
import { resolveCheckpoint } from "../sinks/checkpoints.js";
import { type EmbeddingBatch, writeEmbeddings } from "../sinks/embed-writer.js";
import type { PretrainConfig } from "./config.js";
import { evaluationViews } from "./stream.js";

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export type EmbedKind = "howto100m" | "audioset" | "manifest";

export interface EmbedOptions {
  /** A run directory (its last checkpoint), a checkpoint folder, or a model .safetensors file. */
  checkpoint: string;
  dataset: string;
  kind: EmbedKind;
  out: string;
  /** Clips per ref (default 1: the centre of its window). */
  windows?: number;
  /** Vocabulary file; default: the run's vocab.txt beside the checkpoint. */
  vocab?: string;
  backend?: BackendChoice;
  concurrency?: number;
  /** Clips embedded per model call (default 16). */
  batchSize?: number;
  skips?: SkipLog;
  onProgress?: (rows: number) => void;
}

function sourceFor(o: EmbedOptions, seconds: number, skips: SkipLog): ClipSource {
  const window = { windowSeconds: seconds };
  switch (o.kind) {
    case "howto100m":
      // Every caption rides along, so each window can take its own nearest one.
      return howTo100M({ root: o.dataset, seed: 0, skips, nearCaptions: 100_000, ...window });
    case "audioset":
      return audioSet({ root: o.dataset, seed: 0, skips, ...window });
    case "manifest":
      return manifest({ path: o.dataset, skips });
  }
}

/** Embeds the dataset and writes the file; returns the number of rows written. */
export async function embedDataset(o: EmbedOptions): Promise<{ rows: number; skips: SkipLog }> {
  const skips = o.skips ?? new SkipLog();
  const { file, runDir } = await resolveCheckpoint(o.checkpoint);
  await selectBackend(o.backend ?? "auto");
  const info = await readCheckpointInfo(file);
  const runConfig = info.extra.runConfig as PretrainConfig | undefined;
  const model = createModel(info.config, 0);
  try {
    await loadCheckpoint(file, model);
    const vocabPath = o.vocab ?? runConfig?.data.vocab ?? join(runDir, "vocab.txt");
    const vocab: Vocabulary | undefined = (await exists(vocabPath))
      ? await loadVocabulary(vocabPath)
      : undefined;
    const c = model.config;
    const g = c.videoGeometry;
    const fps = runConfig?.data.fps ?? 10;
    const seconds = g.frames / fps;
    const windows = o.windows ?? 1;
    // With several windows, a video's windows spread over all of it (HowTo100M: as far as its captions reach).
    const whole = async function* (refs: AsyncIterable<ClipRef>): AsyncGenerator<ClipRef> {
      for await (const ref of refs) {
        if (windows === 1 || o.kind === "manifest") yield ref;
        else {
          const end = ref.duration ?? ref.captions.reduce((last, c) => Math.max(last, c.end), ref.end);
          yield { ...ref, start: 0, end };
        }
      }
    };
    const refs = whole(sourceFor(o, seconds, skips).refs(0));
    const views = evaluationViews(refs, {
      windows,
      spatial: 1,
      concurrency: o.concurrency ?? 2,
      buffer: 2,
      skips,
      decode: {
        frames: g.frames,
        fps,
        sampleRate: Math.round(c.audioGeometry.samples / seconds),
        shortSide: Math.max(g.height, g.width),
        seed: 0,
      },
      views: { outHeight: g.height, outWidth: g.width },
    });
    const batchSize = o.batchSize ?? 16;
    const words = c.textConfig.maxWords;
    async function* batches(): AsyncGenerator<EmbeddingBatch> {
      let pending: {
        id: string;
        source: string;
        clip: number;
        start: number;
        end: number;
        video: Float32Array;
        audio: Float32Array;
        text?: string;
      }[] = [];
      const flush = (): EmbeddingBatch => {
        const n = pending.length;
        const frame = g.frames * g.height * g.width * 3;
        const video = new Float32Array(n * frame);
        const audio = new Float32Array(n * c.audioGeometry.samples);
        const ids = vocab ? new Int32Array(n * words) : undefined;
        pending.forEach((p, i) => {
          video.set(p.video, i * frame);
          audio.set(p.audio, i * c.audioGeometry.samples);
          if (ids && p.text) tokenize(p.text, vocab!, words, ids, i * words);
        });
        const e = embed(model, {
          size: n,
          video,
          videoShape: [n, g.frames, g.height, g.width, 3],
          audio,
          textIds: ids,
        });
        const out: EmbeddingBatch = {
          ids: pending.map((p) => p.id),
          sources: pending.map((p) => p.source),
          clips: pending.map((p) => p.clip),
          starts: pending.map((p) => p.start),
          ends: pending.map((p) => p.end),
          vectors: {
            video_va: e.videoVa,
            video_vt: e.videoVt,
            audio_va: e.audioVa,
            ...(ids ? { text_vt: e.textVt } : {}),
          },
        };
        pending = [];
        return out;
      };
      let rows = 0;
      for await (const { ref, views: clips } of views) {
        clips.forEach((clip, k) => {
          const start =
            ref.start + (k * Math.max(0, ref.end - ref.start - seconds)) / Math.max(1, windows - 1);
          const caption = nearestCaptions(ref.captions, start, start + seconds, 1)[0];
          pending.push({
            id: ref.id,
            source: ref.source,
            clip: k,
            start,
            end: start + seconds,
            video: clip.video,
            audio: clip.audio,
            text: caption?.text,
          });
        });
        if (pending.length >= batchSize) {
          rows += pending.length;
          yield flush();
          o.onProgress?.(rows);
        }
      }
      if (pending.length > 0) yield flush();
    }
    const dims = {
      video_va: c.vaDim,
      video_vt: c.vtDim,
      audio_va: c.vaDim,
      ...(vocab ? { text_vt: c.vtDim } : {}),
    };
    const rows = await writeEmbeddings(o.out, dims, batches());
    return { rows, skips };
  } finally {
    disposeModel(model);
  }
}
