/**
 * The fuzzing harness shared by the quick tests (`test/fuzz/*.test.ts`) and the long runner (`npm run fuzz`).
 *
 * Every target takes one input file (`FuzzInput`: bytes plus the extension that says which reader gets them) and
 * runs its parsers on it. The contract, checked by `expectClearOutcome`:
 *   - the parser returns (bad parts counted as skips whose messages name the file), or
 *   - it throws an Error (or a project subclass: ConfigError, MediaError) whose message names the file;
 *   - never a built-in error from deep inside (TypeError, RangeError, SyntaxError, a wasm trap...), never a
 *     non-Error throw, never a result later than the case's time limit.
 * Violations are thrown as `ContractViolation`, so fast-check shrinks them like any failed property.
 *
 * Inputs are generated two ways: a target's own structured generator, and byte-level mutations (bit flips,
 * truncation, splices, repeated chunks, dictionary tokens, "interesting" integers) of its seeds and corpus files.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import fc from "fast-check";
import type { SkipLog } from "../../core/skips.js";

export interface FuzzInput {
  /** Extension without the dot ("csv", "json", "mp4"...): picks the reader (and the corpus file's name). */
  ext: string;
  bytes: Uint8Array;
}

export interface FuzzTarget {
  name: string;
  /** What the target feeds its inputs to, for the runner's listing. */
  readers: string;
  /** Small valid inputs that mutations start from (the corpus files are added to them). */
  seeds(): Promise<FuzzInput[]>;
  /** A structure-aware generator of inputs, beside the mutations of seeds. */
  generate?: fc.Arbitrary<FuzzInput>;
  /** Tokens the mutator inserts (delimiters, quotes, numbers that break parsers). */
  dictionary: readonly string[];
  /** Runs every reader of the group on `input`, written into the empty-or-reused folder `dir`. */
  run(input: FuzzInput, dir: string): Promise<void>;
  /** numRuns of the quick test: sized for a few seconds on one core. */
  quickRuns: number;
  /** Limit on one case, in ms. */
  caseTimeoutMs: number;
  /** Called once after a run (closes worker pools). */
  close?(): Promise<void>;
}

/** A broken contract: the message says which reader, on which input, did what. */
export class ContractViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ContractViolation";
  }
}

/** Built-in errors that mean a parser fell over rather than refused the input. */
const CRASH_ERRORS = new Set([
  "TypeError",
  "RangeError",
  "SyntaxError",
  "ReferenceError",
  "EvalError",
  "URIError",
  "AggregateError",
  "RuntimeError",
  "CompileError",
  "LinkError",
]);

/** Why `err` breaks the contract for a reader of `files`, or undefined when it is a clear refusal. */
export function contractBreach(err: unknown, files: readonly string[]): string | undefined {
  if (!(err instanceof Error)) return `threw a non-Error value ${describeValue(err)}`;
  if (err instanceof ContractViolation) return err.message;
  const kind = err.constructor?.name ?? err.name;
  if (CRASH_ERRORS.has(kind) || CRASH_ERRORS.has(err.name)) {
    return `threw ${kind}: ${err.message}\n${(err.stack ?? "").split("\n").slice(1, 6).join("\n")}`;
  }
  if (files.length > 0 && !files.some((f) => err.message.includes(f))) {
    return `threw an error that does not name the input (${files.join(" or ")}): ${err.message}`;
  }
  return undefined;
}

function describeValue(v: unknown): string {
  try {
    return String(v).slice(0, 200);
  } catch {
    return typeof v;
  }
}

/**
 * Runs `reader` under the contract: its error must be clear (see `contractBreach`) and it must settle within
 * `timeoutMs`. `names` are the strings an error message must contain one of (a path or basename).
 */
