import { SkipLog } from "../../core/skips.js";
import type { PrepareKind } from "../../pipeline/prepare.js";
import {
  type Command,
  choiceOption,
  intOption,
  numberOption,
  optionalString,
  type ParsedArgs,
  requireString,
  UserError,
} from "../cli.js";

/** Environment variables a cluster scheduler sets to a task's 0-based index, tried in this order. */
export const SHARD_INDEX_VARIABLES = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"] as const;

/** `--shard`: an index, or "auto" for the scheduler's task index (Kubernetes indexed Job, Slurm array). */
export function shardOption(args: ParsedArgs, numShards: number, env = process.env): number | undefined {
  const raw = optionalString(args, "shard");
  if (raw === undefined) return undefined;
  let text = raw;
  let from = "--shard";
  if (raw === "auto") {
    const name = SHARD_INDEX_VARIABLES.find((v) => env[v] !== undefined && env[v] !== "");
    if (!name) {
      throw new UserError(
        `vatt prepare: --shard auto needs ${SHARD_INDEX_VARIABLES.join(" or ")} in the environment; none is set ` +
          "(pass --shard N instead)",
        2,
      );
    }
    text = env[name]!;
    from = `$${name}`;
  }
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(Number.isSafeInteger(n) && n < numShards)) {
    throw new UserError(
      `vatt prepare: ${from} must be a shard index in [0, ${numShards - 1}] (--num-shards ${numShards}), got '${text}'`,
      2,
    );
  }
  return n;
}

export const prepareCommand: Command = {
  name: "prepare",
  summary:
    "Decode a dataset once into Parquet shards (JPEG frames at 10 fps, 48 kHz audio, captions, labels)",
  usage:
    "vatt prepare --dataset DIR --kind howto100m|audioset|manifest --out DIR --num-shards N [--shard I|auto] [options]",
  options: {
    dataset: { type: "string", help: "dataset folder (or, for manifest, the manifest file)" },
    kind: { type: "string", help: "dataset layout: howto100m, audioset or manifest" },
    out: { type: "string", help: "shard folder (created if absent; finished shards in it are kept)" },
    "num-shards": { type: "string", help: "number of shards the dataset is split into" },
    shard: {
      type: "string",
      help: "write only this shard (0-based); 'auto': $JOB_COMPLETION_INDEX or $SLURM_ARRAY_TASK_ID",
    },
    fps: { type: "string", help: "stored frame rate", default: "10" },
    "short-side": {
      type: "string",
      help: "short side of stored frames in pixels (0: as decoded)",
      default: "256",
    },
    "jpeg-quality": { type: "string", help: "JPEG quality of stored frames (1-100)", default: "90" },
    "row-group-mb": { type: "string", help: "Parquet row group size (uncompressed MiB)", default: "64" },
    "max-row-seconds": {
      type: "string",
      help: "howto100m: longest stretch of a video in one row (0: whole videos)",
      default: "120",
    },
    concurrency: { type: "string", help: "videos decoded at once", default: "2" },
    vocab: { type: "string", help: "vocabulary file (vatt vocab): store caption token ids" },
    segments: { type: "string", help: "audioset: segments CSV (default DIR/balanced_train_segments.csv)" },
    json: { type: "boolean", help: "print one JSON summary object" },
    quiet: { type: "boolean", help: "print nothing but errors" },
  },
  async run(args) {
    const c = "prepare";
    const { PREPARE_KINDS, prepareShards } = await import("../../pipeline/prepare.js");
    const dataset = requireString(c, args, "dataset");
    const out = requireString(c, args, "out");
    const kind = choiceOption<PrepareKind>(c, args, "kind", PREPARE_KINDS);
    if (!kind) requireString(c, args, "kind");
    if (args.values["num-shards"] === undefined) requireString(c, args, "num-shards");
    const numShards = intOption(c, args, "num-shards", { min: 1 })!;
    const shard = shardOption(args, numShards);
    const skips = new SkipLog(20);
    const quiet = Boolean(args.values.quiet || args.values.json);
    const started = Date.now();
    const result = await prepareShards({
      dataset,
      kind: kind!,
      out,
      numShards,
      shard,
      fps: intOption(c, args, "fps", { min: 1, max: 60 }),
      shortSide: intOption(c, args, "short-side", { min: 0, max: 4096 }),
      jpegQuality: intOption(c, args, "jpeg-quality", { min: 1, max: 100 }),
      rowGroupBytes: intOption(c, args, "row-group-mb", { min: 1, max: 1024 })! * 1024 * 1024,
      maxRowSeconds: numberOption(c, args, "max-row-seconds", { min: 0 }),
      concurrency: intOption(c, args, "concurrency", { min: 1, max: 64 }),
      vocab: optionalString(args, "vocab"),
      segments: optionalString(args, "segments"),
      skips,
      onRow: quiet
        ? undefined
        : ({ shard: s, rows, frames }) =>
            process.stderr.write(`\rvatt prepare: shard ${s}: ${rows} videos, ${frames} frames`),
      onShard: quiet
        ? undefined
        : ({ shard: s, reused, receipt }) =>
            process.stderr.write(
              `${reused ? "" : "\n"}vatt prepare: shard ${s} ${reused ? "already finished" : "written"}: ` +
                `${receipt.rows} videos, ${(receipt.bytes / 1e6).toFixed(1)} MB\n`,
            ),
    });
    const summary = {
      out: result.out,
      written: result.written,
      reused: result.reused,
      rows: result.shards.reduce((n, s) => n + s.rows, 0),
      bytes: result.shards.reduce((n, s) => n + s.bytes, 0),
      manifest: result.manifest ?? null,
      skipped: result.skipped,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    if (args.values.json) console.log(JSON.stringify(summary));
    else if (!args.values.quiet) {
      for (const e of skips.lastEvents()) console.error(`skipped: ${e.message}`);
      if (skips.count > skips.lastEvents().length) console.error(`... ${skips.count} skipped in all`);
      console.log(
        `${out}: ${summary.written.length} shards written, ${summary.reused.length} already finished, ` +
          `${summary.rows} videos, ${(summary.bytes / 1e6).toFixed(1)} MB in ${summary.seconds} s; ` +
          (result.manifest
            ? `manifest ${result.manifest}`
            : "manifest.json follows once every shard is finished"),
      );
    }
    return 0;
  },
};
