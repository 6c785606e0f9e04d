/**
 * A small streaming CSV reader for the dataset index files (AudioSet segments, class labels, Kinetics, ESC-50,
 * manifests). Records are read line by line, so memory stays bounded by the longest record.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

export interface CsvOptions {
  /** Field separator (default ","). */
  delimiter?: string;
  /**
   * Skip spaces after a separator, so a quote may follow ", " (AudioSet writes `a, 1.0, 2.0, "x,y"`), and trim
   * unquoted fields. Default true: none of the index files we read has meaningful edge spaces.
   */
  trim?: boolean;
  /** Lines whose first character is this are comments (AudioSet's three `#` lines). Default "#". */
  comment?: string | null;
  /**
   * Let a quoted field run over several lines (default false). Index files are one record per line, where a
   * stray quote should cost only its own line rather than swallow the lines after it.
   */
  multiline?: boolean;
}

export type CsvRecord =
  | { line: number; fields: string[]; text: string }
  | { line: number; error: string; text: string };

/** Result of splitting one record: its fields, a syntax error, or "the quote is still open, read on". */
export type SplitResult = { fields: string[] } | { error: string } | { open: true };

/**
 * Splits one CSV record (RFC 4180 quoting, `""` inside quotes is one `"`). Pure: the streaming reader and the
 * tests share it.
 */
export function splitCsvRecord(text: string, opts: CsvOptions = {}): SplitResult {
  const delimiter = opts.delimiter ?? ",";
  const trim = opts.trim ?? true;
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (trim) while (text[i] === " " || text[i] === "\t") i++;
    if (text[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) return { open: true };
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      while (text[i] === " " || text[i] === "\t") i++;
      fields.push(value);
      if (i >= text.length) return { fields };
      if (text.startsWith(delimiter, i)) {
        i += delimiter.length;
        continue;
      }
      return { error: `unexpected '${text[i]}' after a closing quote at column ${i + 1}` };
    }
    const next = text.indexOf(delimiter, i);
    const raw = next < 0 ? text.slice(i) : text.slice(i, next);
    if (raw.includes('"'))
      return { error: `a quote inside an unquoted field at column ${i + raw.indexOf('"') + 1}` };
    fields.push(trim ? raw.trim() : raw);
    if (next < 0) return { fields };
    i = next + delimiter.length;
  }
}

/** The longest a quoted field may run over lines before the record is declared broken (an unclosed quote). */
const MAX_RECORD_LINES = 200;

/**
 * Streams the records of a CSV file with their 1-based line numbers. Blank lines and comment lines are skipped;
 * malformed records come back as `{ error }` so the caller can record them and go on. With `multiline`, a quoted
 * field may span lines (up to 200) and the record reports the line it starts on.
 */
export async function* readCsvRecords(path: string, opts: CsvOptions = {}): AsyncGenerator<CsvRecord> {
  const comment = opts.comment === undefined ? "#" : opts.comment;
  const input = createReadStream(path, { encoding: "utf8" });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  let pending: { line: number; text: string; count: number } | undefined;
  try {
    for await (let text of lines) {
      lineNo++;
      if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (pending) {
        pending.text += `\n${text}`;
        pending.count++;
      } else {
        if (text.trim() === "" || (comment && text.startsWith(comment))) continue;
        pending = { line: lineNo, text, count: 1 };
      }
      const split = splitCsvRecord(pending.text, opts);
      if ("open" in split) {
        if (opts.multiline && pending.count < MAX_RECORD_LINES) continue;
        yield { line: pending.line, error: "a quoted field is never closed", text: pending.text };
      } else if ("error" in split) {
        yield { line: pending.line, error: split.error, text: pending.text };
      } else {
        yield { line: pending.line, fields: split.fields, text: pending.text };
      }
      pending = undefined;
    }
    if (pending)
      yield { line: pending.line, error: "the file ends inside a quoted field", text: pending.text };
  } finally {
    lines.close();
    input.destroy();
  }
}

/** Maps header names to column positions, lower-cased and trimmed. */
export function headerIndex(fields: string[]): Map<string, number> {
  return new Map(fields.map((name, i) => [name.trim().toLowerCase(), i]));
}
