/**
 * MIL-NCE positives: the K captions nearest a clip window in time (core/captions.ts), tokenized for the text tower.
 */
import { nearestCaptions, POSITIVES_PER_CLIP } from "../core/captions.js";
import type { Caption, ClipRef } from "../core/records.js";
import { TOKENS_PER_CAPTION, tokenize, type Vocabulary } from "./tokenize.js";

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
