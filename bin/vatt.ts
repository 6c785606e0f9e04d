#!/usr/bin/env node
/**
 * The `vatt` command line: dispatches to one subcommand per file in bin/commands/.
 */
import { type Command, helpText, parseCommandArgs, UserError } from "./cli.js";
import { demoCommand } from "./commands/demo.js";
import { embedCommand } from "./commands/embed.js";
import { inspectCommand } from "./commands/inspect.js";
import { modelInfoCommand } from "./commands/model-info.js";
import { prepareCommand } from "./commands/prepare.js";
import { pretrainCommand } from "./commands/pretrain.js";
import { probeCommand } from "./commands/probe.js";
import { synthCommand } from "./commands/synth.js";
import { vocabCommand } from "./commands/vocab.js";

const commands: Command[] = [
  demoCommand,
  pretrainCommand,
  prepareCommand,
  probeCommand,
  synthCommand,
  vocabCommand,
  inspectCommand,
  embedCommand,
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
