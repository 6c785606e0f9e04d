/**
 * Examples -> Batch: stacks the typed arrays along a leading batch axis. Labels are padded with zeros to the number
 * of classes (a HowTo100M example without labels next to AudioSet ones gets an all-zero row); caption rows are
 * padded to the largest K in the batch with mask 0.
 */
import { uninitialisedFloat32 } from "../core/buffers.js";
import type { Batch, Example } from "../core/records.js";

export interface BatchOptions {
  /** Label columns; default: the longest label vector in the batch. */
  numClasses?: number;
  /** Caption rows per example; default: the largest K in the batch. */
  captionsPerExample?: number;
  /** Tokens per caption (reference: 16). */
  tokensPerCaption?: number;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function stackExamples(examples: readonly Example[], opts: BatchOptions = {}): Batch {
  const size = examples.length;
  if (size === 0) throw new RangeError("stackExamples: cannot make a batch of no examples");
  const first = examples[0];
  const [t, h, w, c] = first.videoShape;
  const videoLen = t * h * w * c;
  const audioLen = first.audio.length;
  const tokens = opts.tokensPerCaption ?? 16;
  const k = opts.captionsPerExample ?? Math.max(...examples.map((e) => e.textMask.length));
  const classes = opts.numClasses ?? Math.max(...examples.map((e) => e.labels.length));
  // Every example fills its whole video and audio slot (the shapes are checked below): no zeroing of ~6 MB a batch.
  const video = uninitialisedFloat32(size * videoLen);
  const audio = uninitialisedFloat32(size * audioLen);
  const audioMask = new Float32Array(size);
  const textIds = new Int32Array(size * k * tokens);
  const textMask = new Float32Array(size * k);
  const labels = new Float32Array(size * classes);
  examples.forEach((e, b) => {
    const where = `example ${b} (${e.source}:${e.id})`;
    if (!sameShape(e.videoShape, first.videoShape) || e.video.length !== videoLen) {
      throw new RangeError(
        `stackExamples: ${where} has video ${e.videoShape.join("x")} (${e.video.length} values), the batch ` +
          `${first.videoShape.join("x")}`,
      );
    }
    if (e.audio.length !== audioLen) {
      throw new RangeError(
        `stackExamples: ${where} has ${e.audio.length} audio samples, the batch ${audioLen}`,
      );
    }
    if (
      e.labels.length > classes ||
      e.textMask.length > k ||
      e.textIds.length !== e.textMask.length * tokens
    ) {
      throw new RangeError(
        `stackExamples: ${where} has ${e.labels.length} labels / ${e.textMask.length} captions of ` +
          `${e.textIds.length} ids, more than the batch's ${classes} / ${k} x ${tokens}`,
      );
    }
    video.set(e.video, b * videoLen);
    audio.set(e.audio, b * audioLen);
    audioMask[b] = e.audioMask;
    textIds.set(e.textIds, b * k * tokens);
    textMask.set(e.textMask, b * k);
    labels.set(e.labels, b * classes);
  });
  return {
    size,
    video,
    videoShape: [size, t, h, w, c],
    audio,
    audioMask,
    textIds,
    textMask,
    labels,
    sources: examples.map((e) => e.source),
    ids: examples.map((e) => e.id),
  };
}
