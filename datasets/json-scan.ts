/**
 * Streams the entries of one huge top-level JSON object (`{ "key": value, ... }`) with bounded memory.
 *
 * HowTo100M's caption.json is several GB (1.2 M videos), so it is never parsed whole. A byte-level scanner tracks
 * only what it must - inside a string or not, the last byte an escape or not, bracket depth - cuts out each
 * top-level value and `JSON.parse`s that small piece alone. Memory is one read chunk plus the largest value.
 *
 * A broken value is reported (with the line it starts on) and skipped; the scanner then goes on with the next
 * key. Structural damage between entries is reported once and the scanner resynchronises at the next top-level
 * comma.
 */
import { createReadStream } from "node:fs";

export type JsonScanEvent =
  | { kind: "entry"; key: string; value: unknown; line: number }
  | { kind: "error"; line: number; key?: string; message: string };

enum State {
  BeforeObject,
  ExpectKey,
  InKey,
  AfterKey,
  BeforeValue,
  InValue,
  AfterValue,
  Recover,
  Done,
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === NEWLINE || b === 0x0d || b === 0x09;
}

function describe(b: number): string {
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, "0")}`;
}

/** Position of `byte` in `chunk` at or after `from`, or the chunk length. */
function indexOrEnd(chunk: Buffer, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from);
  return at < 0 ? chunk.length : at;
}

/** Default ceiling for one value: a single video's captions are a few KB; 64 MB means the file is broken. */
export const DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024;

/**
 * The incremental scanner: feed it chunks with `push`, call `end` at EOF. Each returns the events completed so
 * far. Chunks may split anywhere, including inside a multi-byte UTF-8 character (pieces are decoded only once
 * they are whole).
 */
export class TopLevelObjectScanner {
  private state = State.BeforeObject;
  private line = 1;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Whether a primitive (number, true, ...) is being read: it ends at a separator, not a bracket. */
  private primitive = false;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private tooLarge = false;
  private key = "";
  private keyLine = 0;
  private events: JsonScanEvent[] = [];
  private offset = 0;
  /** Cached positions of the next backslash / newline in the current chunk (-1: not searched yet). */
  private nextBackslash = -1;
  private nextNewline = -1;
  /** Set once junk after the closing brace was reported: the rest of the file is not looked at. */
  private ignoreRest = false;

  constructor(private readonly maxValueBytes = DEFAULT_MAX_VALUE_BYTES) {}

  /** Bytes scanned so far. */
  get bytesScanned(): number {
    return this.offset;
  }

  push(chunk: Buffer): JsonScanEvent[] {
    let start = -1; // where the piece being collected (key or value) starts in this chunk
    if (this.state === State.InKey || (this.state === State.InValue && !this.tooLarge)) start = 0;
    const n = chunk.length;
    if (this.ignoreRest) {
      this.offset += n;
      return [];
    }
    this.nextBackslash = -1;
    this.nextNewline = -1;
    for (let i = 0; i < n; i++) {
      if (this.state === State.InValue && this.depth > 0) {
        // Hot path: the bulk of the file is inside values; scan them in a tight loop.
        i = this.skipInsideValue(chunk, i);
        if (i >= n) break;
        this.finishValue(chunk, start, i + 1);
        start = -1;
        continue;
      }
      const b = chunk[i];
      if (b === NEWLINE) this.line++;
      switch (this.state) {
        case State.InValue:
          // Only top-level strings and primitives get here: bracketed values take the hot path above.
          if (this.inString) {
            if (this.escaped) this.escaped = false;
            else if (b === BACKSLASH) this.escaped = true;
            else if (b === QUOTE) {
              this.inString = false;
              if (this.depth === 0) {
                this.finishValue(chunk, start, i + 1);
                start = -1;
              }
            }
          } else if (this.primitive) {
            if (b === COMMA || b === CLOSE_BRACE || isSpace(b)) {
              this.finishValue(chunk, start, i);
              start = -1;
              i--; // let AfterValue see the separator
              if (b === NEWLINE) this.line--;
            }
          }
          break;
        case State.InKey:
          if (this.escaped) this.escaped = false;
          else if (b === BACKSLASH) this.escaped = true;
          else if (b === QUOTE) {
            this.finishKey(chunk, start, i + 1);
            start = -1;
          }
          break;
        case State.ExpectKey:
          if (isSpace(b)) break;
          if (b === QUOTE) {
            this.state = State.InKey;
            this.keyLine = this.line;
            this.escaped = false;
            this.parts = [];
            this.partBytes = 0;
            start = i;
          } else if (b === CLOSE_BRACE) this.state = State.Done;
          else this.structural(`expected a quoted key, found ${describe(b)}`);
          break;
        case State.AfterKey:
          if (isSpace(b)) break;
          if (b === COLON) this.state = State.BeforeValue;
          else this.structural(`expected ':' after the key "${this.key}", found ${describe(b)}`);
          break;
        case State.BeforeValue:
          if (isSpace(b)) break;
          this.state = State.InValue;
          this.depth = b === OPEN_BRACE || b === OPEN_BRACKET ? 1 : 0;
          this.inString = b === QUOTE;
          this.escaped = false;
          this.primitive = this.depth === 0 && !this.inString;
          if (b === CLOSE_BRACE || b === CLOSE_BRACKET || b === COMMA) {
            this.structural(`expected a value for the key "${this.key}", found ${describe(b)}`);
            i--; // let Recover see the separator
            break;
          }
          this.parts = [];
          this.partBytes = 0;
          this.tooLarge = false;
          start = i;
          break;
        case State.AfterValue:
          if (isSpace(b)) break;
          if (b === COMMA) this.state = State.ExpectKey;
          else if (b === CLOSE_BRACE) this.state = State.Done;
          else this.structural(`expected ',' or '}' after the value of "${this.key}", found ${describe(b)}`);
          break;
        case State.BeforeObject:
          if (isSpace(b)) break;
          if (b === 0xef || b === 0xbb || b === 0xbf) break; // UTF-8 byte order mark
          if (b === OPEN_BRACE) this.state = State.ExpectKey;
          else {
            this.error(
              `the file must hold one JSON object ({"key": value, ...}), found ${describe(b)} first`,
            );
            this.state = State.Done;
          }
          break;
        case State.Recover:
          this.recover(b);
          break;
        case State.Done:
          if (!isSpace(b)) {
            this.error(
              `unexpected ${describe(b)} after the closing '}' of the top-level object; ignored the rest`,
            );
            this.ignoreRest = true;
            this.offset += n;
            return this.take();
          }
          break;
      }
    }
    if (start >= 0 && (this.state === State.InKey || this.state === State.InValue))
      this.keep(chunk, start, n);
    this.offset += n;
    return this.take();
  }

  /**
   * Scans from `i` inside a bracketed value; returns the index of the bracket that closes it, or the chunk
   * length. Strings are skipped with `indexOf` (the next quote) unless a backslash or newline comes first.
   */
  private skipInsideValue(chunk: Buffer, from: number): number {
    const n = chunk.length;
    let depth = this.depth;
    let inString = this.inString;
    let escaped = this.escaped;
    let line = this.line;
    let nextBackslash = this.nextBackslash;
    let nextNewline = this.nextNewline;
    let i = from;
    for (; i < n; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          if (chunk[i] === NEWLINE) line++;
          continue;
        }
        if (nextBackslash < i) nextBackslash = indexOrEnd(chunk, BACKSLASH, i);
        if (nextNewline < i) nextNewline = indexOrEnd(chunk, NEWLINE, i);
        const quote = indexOrEnd(chunk, QUOTE, i);
        const stop = Math.min(quote, nextBackslash, nextNewline);
        if (stop >= n) {
          i = n;
          break;
        }
        i = stop;
        if (stop === nextNewline) line++;
        else if (stop === nextBackslash) escaped = true;
        else inString = false;
        continue;
      }
      const b = chunk[i];
      if (b === QUOTE) inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) break;
      } else if (b === NEWLINE) line++;
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    this.line = line;
    this.nextBackslash = nextBackslash;
    this.nextNewline = nextNewline;
    return i;
  }

  /** Call at end of file: reports a file that stops inside the object. */
  end(): JsonScanEvent[] {
    if (this.state === State.InValue && this.primitive && !this.tooLarge) {
      this.finishValue(Buffer.alloc(0), 0, 0);
    }
    if (this.state !== State.Done) {
      const inside =
        this.state === State.InValue || this.state === State.AfterKey || this.state === State.BeforeValue;
      this.error(
        this.state === State.BeforeObject
          ? "the file is empty; expected one JSON object"
          : `the file ends before the closing '}'${inside ? ` (inside the value of "${this.key}")` : ""}: ` +
              "it looks truncated; re-download or regenerate it",
        inside ? this.key : undefined,
      );
      this.state = State.Done;
    }
    return this.take();
  }

  private take(): JsonScanEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  private error(message: string, key?: string): void {
    this.events.push({ kind: "error", line: this.line, message, ...(key !== undefined ? { key } : {}) });
  }

  /** Damage between entries: report it and skip to the next top-level comma. */
  private structural(message: string): void {
    this.error(`${message}; skipped to the next entry`);
    this.state = State.Recover;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  private recover(b: number): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (b === BACKSLASH) this.escaped = true;
      else if (b === QUOTE) this.inString = false;
    } else if (b === QUOTE) this.inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
    else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      if (this.depth === 0 && b === CLOSE_BRACE) this.state = State.Done;
      else this.depth = Math.max(0, this.depth - 1);
    } else if (b === COMMA && this.depth === 0) this.state = State.ExpectKey;
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    if (this.tooLarge) return;
    this.partBytes += to - from;
    if (this.partBytes > this.maxValueBytes) {
      // Dropped now, reported when the piece ends (finishKey / finishValue), as for a piece inside one chunk.
      this.parts = [];
      this.partBytes = 0;
      this.tooLarge = true;
      return;
    }
    // Copy: the stream may reuse its chunk buffers.
    this.parts.push(Buffer.from(chunk.subarray(from, to)));
  }

  private piece(chunk: Buffer, from: number, to: number): string {
    if (this.parts.length === 0) return chunk.toString("utf8", from, to);
    const whole = Buffer.concat([...this.parts, chunk.subarray(from, to)]);
    this.parts = [];
    this.partBytes = 0;
    return whole.toString("utf8");
  }

  /** Whether the piece ending at `to` is over the limit (the same answer however the file was chunked). */
  private overLimit(from: number, to: number): boolean {
    return this.tooLarge || this.partBytes + (from < 0 ? 0 : to - from) > this.maxValueBytes;
  }

  private finishKey(chunk: Buffer, from: number, to: number): void {
    if (this.overLimit(from, to)) {
      this.tooLarge = false;
      this.parts = [];
      this.partBytes = 0;
      this.structural(`a key longer than ${this.maxValueBytes} bytes (an unclosed quote?)`);
      return;
    }
    const text = this.piece(chunk, from, to);
    this.state = State.AfterKey;
    try {
      this.key = JSON.parse(text) as string;
    } catch {
      this.key = text.slice(1, -1);
    }
  }

  private finishValue(chunk: Buffer, from: number, to: number): void {
    this.state = State.AfterValue;
    if (this.overLimit(from, to)) {
      this.tooLarge = false;
      this.parts = [];
      this.partBytes = 0;
      this.events.push({
        kind: "error",
        line: this.keyLine,
        key: this.key,
        message: `the value of "${this.key}" is larger than ${this.maxValueBytes} bytes; skipped`,
      });
      return;
    }
    const text = from < 0 ? "" : this.piece(chunk, from, to);
    this.partBytes = 0;
    try {
      this.events.push({ kind: "entry", key: this.key, value: JSON.parse(text), line: this.keyLine });
    } catch (err) {
      this.events.push({
        kind: "error",
        line: this.keyLine,
        key: this.key,
        message: `the value of "${this.key}" is not valid JSON (${(err as Error).message})`,
      });
    }
  }
}

/**
 * Streams the entries of the top-level object in `path`, pulling one read chunk at a time (the consumer drives;
 * breaking out of the loop closes the file). A missing or unreadable file throws: that is a run failure.
 */
export async function* scanJsonObject(
  path: string,
  opts: { chunkBytes?: number; maxValueBytes?: number } = {},
): AsyncGenerator<JsonScanEvent> {
  const scanner = new TopLevelObjectScanner(opts.maxValueBytes);
  const stream = createReadStream(path, { highWaterMark: opts.chunkBytes ?? 1 << 20 });
  try {
    for await (const chunk of stream) {
      for (const event of scanner.push(chunk as Buffer)) yield event;
    }
    for (const event of scanner.end()) yield event;
  } finally {
    stream.destroy();
  }
}