export async function expectClearOutcome<T>(
  label: string,
  names: readonly string[],
  timeoutMs: number,
  reader: () => Promise<T>,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const outcome = await Promise.race([reader().then((value) => ({ value })), timeout]);
    if (outcome === "timeout")
      throw new ContractViolation(`${label}: no result within ${timeoutMs} ms (a hang?)`);
    return outcome.value;
  } catch (err) {
    const breach = contractBreach(err, names);
    if (breach) throw new ContractViolation(`${label}: ${breach}`);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Every skip message must say where: one of `names` (a file's path or basename). */
export function expectSkipsSayWhere(label: string, skips: SkipLog, names: readonly string[]): void {
  for (const event of skips.lastEvents()) {
    if (!names.some((n) => event.message.includes(n))) {
      throw new ContractViolation(
        `${label}: the skip '${event.where}:${event.reason}' does not name its file: ${event.message}`,
      );
    }
  }
}

/** An invariant of a reader's result; breaks the contract when false. */
export function expectThat(label: string, ok: boolean, what: string): void {
  if (!ok) throw new ContractViolation(`${label}: ${what}`);
}

export async function collect<T>(items: AsyncIterable<T>, limit = 100_000): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) {
    out.push(x);
    if (out.length >= limit) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations

export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "delete"; at: number; length: number }
  | { kind: "repeat"; at: number; length: number; times: number }
  | { kind: "splice"; from: number; to: number; length: number }
  | { kind: "token"; at: number; token: number; replace: boolean }
  | { kind: "integer"; at: number; value: number; width: 1 | 2 | 4 | 8 };

/** Integers that sit on the edges parsers get wrong (as raw little-endian bytes or as text). */
export const INTERESTING_INTEGERS = [
  0,
  1,
  7,
  8,
  127,
  128,
  255,
  256,
  0x7fff,
  0xffff,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  2 ** 40,
  2 ** 53 - 1,
  -1,
] as const;

const position = fc.nat({ max: 1 << 20 });

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: position }),
  fc.record({ kind: fc.constant("delete" as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({
    kind: fc.constant("repeat" as const),
    at: position,
    length: fc.integer({ min: 1, max: 256 }),
    times: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    kind: fc.constant("splice" as const),
    from: position,
    to: position,
    length: fc.integer({ min: 1, max: 512 }),
  }),
  fc.record({ kind: fc.constant("token" as const), at: position, token: fc.nat(), replace: fc.boolean() }),
  fc.record({
    kind: fc.constant("integer" as const),
    at: position,
    value: fc.nat({ max: INTERESTING_INTEGERS.length - 1 }),
    width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
  }),
);

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Applies one mutation; positions wrap around the input's length, so every mutation applies to any input. */
export function mutate(bytes: Uint8Array, m: Mutation, dictionary: readonly string[]): Uint8Array {
  const n = bytes.length;
  const at = (p: number) => (n === 0 ? 0 : p % (n + 1));
  switch (m.kind) {
    case "flip": {
      if (n === 0) return bytes;
      const out = bytes.slice();
      out[m.at % n] ^= 1 << m.bit;
      return out;
    }
    case "truncate":
      return bytes.slice(0, at(m.at));
    case "delete": {
      const p = at(m.at);
      return concat(bytes.subarray(0, p), bytes.subarray(p + m.length));
    }
    case "repeat": {
      const p = at(m.at);
      const chunk = bytes.subarray(p, p + m.length);
      return concat(
        bytes.subarray(0, p),
        ...Array<Uint8Array>(m.times + 1).fill(chunk),
        bytes.subarray(p + m.length),
      );
    }
    case "splice": {
      const chunk = bytes.slice(at(m.from), at(m.from) + m.length);
      const p = at(m.to);
      return concat(bytes.subarray(0, p), chunk, bytes.subarray(p));
    }
    case "token": {
      if (dictionary.length === 0) return bytes;
      const token = Buffer.from(dictionary[m.token % dictionary.length], "utf8");
      const p = at(m.at);
      return concat(bytes.subarray(0, p), token, bytes.subarray(m.replace ? p + token.length : p));
    }
    case "integer": {
      const value = INTERESTING_INTEGERS[m.value];
      const raw = Buffer.alloc(8);
      raw.writeBigInt64LE(BigInt(value));
      const p = at(m.at);
      return concat(bytes.subarray(0, p), raw.subarray(0, m.width), bytes.subarray(p + m.width));
    }
  }
}

/** Inputs: a target's generator, or one of its seeds put through up to 6 mutations. */
export function inputArbitrary(target: FuzzTarget, seeds: readonly FuzzInput[]): fc.Arbitrary<FuzzInput> {
  const mutated = fc
    .tuple(fc.nat({ max: Math.max(0, seeds.length - 1) }), fc.array(mutationArbitrary, { maxLength: 6 }))
    .map(([i, ms]): FuzzInput => {
      const seed = seeds[i];
      return { ext: seed.ext, bytes: ms.reduce((b, m) => mutate(b, m, target.dictionary), seed.bytes) };
    });
  if (!target.generate) return mutated;
  const generatedThenMutated = fc.tuple(target.generate, fc.array(mutationArbitrary, { maxLength: 3 })).map(
    ([input, ms]): FuzzInput => ({
      ext: input.ext,
      bytes: ms.reduce((b, m) => mutate(b, m, target.dictionary), input.bytes),
    }),
  );
  return fc.oneof(mutated, target.generate, generatedThenMutated);
}

// ---------------------------------------------------------------------------------------------------------------
// Corpus

/** `test/fuzz/corpus/` of the source tree (the compiled file runs from dist/test/fuzz/). */
export function corpusRoot(): string {
  return new URL("../../../test/fuzz/corpus/", import.meta.url).pathname;
}

export async function readCorpus(
  target: string,
  root = corpusRoot(),
): Promise<(FuzzInput & { file: string })[]> {
  const dir = join(root, target);
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(
    names
      .filter((n) => !n.startsWith("."))
      .sort()
      .map(async (name) => ({
        file: join(dir, name),
        ext: name.includes(".") ? name.slice(name.lastIndexOf(".") + 1) : "",
        bytes: new Uint8Array(await readFile(join(dir, name))),
      })),
  );
}

/** Saves a counterexample as `found-<hash>.<ext>` (the same input saved twice is one file); returns its path. */
export async function saveToCorpus(target: string, input: FuzzInput, root = corpusRoot()): Promise<string> {
  const dir = join(root, target);
  await mkdir(dir, { recursive: true });
  const hash = createHash("sha256").update(input.bytes).digest("hex").slice(0, 12);
  const file = join(dir, `found-${hash}.${input.ext}`);
  await writeFile(file, input.bytes);
  return file;
}

/** The property every input must satisfy, with one scratch folder reused by all cases. */
export function contractProperty(
  target: FuzzTarget,
  seeds: readonly FuzzInput[],
  dir: string,
): fc.IAsyncPropertyWithHooks<[FuzzInput]> {
  return fc.asyncProperty(inputArbitrary(target, seeds), (input) => target.run(input, dir));
}

/** Replays every corpus file of `target`; throws the first violation, naming the corpus file. */
export async function replayCorpus(target: FuzzTarget, dir: string): Promise<number> {
  const corpus = await readCorpus(target.name);
  for (const input of corpus) {
    try {
      await target.run(input, dir);
    } catch (err) {
      throw new ContractViolation(`corpus file ${input.file}: ${(err as Error).message}`);
    }
  }
  return corpus.length;
}

/** A short printable view of an input, for reports. */
export function showInput(input: FuzzInput): string {
  const text = Buffer.from(input.bytes.subarray(0, 160))
    .toString("latin1")
    .replace(/[^\x20-\x7e]/g, ".");
  return `${input.ext} ${input.bytes.length} bytes: ${text}${input.bytes.length > 160 ? "..." : ""}`;
}

export { basename };
