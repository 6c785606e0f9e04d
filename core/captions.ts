/**
 * Which captions go with a clip: P(z) in VATT / MIL-NCE is the set of captions closest to the clip window.
 * "Closest" is the gap between the two time intervals (0 when they overlap), so every caption overlapping the
 * window ties at 0; ties are broken by the distance between centres, then start, end and original position, so
 * the choice never depends on sort stability or input quirks. Used by the readers (which captions a ref carries)
 * and by the text operator (which it tokenizes).
 */
import type { Caption } from "./records.js";

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
