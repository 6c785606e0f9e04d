/**
 * The composed streams: ClipRefs -> decoded clips -> Examples -> Batches, pulled by the consumer.
 *
 *   const skips = new SkipLog();
 *   for await (const batch of pretrainingBatches(refs, { seed, batchSize: 8, skips })) await trainStep(batch);
 *
 * The trainer asks for the next batch only when its step is done; the decode stage then keeps at most
 * `concurrency` ffmpeg processes running and `buffer` finished clips waiting. A clip that fails to decode is
 * recorded in `skips` (where "decode", reason = the MediaError kind, or "crashed-decoder") and replaced by the next
 * ref.
 */

import {
  batchOf,
  flow,
  fromIterable,
  mapConcurrent,
  mapEach,
  type PullOperator,
  toAsyncIterable,
} from "../core/flow.js";
import type { FilterGeometry } from "../core/geometry.js";
import type { Batch, ClipRef, DecodedClip, Example } from "../core/records.js";
import { SkipLog } from "../core/skips.js";
import { MediaError } from "../media/process.js";
import {
  type AugmentOptions,
  applyAugmentation,
  augmentClip,
  drawAugmentation,
} from "../operators/augment.js";
import { stackExamples } from "../operators/batch.js";
import { type DecodeOptions, decodeClip, decodeSkipReason } from "../operators/decode.js";
import { spatialViews, temporalWindows, type ViewOptions } from "../operators/eval-views.js";

export interface StageOptions {
  /** ffmpeg processes at once (default 2: one per core here). */
  concurrency?: number;
  /** Decoded clips that may wait for the consumer (default 2). */
  buffer?: number;
  /** Where per-clip failures are counted; default: a fresh log (read it back via the options object). */
  skips?: SkipLog;
  /** The pass a skip is counted in (default: the ref's epoch); an evaluation names its own, e.g. "eval@100". */
  pass?: (ref: ClipRef) => number | string;
  /** Told when each decode starts and how it ends (the training stream's retirement of failing files). */
  outcomes?: DecodeOutcomes;
}

/** A failed decode as a skip: its reason and a message that says what, where and what to do. */
export interface DecodeSkip {
  reason: string;
  message: string;
}

/** Hears every decode of a stage: started, then exactly one of succeeded / failed (also when cancelled). */
export interface DecodeOutcomes {
  started(ref: ClipRef): void;
  succeeded(ref: ClipRef): void;
  /** `skip` is undefined when the decode did not fail on its own (cancelled, or a bug that ends the stream). */
  failed(ref: ClipRef, skip: DecodeSkip | undefined): void;
}

/** The skip a decode error stands for; undefined for a cancelled decode or an error that is not per clip. */
export function decodeSkip(err: unknown, ref: ClipRef): DecodeSkip | undefined {
  if (!(err instanceof MediaError) || err.kind === "cancelled") return undefined;
  const { reason, advice } = decodeSkipReason(err);
  const joint = advice.startsWith("or ") ? ", " : "; ";
  return { reason, message: `${ref.source}:${ref.id} (${ref.path}): ${err.message}${joint}${advice}` };
}

/** Records a MediaError as a skip of the ref's file in its pass; anything else is a bug and ends the stream. */
export function recordDecodeSkip(
  skips: SkipLog,
  pass: (ref: ClipRef) => number | string = (ref) => ref.epoch,
): (err: unknown, ref: ClipRef) => void {
  return (err, ref) => {
    if (!(err instanceof MediaError)) throw err;
    const skip = decodeSkip(err, ref) ?? {
      reason: err.kind,
      message: `${ref.source}:${ref.id} (${ref.path}): ${err.message}`,
    };
    skips.record("decode", skip.reason, skip.message, { item: ref.path, pass: pass(ref) });
  };
}

/** `project` with `outcomes` told of each start and end (in that order, before the stage sees the result). */
function heard<B>(
  project: (ref: ClipRef, signal: AbortSignal) => Promise<B>,
  outcomes: DecodeOutcomes | undefined,
): (ref: ClipRef, signal: AbortSignal) => Promise<B> {
  if (!outcomes) return project;
  return async (ref, signal) => {
    outcomes.started(ref);
    let out: B;
    try {
      out = await project(ref, signal);
    } catch (err) {
      outcomes.failed(ref, decodeSkip(err, ref));
      throw err;
    }
    outcomes.succeeded(ref);
    return out;
  };
}

/** ClipRef -> DecodedClip with bounded concurrency; failures become skips. */
export function decodeClips(
  decode: Partial<DecodeOptions>,
  stage: StageOptions = {},
): PullOperator<ClipRef, DecodedClip> {
  const skips = stage.skips ?? new SkipLog();
  return mapConcurrent(
    heard((ref: ClipRef, signal) => decodeClip(ref, decode, { signal }), stage.outcomes),
    {
      concurrency: stage.concurrency ?? 2,
      buffer: stage.buffer ?? 2,
      onError: recordDecodeSkip(skips, stage.pass),
    },
  );
}

/** DecodedClip -> Example with the training augmentation. */
export function augmentClips(augment: Partial<AugmentOptions>): PullOperator<DecodedClip, Example> {
  return mapEach((clip: DecodedClip) => augmentClip(clip, augment));
}

/**
 * ClipRef -> Example with crop, resize and flip done in ffmpeg's filter graph (colour still in typed arrays). Same
 * draws as the typed-array path; costs one ffprobe per file (cached) to learn the frame size. ffmpeg's swscale
 * resampling is not the typed arrays' tf.image.resize bilinear, so the pixels differ from the default path's.
 * See bench/pipeline.ts.
 */
