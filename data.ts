/**
 * `vatt/data`: the data side alone, free of TensorFlow.js: records, datasets, ordering, decoding, augmentation,
 * the composed training streams and Parquet preparation. For preprocessing scripts and data loaders that feed
 * another trainer; `vatt` (index.ts) adds the model, training, evaluation and export.
 *
 *   import { howTo100M, orderedRefs, pretrainingBatches, SkipLog } from "vatt/data";
 */

export { type OrderOptions, orderedRefs, type StreamPosition, shardOf } from "./core/order.js";
export { type Random, randomFor } from "./core/random.js";
export type { Batch, Caption, ClipRef, ClipSource, DecodedClip, Example } from "./core/records.js";
export { type SkipEvent, SkipLog } from "./core/skips.js";
export { type AudioSetOptions, audioSet, readClassLabels } from "./datasets/audioset.js";
export {
  type ClassificationSource,
  classFolders,
  esc50,
  hmdb51,
  kinetics,
  ucf101,
} from "./datasets/classification.js";
export { type HowTo100MOptions, howTo100M } from "./datasets/howto100m.js";
export { type ManifestOptions, manifest } from "./datasets/manifest.js";
export { shardFiles, shardRows } from "./datasets/parquet.js";
export { type SynthKind, type SynthOptions, synthesizeDataset } from "./datasets/synth.js";
export { type MediaInfo, probe } from "./media/probe.js";
export { type AugmentOptions, augmentClip, defaultAugmentOptions } from "./operators/augment.js";
export { captionPositives, captionText } from "./operators/captions.js";
export { type DecodeOptions, decodeClip, defaultDecodeOptions } from "./operators/decode.js";
export { type MixOptions, mixSources } from "./operators/mix.js";
export { loadVocabulary, TOKENS_PER_CAPTION, tokenize, type Vocabulary } from "./operators/tokenize.js";
export { type ParquetExampleOptions, parquetExamples } from "./pipeline/parquet-examples.js";
export { type PrepareOptions, type PrepareResult, prepareShards } from "./pipeline/prepare.js";
export {
  evaluationViews,
  type PretrainingOptions,
  pretrainingBatches,
  pretrainingExamples,
} from "./pipeline/stream.js";
export { captionVocabulary, writeVocabulary } from "./pipeline/vocab.js";
