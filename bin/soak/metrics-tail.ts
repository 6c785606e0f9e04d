/** Reads metrics.jsonl as it grows: complete lines only, unparseable ones counted (a disk filled mid-line). */
import { closeSync, openSync, readSync, statSync } from "node:fs";

export class MetricsTail {
  private offset = 0;
  private rest = "";
  badLines: string[] = [];
  constructor(
    private readonly file: string,
    from = 0,
  ) {
    this.offset = from;
  }

  read(): Record<string, unknown>[] {
    const size = statSync(this.file, { throwIfNoEntry: false })?.size ?? 0;
    if (size < this.offset) {
      this.badLines.push(`(metrics.jsonl shrank from ${this.offset} to ${size} bytes)`);
      this.offset = size;
    }
    if (size === this.offset) return [];
    const buf = Buffer.alloc(size - this.offset);
    const fd = openSync(this.file, "r");
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset = size;
    const text = this.rest + buf.toString("utf8");
    const lines = text.split("\n");
    this.rest = lines.pop() ?? "";
    const out: Record<string, unknown>[] = [];
    for (const line of lines) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        this.badLines.push(line.slice(0, 200));
      }
    }
    return out;
  }
}
