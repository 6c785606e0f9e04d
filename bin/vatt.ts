#!/usr/bin/env node
/**
 * The `vatt` command line: dispatches to one subcommand per file in bin/commands/.
 */
import { setFlagsFromString } from "node:v8";
import { type Command, helpText, parseCommandArgs, UserError } from "./cli.js";
import { demoCommand } from "./commands/demo.js";
import { embedCommand } from "./commands/embed.js";
import { evaluateCommand } from "./commands/evaluate.js";
import { exportCommand } from "./commands/export.js";
import { finetuneCommand } from "./commands/finetune.js";
import { indexCommand } from "./commands/index-videos.js";
import { inspectCommand } from "./commands/inspect.js";
import { linearEvalCommand } from "./commands/linear-eval.js";
import { modelInfoCommand } from "./commands/model-info.js";
import { prepareCommand } from "./commands/prepare.js";
import { pretrainCommand } from "./commands/pretrain.js";
import { probeCommand } from "./commands/probe.js";
import { reportCommand } from "./commands/report.js";
import { searchCommand } from "./commands/search.js";
import { serveCommand } from "./commands/serve.js";
import { synthCommand } from "./commands/synth.js";
import { vocabCommand } from "./commands/vocab.js";

/**
 * Garbage collection for a streaming trainer. The data pipeline makes ~16 MB of short-lived typed arrays a batch
 * (decoded clips, augmented examples, the batch); V8 counts that memory against an old generation whose limit it sets
 * only ~1.5x past the small live heap, so it ran a full mark-compact about once a batch (~1 ms of main thread an
 * example in the demo). A limit 3x past the live heap: 50 -> 15 mark-compacts in 65 demo batches, decoding 465 ->
 * 590 examples/s. V8 reads the factor whenever it sets a new limit, so setting it here takes effect.
 */
setFlagsFromString("--heap-growing-percent=200");

const commands: Command[] = [
  demoCommand,
  pretrainCommand,
  finetuneCommand,
  linearEvalCommand,
  evaluateCommand,
  prepareCommand,
  probeCommand,
  synthCommand,
  vocabCommand,
  inspectCommand,
  embedCommand,
  exportCommand,
  indexCommand,
  searchCommand,
  serveCommand,
  reportCommand,
  modelInfoCommand,
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    "Usage: vatt COMMAND [options]",
    "",
    "Self-supervised Video-Audio-Text Transformer pretraining on streaming raw media.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Run 'vatt COMMAND --help' for the options of one command.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`vatt: unknown command '${name}' (run 'vatt --help' for the list)`);
    return 2;
  }
  try {
    const args = parseCommandArgs(cmd, rest);
    if (args === "help") {
      console.log(helpText(cmd));
      return 0;
    }
    return await cmd.run(args);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(err.message);
      return err.exitCode;
    }
    const e = err as Error;
    console.error(`vatt ${cmd.name}: ${e.message}`);
    if (process.env.VATT_DEBUG) console.error(e.stack);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`vatt: ${(err as Error).message}`);
    process.exitCode = 1;
  },
);
