/**
 * `vatt`: the package's face. Everything a script composes: the data side (`vatt/data`, re-exported here) plus the
 * model, pretraining runs, evaluation and embeddings. Each command of the `vatt` CLI is one of these calls.
 *
 *   import { runPretraining, resolveConfig } from "vatt";
 */
export * from "./data.js";
export { type BackendChoice, selectBackend } from "./model/backend.js";
export { loadCheckpoint, saveCheckpoint } from "./model/checkpoint.js";
export { type ModelConfig, PRESET_NAMES, presetConfig, withOverrides } from "./model/config.js";
export { embed, trainStep } from "./model/step.js";
export { createModel, disposeModel, type VattModel } from "./model/vatt.js";
export { type BenchmarkOptions, type BenchmarkResult, evaluateBenchmark } from "./pipeline/benchmark-eval.js";
export { type ClassifierEvalReport, evaluateClassifier, type Figures } from "./pipeline/classify-eval.js";
export { ConfigError, type PretrainConfig, readConfigFile, resolveConfig } from "./pipeline/config.js";
export { type DemoOptions, runDemo } from "./pipeline/demo.js";
export {
  runTransferDemo,
  type TransferDemoOptions,
  type TransferDemoResult,
} from "./pipeline/demo-transfer.js";
export { type EmbedOptions, embedDataset } from "./pipeline/embed.js";
export { type Embedding, loadVatt, type Vatt, type WindowEmbedding } from "./pipeline/embedder.js";
export { type EvalReport, evaluateRetrieval } from "./pipeline/evaluate.js";
export { exportOnnx } from "./pipeline/export.js";
export { type FinetuneOptions, type FinetuneResult, runFinetune } from "./pipeline/finetune.js";
export { type LinearEvalOptions, type LinearEvalResult, runLinearEval } from "./pipeline/linear-eval.js";
export {
  type PretrainResult,
  type PretrainRunOptions,
  RunError,
  runPretraining,
} from "./pipeline/pretrain.js";
export { renderReport, writeReport } from "./pipeline/report.js";
export {
  createServeApp,
  type RunningServer,
  type SearchFunction,
  type SearchHit,
  type ServeOptions,
  startServer,
} from "./pipeline/serve/app.js";
export { computeEmbeddingMap, type EmbeddingMap, type Labeller } from "./pipeline/serve/embedding-map.js";
export { findRuns, type RunView, readRun } from "./pipeline/serve/runs.js";
export { FINETUNE_SCHEMA, type FinetuneConfig, resolveFinetuneConfig } from "./pipeline/transfer-config.js";
