/**
 * MIL-NCE positives: the K captions nearest a clip window in time, tokenized for the text tower.
 *
 * P(z) in VATT / MIL-NCE is the set of captions closest to the clip. "Closest" is the gap between the two time
 * intervals (0 when they overlap), so every caption overlapping the window ties at 0; ties are broken by the
 * distance between centres, then start, end and original position, so the choice never depends on sort
 * stability or input quirks.
 */
import type { Caption, ClipRef } from "../pipeline/records.js";
import { TOKENS_PER_CAPTION, tokenize, type Vocabulary } from "./tokenize.js";

/** MIL-NCE's number of positive captions per clip. */
export const POSITIVES_PER_CLIP = 5;

/** Seconds between two intervals: 0 when they overlap or touch. */
export function intervalGap(aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  return Math.max(0, bStart - aEnd, aStart - bEnd);
}

/** The `k` captions nearest [start, end], nearest first (deterministic ties, see the file comment). */
export function nearestCaptions(
  captions: readonly Caption[],
  start: number,
  end: number,
  k: number,
): Caption[] {
  const centre = (start + end) / 2;
  return captions
    .map((c, i) => ({
      c,
      i,
      gap: intervalGap(start, end, c.start, c.end),
      off: Math.abs((c.start + c.end) / 2 - centre),
    }))
    .sort((a, b) => a.gap - b.gap || a.off - b.off || a.c.start - b.c.start || a.c.end - b.c.end || a.i - b.i)
    .slice(0, k)
    .map(({ c }) => c);
}

export interface CaptionPositives {
  /** K x 16 word ids, row-major; rows of missing captions are all <pad> (0). */
  textIds: Int32Array;
  /** K entries: 1 for a real caption, 0 for padding. */
  textMask: Float32Array;
}

/**
 * The MIL-NCE positives of a window: the `k` nearest captions tokenized into [k * 16] ids with a [k] mask.
 * Fewer than `k` captions (or none, as for AudioSet) leave the remaining rows zero with mask 0.
 */
export function captionPositives(
  captions: readonly Caption[],
  start: number,
  end: number,
  vocab: Vocabulary,
  k = POSITIVES_PER_CLIP,
  length = TOKENS_PER_CAPTION,
): CaptionPositives {
  const textIds = new Int32Array(k * length);
  const textMask = new Float32Array(k);
  nearestCaptions(captions, start, end, k).forEach((c, row) => {
    tokenize(c.text, vocab, length, textIds, row * length);
    textMask[row] = 1;
  });
  return { textIds, textMask };
}

/**
 * The text of a ref for augmentation (fits `TextFor` in operators/augment.ts): its window's `k` nearest captions
 * as [k * 16] ids and a [k] mask. Caption-less refs (AudioSet) get zeros with mask 0.
 */
export function captionText(
  vocab: Vocabulary,
  k = POSITIVES_PER_CLIP,
  length = TOKENS_PER_CAPTION,
): (ref: ClipRef) => CaptionPositives {
  return (ref) => captionPositives(ref.captions, ref.start, ref.end, vocab, k, length);
}
