/**
 * The word vocabulary of a transcript file (HowTo100M caption.json), streamed with bounded memory: only the word
 * counts are held, never the file.
 */
import { rename, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import type { SkipLog } from "../core/skips.js";
import { scanJsonObject } from "../datasets/json-scan.js";
import { where } from "../datasets/source.js";
import { countWords, type Vocabulary, vocabularyFromCounts } from "../operators/tokenize.js";

export interface CaptionWordCounts {
  counts: Map<string, number>;
  videos: number;
  captions: number;
}

/** Counts the words of every caption text in caption.json; malformed entries are recorded and skipped. */
export async function countCaptionWords(path: string, skips: SkipLog): Promise<CaptionWordCounts> {
  const tag = `vocab:${basename(path)}`;
  const counts = new Map<string, number>();
  let videos = 0;
  let captions = 0;
  for await (const event of scanJsonObject(path)) {
    if (event.kind === "error") {
      skips.record(tag, "bad-json", `${where(path, event.line)}: ${event.message}. The entry was skipped.`, {
        item: where(path, event.line),
      });
      continue;
    }
    const text = (event.value as { text?: unknown } | null)?.text;
    if (!Array.isArray(text)) {
      skips.record(
        tag,
        "bad-captions",
        `${where(path, event.line)}: video "${event.key}" has no "text" array. The video was skipped.`,
        { item: where(path, event.line) },
      );
      continue;
    }
    videos++;
    for (const t of text) {
      if (typeof t !== "string") continue;
      captions++;
      countWords(counts, t);
    }
  }
  return { counts, videos, captions };
}

/** Builds the vocabulary of `size` entries (special tokens included) from a caption file. */
export async function captionVocabulary(
  path: string,
  size: number,
  skips: SkipLog,
): Promise<{ vocab: Vocabulary; distinctWords: number; videos: number; captions: number }> {
  const { counts, videos, captions } = await countCaptionWords(path, skips);
  return { vocab: vocabularyFromCounts(counts, size), distinctWords: counts.size, videos, captions };
}

/** Writes the vocabulary (one token per line) atomically: a reader never sees half a file. */
export async function writeVocabulary(vocab: Vocabulary, path: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, vocab.toText(), "utf8");
  await rename(tmp, path);
}