export function decodeAugmentInFfmpeg(
  decode: Partial<DecodeOptions>,
  augment: Partial<AugmentOptions>,
  stage: StageOptions = {},
): PullOperator<ClipRef, Example> {
  const skips = stage.skips ?? new SkipLog();
  const out = { outHeight: augment.outHeight ?? 224, outWidth: augment.outWidth ?? 224 };
  return mapConcurrent(
    heard(async (ref: ClipRef, signal) => {
      let drawn: ReturnType<typeof drawAugmentation> | undefined;
      const geometry = (width: number, height: number): FilterGeometry => {
        drawn = drawAugmentation(ref, width, height, augment);
        return { box: drawn.box, outWidth: out.outWidth, outHeight: out.outHeight, flip: drawn.flip };
      };
      const clip = await decodeClip(ref, decode, { signal, geometry });
      const whole = { x: 0, y: 0, width: clip.width, height: clip.height };
      return applyAugmentation(
        clip,
        { box: whole, flip: false, colour: drawn?.colour },
        { ...augment, ...out },
      );
    }, stage.outcomes),
    {
      concurrency: stage.concurrency ?? 2,
      buffer: stage.buffer ?? 2,
      onError: recordDecodeSkip(skips, stage.pass),
    },
  );
}

export interface PretrainingOptions extends StageOptions {
  seed: number;
  batchSize: number;
  decode?: Partial<DecodeOptions>;
  augment?: Partial<AugmentOptions>;
  /** Drop a last short batch (default true: the trainer wants a fixed batch size). */
  dropRemainder?: boolean;
  /**
   * Where crop, resize and flip run: ffmpeg's filter graph (default: ffmpeg scales straight to the output size, so
   * less is converted, written and read; one cached ffprobe per file; swscale's bilinear) or typed arrays
   * (tf.image.resize's exact half-pixel bilinear, no probe). Colour runs in typed arrays either way. Measured in
   * bench/pipeline.ts.
   */
  geometryIn?: "arrays" | "ffmpeg";
}

/** ClipRef -> Example (training), pulled. */
export function pretrainingExamples(
  refs: AsyncIterable<ClipRef> | Iterable<ClipRef>,
  opts: Omit<PretrainingOptions, "batchSize">,
): AsyncGenerator<Example, void, undefined> {
  const decode = { ...opts.decode, seed: opts.seed };
  const augment = { ...opts.augment, seed: opts.seed };
  const source = fromIterable(refs);
  return toAsyncIterable(
    (opts.geometryIn ?? "ffmpeg") === "ffmpeg"
      ? flow(source, decodeAugmentInFfmpeg(decode, augment, opts))
      : flow(source, decodeClips(decode, opts), augmentClips(augment)),
  );
}

/** ClipRef -> Batch (training), pulled: the stream the training sink and `vatt prepare` consume. */
export function pretrainingBatches(
  refs: AsyncIterable<ClipRef> | Iterable<ClipRef>,
  opts: PretrainingOptions,
): AsyncGenerator<Batch, void, undefined> {
  const decode = { ...opts.decode, seed: opts.seed };
  const augment = { ...opts.augment, seed: opts.seed };
  const stack = mapEach((examples: Example[]) => stackExamples(examples, { numClasses: augment.numClasses }));
  const batches = batchOf<Example>(opts.batchSize, { dropRemainder: opts.dropRemainder ?? true });
  const source = fromIterable(refs);
  return toAsyncIterable(
    (opts.geometryIn ?? "ffmpeg") === "ffmpeg"
      ? flow(source, decodeAugmentInFfmpeg(decode, augment, opts), batches, stack)
      : flow(source, decodeClips(decode, opts), augmentClips(augment), batches, stack),
  );
}

export interface EvaluationOptions extends StageOptions {
  /** Temporal windows per video (reference: 4). */
  windows?: number;
  /** Spatial crops per window: 1 centre crop (retrieval) or 3 (classification). */
  spatial?: 1 | 3;
  decode?: Partial<Omit<DecodeOptions, "window">>;
  views?: ViewOptions;
}

/** All views of one video, in order: window 0's crops, window 1's, ... Ready to average per video. */
export interface VideoViews {
  ref: ClipRef;
  views: Example[];
}

/**
 * ClipRef (one per video) -> its evaluation views: `windows` uniformly spaced windows x `spatial` crops, pulled.
 * Windows of a video are decoded concurrently; a video any of whose windows fails is skipped as a whole.
 */
export function evaluationViews(
  refs: AsyncIterable<ClipRef> | Iterable<ClipRef>,
  opts: EvaluationOptions = {},
): AsyncGenerator<VideoViews, void, undefined> {
  const decode: Partial<DecodeOptions> = { ...opts.decode, window: "start" };
  const frames = decode.frames ?? 32;
  const seconds = (frames * (decode.stride ?? 1)) / (decode.fps ?? 10);
  const windows = opts.windows ?? 4;
  const skips = opts.skips ?? new SkipLog();
  const perVideo = mapConcurrent(
    async (ref: ClipRef, signal): Promise<VideoViews> => {
      const clips = await Promise.all(
        temporalWindows(ref, windows, seconds).map((w) => decodeClip(w, decode, { signal })),
      );
      return { ref, views: clips.flatMap((clip) => spatialViews(clip, opts.spatial ?? 1, opts.views)) };
    },
    {
      concurrency: opts.concurrency ?? 1,
      buffer: opts.buffer ?? 1,
      onError: recordDecodeSkip(skips, opts.pass),
    },
  );
  return toAsyncIterable(flow(fromIterable(refs), perVideo));
}
