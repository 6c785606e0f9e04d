/**
 * The embedding API: a few lines to embed a video, a sound or a sentence with a trained model, the way evaluation
 * sees them (the same decoding, uniformly spaced windows, centre crops, no augmentation).
 *
 *   const m = await loadVatt("runs/r1");                 // a run, a checkpoint, or a `vatt export` folder
 *   const [video, text] = [await m.embedVideo("clip.mp4", { windows: 4 }), (await m.embedText(["slice the tomato"]))[0]];
 *   console.log(m.similarity(video, text));              // cosine similarity in their shared space
 *
 * Embeddings are L2-normalised. A video lives in both common spaces (S_va with audio, S_vt with text); a sound in
 * S_va, a sentence in S_vt. `similarity` compares two embeddings in the space they share. A video's embedding over
 * several windows is the mean of the windows' embeddings, normalised again (the paper's retrieval protocol).
 */
import { basename } from "node:path";
import type { ClipRef } from "../core/records.js";
import { probe } from "../media/probe.js";
import { decodeClip } from "../operators/decode.js";
import { centreCropView, temporalWindows } from "../operators/eval-views.js";
import { tokenize, words } from "../operators/tokenize.js";
import { type EncoderInputs, type Encoders, openEncoders } from "./encoders.js";

/** One embedding: which modality it came from and its vectors in the common spaces that modality reaches. */
export interface Embedding {
  modality: "video" | "audio" | "text";
  /** The video-audio space (video, audio). */
  va?: Float32Array;
  /** The video-text space (video, text). */
  vt?: Float32Array;
}

/** One window of a video and its embedding (what `vatt index` stores). */
export interface WindowEmbedding extends Embedding {
  start: number;
  end: number;
}

export interface VideoOptions {
  /** Uniformly spaced windows over the file (default 4), averaged. */
  windows?: number;
  /** Only this stretch of the file, in seconds (default: all of it). */
  start?: number;
  end?: number;
}

export interface TextOptions {
  /** Embed a text none of whose words the model knows (default: refuse it, since the result would be noise). */
  allowUnknown?: boolean;
}

export interface Vatt {
  readonly engine: Encoders["engine"];
  readonly inputs: EncoderInputs;
  embedVideo(file: string, opts?: VideoOptions): Promise<Embedding>;
  /** Every window of `seconds` (default: one clip's length) from the start of the file, each embedded alone. */
  embedVideoWindows(file: string, opts?: { hop?: number }): Promise<WindowEmbedding[]>;
  embedAudio(file: string, opts?: VideoOptions): Promise<Embedding>;
  embedText(texts: string[], opts?: TextOptions): Promise<Embedding[]>;
  /** The words of `text` the model knows and those it does not. */
  vocabularyOf(text: string): { known: string[]; unknown: string[] };
  similarity(a: Embedding, b: Embedding): number;
  close(): Promise<void>;
}

/** Scales each row of `rows` ([n, d]) to unit length in place; a zero row stays zero. */
export function normaliseRows(rows: Float32Array, d: number): Float32Array {
  for (let r = 0; r < rows.length; r += d) {
    let s = 0;
    for (let i = r; i < r + d; i++) s += rows[i] * rows[i];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = r; i < r + d; i++) rows[i] *= inv;
  }
  return rows;
}

/** The mean of the `n` rows of `rows`, normalised. */
function meanRow(rows: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(d);
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) out[i] += rows[r * d + i];
  return normaliseRows(out, d);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Loads a model for embedding: a run directory, a checkpoint folder, a .safetensors file or an export folder. */
