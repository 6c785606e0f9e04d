/**
 * The typed records that flow one way through vatt:
 *
 *   dataset files -> ClipRef -> DecodedClip -> Example -> Batch -> sink
 *
 * They are plain objects with typed arrays, free of TensorFlow.js, so every stage can be tested and reused
 * for preprocessing alone. Tensors are created only in the model and the sinks.
 */

/** One timed transcript line (HowTo100M ASR) in seconds from the start of the video. */
export interface Caption {
  start: number;
  end: number;
  text: string;
}

/** Which clip to read: small, millions may stream past. */
export interface ClipRef {
  /** Dataset the clip comes from, e.g. "howto100m", "audioset", "manifest". */
  source: string;
  /** Stable id of the video or segment (HowTo100M video id, AudioSet `YTID_start`). */
  id: string;
  /** Media file to decode. */
  path: string;
  /** Window to decode, seconds from the start of the file. */
  start: number;
  end: number;
  /** Sample index within the epoch and the epoch: together with the run seed, the key of all its randomness. */
  index: number;
  epoch: number;
  /** Captions near the window (MIL-NCE positives are chosen from these); empty when the source has no text. */
  captions: Caption[];
  /** Class indices (AudioSet, classification layouts); empty when unlabelled. */
  labels: number[];
  /** Known duration of the whole media file in seconds, if the dataset says so. */
  duration?: number;
  /**
   * Position of this ref in its epoch's final order (after sharding and shuffling), set by core/order.ts.
   * Resuming after it: `{ epoch, next: order + 1 }` (see `positionAfter`).
   */
  order?: number;
}

/** The decoded window: uint8 RGB frames and float32 mono audio, with masks for what was missing. */
export interface DecodedClip {
  ref: ClipRef;
  /** T x H x W x 3, uint8 RGB, row-major. */
  frames: Uint8Array;
  numFrames: number;
  height: number;
  width: number;
  /** Float32 mono samples in [-1, 1] at `sampleRate`. Zeros when the file has no audio track. */
  audio: Float32Array;
  sampleRate: number;
  /** 1 when the file had an audio track, 0 when `audio` is zero padding. */
  audioMask: number;
  /** Number of frames that were repeated or padded because the video was shorter than the window. */
  paddedFrames: number;
}

/** What the model eats, still plain typed arrays. */
export interface Example {
  source: string;
  id: string;
  index: number;
  epoch: number;
  /** The ref's place in its epoch's order (core/order.ts), when it came through `orderedRefs`. */
  order?: number;
  /** T x H x W x 3 in [-1, 1]. */
  video: Float32Array;
  videoShape: [number, number, number, number];
  /** Mono audio in [-1, 1]. */
  audio: Float32Array;
  audioMask: number;
  /** K x 16 word ids (0 = <pad>). */
  textIds: Int32Array;
  /** K entries: 1 for a real caption, 0 for padding. All 0 when the source has no text. */
  textMask: Float32Array;
  /** Multi-hot labels (length = number of classes), empty when unlabelled. */
  labels: Float32Array;
  /** True when frames were padded or looped to fill the window. */
  padded: boolean;
}

/** Examples stacked along a leading batch axis. */
export interface Batch {
  size: number;
  /** B x T x H x W x 3 */
  video: Float32Array;
  videoShape: [number, number, number, number, number];
  /** B x S */
  audio: Float32Array;
  audioMask: Float32Array;
  /** B x K x 16 */
  textIds: Int32Array;
  /** B x K */
  textMask: Float32Array;
  /** B x C (C = 0 when unlabelled) */
  labels: Float32Array;
  sources: string[];
  ids: string[];
}

/**
 * A dataset: `refs(epoch)` streams that epoch's ClipRefs in a deterministic order. Pull-based: nothing is read
 * before the consumer asks for it, and an abandoned iteration (break / return) closes the files it opened.
 */
export interface ClipSource {
  readonly name: string;
  refs(epoch: number): AsyncIterable<ClipRef>;
}
