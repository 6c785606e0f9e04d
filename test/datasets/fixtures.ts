/** Small helpers for dataset tests: temp folders with hand-written files, and collecting a stream. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after } from "node:test";
import type { ClipRef, ClipSource } from "../../core/records.js";

/** A fresh temp folder holding `files` (path -> content), removed after the test file. */
export async function fixtureDir(files: Record<string, string | Uint8Array>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "vatt-test-"));
  after(() => rm(root, { recursive: true, force: true }));
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
  return root;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** A source of `count` refs per epoch named `${name}-${i}`, counting how many were pulled. */
export function listSource(name: string, count: number): ClipSource & { pulled: number } {
  const source = {
    name,
    pulled: 0,
    async *refs(epoch: number): AsyncGenerator<ClipRef> {
      for (let i = 0; i < count; i++) {
        source.pulled++;
        yield {
          source: name,
          id: `${name}-${i}`,
          path: `/${name}/${i}.mp4`,
          start: 0,
          end: 1,
          index: i,
          epoch,
          captions: [],
          labels: [],
        };
      }
    },
  };
  return source;
}
