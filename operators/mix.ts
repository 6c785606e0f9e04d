/**
 * Mixing datasets per example (VATT: HowTo100M and AudioSet sampled uniformly into each mini-batch).
 *
 * Output position i of an epoch draws its source from randomFor(seed, epoch, i, "mix") with probability
 * proportional to the weights of the sources not yet exhausted, then pulls exactly one ref from that source:
 * nothing is read ahead. Each ref keeps its `source` name and gets `index = i`, its position in the mixed
 * stream, so (epoch, index) - the key of all later randomness - stays unique across sources (each dataset numbers
 * its own refs from 0). The dataset already used its own index for its clip choice.
 *
 * When a source runs out, by default the others continue (weights renormalised) and the epoch ends when all are
 * exhausted; with `untilFirstExhausted` the epoch ends as soon as any source runs out, which keeps the mix ratio
 * exact to the end. Refs from caption-less sources (AudioSet) carry `captions: []`; the text operator turns that
 * into zero ids with mask 0.
 */
import { randomFor } from "../core/random.js";
import type { ClipRef, ClipSource } from "../core/records.js";

export interface MixInput {
  source: ClipSource;
  /** Relative sampling weight (default 1: equal). */
  weight?: number;
}

export interface MixOptions {
  seed: number;
  /** End the epoch when the first source runs out instead of draining the others. */
  untilFirstExhausted?: boolean;
  /** Name of the mixed source (default: the names joined with "+"). */
  name?: string;
}

/** Picks an index from `weights` (all >= 0, some > 0) given u in [0, 1). */
export function pickWeighted(weights: readonly number[], u: number): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let target = u * total;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] <= 0) continue;
    last = i;
    if (target < weights[i]) return i;
    target -= weights[i];
  }
  return last; // u * total rounded up to the total
}

export function mixSources(inputs: readonly MixInput[], opts: MixOptions): ClipSource {
  if (inputs.length === 0) throw new Error("mixSources needs at least one source");
  for (const { source, weight } of inputs) {
    if (weight !== undefined && !(weight >= 0 && Number.isFinite(weight))) {
      throw new RangeError(`mix weight of ${source.name} must be a finite number >= 0, got ${weight}`);
    }
  }
  const name = opts.name ?? inputs.map((i) => i.source.name).join("+");

  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    const iterators = inputs.map(({ source }) => source.refs(epoch)[Symbol.asyncIterator]());
    const weights = inputs.map(({ weight }) => weight ?? 1);
    const open = weights.map((w) => w > 0);
    try {
      for (let index = 0; ; ) {
        const live = weights.map((w, i) => (open[i] ? w : 0));
        if (!live.some((w) => w > 0)) return;
        const rng = randomFor(opts.seed, epoch, index, "mix");
        const pick = pickWeighted(live, rng.next());
        const step = await iterators[pick].next();
        if (step.done) {
          open[pick] = false;
          if (opts.untilFirstExhausted) return;
          continue; // redraw position `index` among the rest: same key, fewer sources, still deterministic
        }
        yield { ...step.value, index };
        index++;
      }
    } finally {
      await Promise.all(iterators.map((it, i) => (open[i] ? it.return?.() : undefined)));
    }
  }

  return { name, refs };
}
