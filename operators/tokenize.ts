/**
 * Words to ids for the text tower.
 *
 * Normalisation (VATT / MIL-NCE): Unicode NFC, strip punctuation, lowercase, split on whitespace. "Punctuation"
 * here is everything that is not a letter, a number, a combining mark or whitespace (`[^\p{L}\p{N}\p{M}\s]`), so
 * "don't" becomes "dont", "e-mail" becomes "email", and emoji and symbols vanish. Combining marks are kept so a
 * decomposed "é" stays one letter.
 *
 * Ids: `<pad>`=0, `<bos>`=1, `<eos>`=2, `<unk>`=3, then the vocabulary's words. A caption becomes exactly
 * `TOKENS_PER_CAPTION` (16) ids, clipped or padded with `<pad>`. Like the reference MIL-NCE pipeline we add no
 * `<bos>`/`<eos>`: the text tower pools over the words, and 16 slots are too few to spend two on markers. The
 * ids are reserved so a vocabulary file stays compatible if that ever changes.
 */
import { readFile } from "node:fs/promises";

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
export const UNK = 3;
export const SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"] as const;
export const TOKENS_PER_CAPTION = 16;

const PUNCTUATION = /[^\p{L}\p{N}\p{M}\s]/gu;
const WHITESPACE = /\s+/u;

/** The words of a text after normalisation (may be empty). */
export function words(text: string): string[] {
  const clean = text.normalize("NFC").replace(PUNCTUATION, "").toLowerCase().trim();
  return clean === "" ? [] : clean.split(WHITESPACE);
}

/** Compares strings by Unicode code point (JS `<` compares UTF-16 units, which misorders astral characters). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** A word list: the id of a word is its position. */
export class Vocabulary {
  private readonly ids = new Map<string, number>();

  constructor(readonly tokens: readonly string[]) {
    for (let i = 0; i < SPECIAL_TOKENS.length; i++) {
      if (tokens[i] !== SPECIAL_TOKENS[i]) {
        throw new Error(
          `vocabulary line ${i + 1} must be '${SPECIAL_TOKENS[i]}', found '${tokens[i] ?? "(end of file)"}': ` +
            "the first four lines are <pad>, <bos>, <eos>, <unk>; rebuild it with 'vatt vocab'",
        );
      }
    }
    tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
  }

  get size(): number {
    return this.tokens.length;
  }

  /** Whether the vocabulary holds this (already normalised) word. */
  has(word: string): boolean {
    return this.ids.has(word);
  }

  /** The id of one (already normalised) word; `<unk>` when absent. */
  id(word: string): number {
    return this.ids.get(word) ?? UNK;
  }

  /** One token per line, `\n`-terminated: the bytes `vatt vocab` writes. */
  toText(): string {
    return `${this.tokens.join("\n")}\n`;
  }

  /** Parses the text written by `toText` (a trailing newline and `\r\n` are tolerated). */
  static fromText(text: string, file = "vocabulary"): Vocabulary {
    const lines = text.split(/\r?\n/);
    if (lines.at(-1) === "") lines.pop();
    try {
      return new Vocabulary(lines);
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`);
    }
  }
}

export async function loadVocabulary(path: string): Promise<Vocabulary> {
  return Vocabulary.fromText(await readFile(path, "utf8"), path);
}

/**
 * The vocabulary of `size` entries (special tokens included) from word counts: words by descending count, ties
 * broken by code-point order, so the result depends only on the counts.
 */
export function vocabularyFromCounts(counts: ReadonlyMap<string, number>, size: number): Vocabulary {
  if (!Number.isInteger(size) || size < SPECIAL_TOKENS.length) {
    throw new RangeError(`vocabulary size must be an integer >= ${SPECIAL_TOKENS.length}, got ${size}`);
  }
  const special = new Set<string>(SPECIAL_TOKENS);
  const ranked = [...counts.entries()]
    .filter(([w]) => !special.has(w))
    .sort(([a, ca], [b, cb]) => cb - ca || compareCodePoints(a, b))
    .slice(0, size - SPECIAL_TOKENS.length)
    .map(([w]) => w);
  return new Vocabulary([...SPECIAL_TOKENS, ...ranked]);
}

/** Adds the words of `text` to `counts`. */
export function countWords(counts: Map<string, number>, text: string): void {
  for (const w of words(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
}

/**
 * Text -> exactly `length` ids (default 16): words beyond it are clipped, missing ones padded with `<pad>` (0),
 * unknown words become `<unk>` (3). No `<bos>`/`<eos>` (see the file comment). Writes into `out` at `offset`
 * when given, so K captions can fill one [K * 16] array without copies.
 */
export function tokenize(
  text: string,
  vocab: Vocabulary,
  length = TOKENS_PER_CAPTION,
  out: Int32Array = new Int32Array(length),
  offset = 0,
): Int32Array {
  const ws = words(text);
  for (let i = 0; i < length; i++) out[offset + i] = i < ws.length ? vocab.id(ws[i]) : PAD;
  return out;
}
