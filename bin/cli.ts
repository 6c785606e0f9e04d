/**
 * The small framework every `vatt` subcommand uses: option parsing with node's util.parseArgs, `--help`, and
 * one-line errors with a non-zero exit code. Commands only parse and print; the work is a library call.
 */
import { parseArgs } from "node:util";

export type OptionSpec = {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** One line for --help; the default, if any, is shown from `default`. */
  help: string;
  default?: string | boolean;
};

export interface Command {
  name: string;
  /** One line, shown in `vatt --help`. */
  summary: string;
  /** e.g. "vatt probe FILE [--json]" */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Whether positional arguments are allowed (and how many at most). */
  positionals?: { min: number; max: number; names: string };
  /** Returns the process exit code. */
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** A failure the user can fix: printed as one line, exit code 2 (usage) or 1 (everything else). */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "UserError";
  }
}

export function helpText(cmd: Command): string {
  const lines = [`Usage: ${cmd.usage}`, "", cmd.summary, ""];
  const entries = Object.entries(cmd.options);
  if (entries.length > 0) lines.push("Options:");
  for (const [name, spec] of entries) {
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.type === "string" ? " VALUE" : ""}`;
    const dflt = spec.default !== undefined && spec.default !== false ? ` (default: ${spec.default})` : "";
    lines.push(`  ${flag.padEnd(30)} ${spec.help}${dflt}`);
  }
  lines.push(`  ${"-h, --help".padEnd(30)} show this help`);
  return lines.join("\n");
}

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs | "help" {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, spec] of Object.entries(cmd.options)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      multiple: spec.multiple ?? false,
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UserError(
      `vatt ${cmd.name}: ${(err as Error).message.split("\n")[0]} (see 'vatt ${cmd.name} --help')`,
      2,
    );
  }
  if (parsed.values.help) return "help";
  const pos = cmd.positionals ?? { min: 0, max: 0, names: "" };
  if (parsed.positionals.length < pos.min) {
    throw new UserError(`vatt ${cmd.name}: missing ${pos.names} (usage: ${cmd.usage})`, 2);
  }
  if (parsed.positionals.length > pos.max) {
    throw new UserError(
      `vatt ${cmd.name}: unexpected argument '${parsed.positionals[pos.max]}' (usage: ${cmd.usage})`,
      2,
    );
  }
  const values: ParsedArgs["values"] = {};
  for (const [name, spec] of Object.entries(cmd.options)) {
    values[name] = (parsed.values[name] as string | boolean | string[] | undefined) ?? spec.default;
  }
  return { values, positionals: parsed.positionals };
}

/** Reads a string option that must be present. */
export function requireString(cmd: string, args: ParsedArgs, name: string): string {
  const v = args.values[name];
  if (typeof v !== "string" || v === "") {
    throw new UserError(`vatt ${cmd}: --${name} is required (see 'vatt ${cmd} --help')`, 2);
  }
  return v;
}

/** Reads an optional string option. */
export function optionalString(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

/** Reads an integer option, checking its range. */
export function intOption(
  cmd: string,
  args: ParsedArgs,
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new UserError(`vatt ${cmd}: --${name} must be an integer, got '${v}'`, 2);
  if (range.min !== undefined && n < range.min) {
    throw new UserError(`vatt ${cmd}: --${name} must be >= ${range.min}, got ${n}`, 2);
  }
  if (range.max !== undefined && n > range.max) {
    throw new UserError(`vatt ${cmd}: --${name} must be <= ${range.max}, got ${n}`, 2);
  }
  return n;
}

/** Reads a number option, checking its range. */
export function numberOption(
  cmd: string,
  args: ParsedArgs,
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) throw new UserError(`vatt ${cmd}: --${name} must be a number, got '${v}'`, 2);
  if (range.min !== undefined && n < range.min) {
    throw new UserError(`vatt ${cmd}: --${name} must be >= ${range.min}, got ${n}`, 2);
  }
  if (range.max !== undefined && n > range.max) {
    throw new UserError(`vatt ${cmd}: --${name} must be <= ${range.max}, got ${n}`, 2);
  }
  return n;
}

/** Reads an option restricted to a set of words. */
export function choiceOption<T extends string>(
  cmd: string,
  args: ParsedArgs,
  name: string,
  choices: readonly T[],
): T | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    throw new UserError(`vatt ${cmd}: --${name} must be one of ${choices.join(", ")}, got '${String(v)}'`, 2);
  }
  return v as T;
}