export async function loadVatt(path: string, opts: { vocab?: string } = {}): Promise<Vatt> {
  const enc = await openEncoders(path, opts);
  const g = enc.inputs;
  const seconds = g.frames / g.fps;
  const decode = {
    frames: g.frames,
    fps: g.fps,
    sampleRate: g.sampleRate,
    shortSide: Math.max(g.height, g.width),
    seed: 0,
    window: "start" as const,
  };

  /** The file as a ref over [start, end] (its probed duration by default). */
  async function refOf(file: string, start = 0, end?: number): Promise<ClipRef> {
    const info = await probe(file);
    const stop = Math.min(end ?? info.duration, info.duration);
    if (!(stop > start))
      throw new Error(
        `'${file}': nothing to embed between ${start} s and ${stop} s (it lasts ${info.duration} s)`,
      );
    const where = {
      source: "file",
      id: basename(file),
      path: file,
      start,
      end: stop,
      duration: info.duration,
    };
    return { ...where, index: 0, epoch: 0, captions: [], labels: [] };
  }

  /** Decodes the windows and stacks their centre crops and audio into model inputs. */
  async function windowInputs(windows: ClipRef[]): Promise<{ video: Float32Array; audio: Float32Array }> {
    const clips = await Promise.all(windows.map((w) => decodeClip(w, decode)));
    const frame = g.frames * g.height * g.width * 3;
    const video = new Float32Array(windows.length * frame);
    const audio = new Float32Array(windows.length * g.samples);
    clips.forEach((clip, k) => {
      const view = centreCropView(clip, { outHeight: g.height, outWidth: g.width });
      video.set(view.video, k * frame);
      audio.set(view.audio.subarray(0, g.samples), k * g.samples);
    });
    return { video, audio };
  }

  const vocabularyOf = (text: string) => {
    const all = words(text);
    const known = enc.vocabulary ? all.filter((w) => enc.vocabulary!.has(w)) : [];
    return { known, unknown: all.filter((w) => !known.includes(w)) };
  };

  return {
    engine: enc.engine,
    inputs: g,
    async embedVideo(file, o = {}) {
      const ref = await refOf(file, o.start, o.end);
      const windows = temporalWindows(ref, o.windows ?? 4, seconds);
      const { video } = await windowInputs(windows);
      const e = await enc.video(video, windows.length);
      return {
        modality: "video",
        va: meanRow(e.va, windows.length, g.vaDim),
        vt: meanRow(e.vt, windows.length, g.vtDim),
      };
    },
    async embedVideoWindows(file, o = {}) {
      const ref = await refOf(file);
      const hop = o.hop ?? seconds;
      if (!(hop > 0)) throw new RangeError(`hop must be a positive number of seconds, got ${hop}`);
      const count = Math.max(1, Math.floor(Math.max(0, ref.end - seconds) / hop) + 1);
      const windows = Array.from({ length: count }, (_, k) => ({
        ...ref,
        start: k * hop,
        end: k * hop + seconds,
      }));
      const out: WindowEmbedding[] = [];
      // A few windows per model call: memory stays bounded on long videos.
      for (let at = 0; at < windows.length; at += 8) {
        const part = windows.slice(at, at + 8);
        const { video } = await windowInputs(part);
        const e = await enc.video(video, part.length);
        normaliseRows(e.va, g.vaDim);
        normaliseRows(e.vt, g.vtDim);
        for (const [k, w] of part.entries()) {
          out.push({
            modality: "video",
            start: w.start,
            end: Math.min(w.end, ref.end),
            va: e.va.slice(k * g.vaDim, (k + 1) * g.vaDim),
            vt: e.vt.slice(k * g.vtDim, (k + 1) * g.vtDim),
          });
        }
      }
      return out;
    },
    async embedAudio(file, o = {}) {
      const ref = await refOf(file, o.start, o.end);
      const windows = temporalWindows(ref, o.windows ?? 4, seconds);
      const { audio } = await windowInputs(windows);
      return {
        modality: "audio",
        va: meanRow(await enc.audio(audio, windows.length), windows.length, g.vaDim),
      };
    },
    async embedText(texts, o = {}) {
      if (!enc.vocabulary)
        throw new Error(
          `${enc.source}: the model has no vocabulary (vocab.txt), so it cannot read text: give one with { vocab }`,
        );
      if (!o.allowUnknown) {
        for (const text of texts) {
          const { known } = vocabularyOf(text);
          if (known.length === 0)
            throw new Error(
              `none of the words of '${text}' are in the model's vocabulary (${enc.vocabulary.size} words): ` +
                "its embedding would be noise; use words from the training captions",
            );
        }
      }
      const ids = new Int32Array(texts.length * g.words);
      for (const [i, t] of texts.entries()) tokenize(t, enc.vocabulary!, g.words, ids, i * g.words);
      const vt = normaliseRows(await enc.text(ids, texts.length), g.vtDim);
      return texts.map((_, i) => ({ modality: "text", vt: vt.slice(i * g.vtDim, (i + 1) * g.vtDim) }));
    },
    vocabularyOf,
    similarity(a, b) {
      // Text meets video in S_vt; audio meets video (and video meets video) in S_va.
      const space = a.modality === "text" || b.modality === "text" ? "vt" : "va";
      const [x, y] = [a[space], b[space]];
      if (!x || !y) throw new Error(`a ${a.modality} and a ${b.modality} embedding share no common space`);
      return dot(x, y);
    },
    close: () => enc.close(),
  };
}
