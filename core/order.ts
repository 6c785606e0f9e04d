/**
 * Order and scale-out for a ClipSource: sharding, bounded shuffling, epochs, and exact resumption.
 *
 * Per epoch e:  source.refs(e) -> keep the refs of shard i of n -> shuffle with a buffer of B refs -> number
 * them 0, 1, 2, ... (`ref.order`).
 *
 * - Sharding is by `ref.index % n` (default: balanced, since a source numbers its refs 0, 1, 2, ...) or by a
 *   stable hash of `ref.id` (`shardBy: "id"`: every clip of one video lands on the same worker). Either way the
 *   shards are disjoint and together hold every ref. Each worker reads the whole index; reading refs is cheap
 *   next to decoding them.
 * - The shuffle keeps at most B refs (pull-based: a ref is read only when one is emitted) and draws from
 *   randomFor(seed, epoch, shard, "order:shuffle"): the same seed, epoch and shard give the same order.
 * - A position `{ epoch, next }` is plain JSON: "in `epoch`, `next` refs of the final order have been
 *   consumed". `positionAfter(ref)` gives the position after a consumed ref. Resuming replays that epoch from its
 *   start and drops the first `next` refs: since the order is a pure function of (source, seed, epoch, shard),
 *   the rest is exactly what the uninterrupted stream would have produced.
 */
import { type Random, randomFor } from "./random.js";
import type { ClipRef, ClipSource } from "./records.js";

/** Where a stream stands: `next` refs of epoch `epoch` have been consumed. Plain JSON, save it as is. */
export interface StreamPosition {
  epoch: number;
  next: number;
}

export interface OrderOptions {
  seed: number;
  /** This worker's shard: `index` of `count` (default: the only shard). */
  shard?: { index: number; count: number };
  /** "index" (default): ref.index % count. "id": stable hash of ref.id % count. */
  shardBy?: "index" | "id";
  /** Shuffle buffer size in refs; 0 or 1 keeps the source order (default 0). */
  shuffleBuffer?: number;
  /** Epochs to run, counted from epoch 0 (default 1; Infinity to stream until stopped). */
  epochs?: number;
  /** Continue from a saved position. */
  resume?: StreamPosition;
}

/** FNV-1a over UTF-16 units: a stable 32-bit hash of a string, the same on every machine and run. */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The shard a ref belongs to. */
export function shardOf(ref: ClipRef, count: number, by: "index" | "id" = "index"): number {
  return by === "id" ? stableHash(ref.id) % count : ref.index % count;
}

/**
 * Buffered shuffle: holds up to `size` items; each new item replaces a random one that is emitted; the rest
 * drain in random order. Reads one item per item emitted once the buffer is full.
 */
export async function* shuffleBuffered<T>(
  items: AsyncIterable<T>,
  size: number,
  rng: Random,
): AsyncGenerator<T> {
  const buffer: T[] = [];
  for await (const item of items) {
    if (buffer.length < size) {
      buffer.push(item);
      continue;
    }
    const j = rng.int(size);
    const out = buffer[j];
    buffer[j] = item;
    yield out;
  }
  while (buffer.length > 0) {
    const j = rng.int(buffer.length);
    const out = buffer[j];
    buffer[j] = buffer[buffer.length - 1];
    buffer.pop();
    yield out;
  }
}

async function* keepShard(refs: AsyncIterable<ClipRef>, index: number, count: number, by: "index" | "id") {
  for await (const ref of refs) if (count === 1 || shardOf(ref, count, by) === index) yield ref;
}

/** The position right after `ref` was consumed (`ref` must come from `orderedRefs`). */
export function positionAfter(ref: ClipRef): StreamPosition {
  if (ref.order === undefined)
    throw new Error(`ref ${ref.id} has no order: it did not come from orderedRefs`);
  return { epoch: ref.epoch, next: ref.order + 1 };
}

function checkOptions(opts: OrderOptions): void {
  const { index, count } = opts.shard ?? { index: 0, count: 1 };
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`shard must be 'index of count' with 0 <= index < count, got ${index} of ${count}`);
  }
  const r = opts.resume;
  if (r && !(Number.isInteger(r.epoch) && r.epoch >= 0 && Number.isInteger(r.next) && r.next >= 0)) {
    throw new RangeError(
      `resume position must be {epoch, next} with integers >= 0, got ${JSON.stringify(r)}`,
    );
  }
}

/**
 * The refs of `source` in this worker's order, epoch after epoch, each with `order` set. Stops after `epochs`
 * epochs, or early when a whole epoch of the source is empty (nothing would ever come).
 */
export async function* orderedRefs(source: ClipSource, opts: OrderOptions): AsyncGenerator<ClipRef> {
  checkOptions(opts);
  const { index: shard, count } = opts.shard ?? { index: 0, count: 1 };
  const epochs = opts.epochs ?? 1;
  const buffer = opts.shuffleBuffer ?? 0;
  for (let epoch = opts.resume?.epoch ?? 0; epoch < epochs; epoch++) {
    const skip = epoch === opts.resume?.epoch ? opts.resume.next : 0;
    let read = 0;
    const counted = async function* () {
      for await (const ref of source.refs(epoch)) {
        read++;
        yield ref;
      }
    };
    const mine = keepShard(counted(), shard, count, opts.shardBy ?? "index");
    const rng = randomFor(opts.seed, epoch, shard, "order:shuffle");
    const order = buffer > 1 ? shuffleBuffered(mine, buffer, rng) : mine;
    let position = 0;
    for await (const ref of order) {
      if (position >= skip) yield { ...ref, order: position };
      position++;
    }
    if (read === 0) return;
  }
}
