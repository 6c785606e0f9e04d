/**
 * MSR-VTT 1k-A (the JSFusion test split): text -> video retrieval over 1,000 videos, one sentence each.
 *
 * Layout under `root` (names overridable):
 *   MSRVTT_JSFUSION_test.csv   key,vid_key,video_id,sentence   e.g. `ret0,msr9770,video9770,a person is ...`
 *   videos/all/<video_id>.<ext> ext one of mp4, webm, mkv, mov (tried in that order)
 *
 * One ref per row, in file order: the window starts at 0 (evaluation places its own windows over the probed
 * duration), the sentence is its one caption. The sentence is the last column; a sentence with unquoted commas
 * (the file does not quote) is joined back from the extra fields.
 */
import { join } from "node:path";
import type { ClipRef, ClipSource } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { headerIndex, readCsvRecords } from "./csv.js";
import {
  excerpt,
  findMediaFile,
  VIDEO_EXTENSIONS,
  type WindowOptions,
  where,
  windowLength,
} from "./source.js";

export interface MsrVttOptions extends WindowOptions {
  root: string;
  /** Default `<root>/MSRVTT_JSFUSION_test.csv`. */
  csv?: string;
  /** Folder of `<video_id>.<ext>` files; default `<root>/videos/all`. */
  videos?: string;
  skips: SkipLog;
}

const NAME = "msrvtt";

export function msrvtt(opts: MsrVttOptions): ClipSource {
  const csv = opts.csv ?? join(opts.root, "MSRVTT_JSFUSION_test.csv");
  const videos = opts.videos ?? join(opts.root, "videos", "all");
  const seconds = windowLength(opts);
  const { skips } = opts;

  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    let cols: Map<string, number> | undefined;
    let index = 0;
    // Untrimmed fields, so a sentence's unquoted commas can be joined back with the spaces after them.
    for await (const rec of readCsvRecords(csv, { comment: null, trim: false })) {
      const at = where(csv, rec.line);
      if ("error" in rec) {
        skips.record(NAME, "bad-row", `${at}: ${rec.error}. Fix or delete the line; it was skipped.`, {
          item: at,
          pass: epoch,
        });
        continue;
      }
      if (!cols) {
        cols = headerIndex(rec.fields.map((f) => f.trim()));
        if (!cols.has("video_id") || !cols.has("sentence")) {
          throw new Error(
            `${at}: expected the header key,vid_key,video_id,sentence; found '${excerpt(rec.text)}'. ` +
              "Pass the MSR-VTT 1k-A file MSRVTT_JSFUSION_test.csv.",
          );
        }
        continue;
      }
      const idColumn = cols.get("video_id")!;
      const sentenceColumn = cols.get("sentence")!;
      const lastColumn = sentenceColumn === cols.size - 1;
      const id = rec.fields[idColumn]?.trim() ?? "";
      const sentence = (
        lastColumn ? rec.fields.slice(sentenceColumn).join(",") : (rec.fields[sentenceColumn] ?? "")
      ).trim();
      const columnsOk = lastColumn ? rec.fields.length >= cols.size : rec.fields.length === cols.size;
      if (!columnsOk || id === "" || sentence === "") {
        skips.record(
          NAME,
          "bad-row",
          `${at}: expected ${cols.size} columns with a video_id and a sentence, found '${excerpt(rec.text)}'. ` +
            "Fix or delete the line; it was skipped.",
          { item: at, pass: epoch },
        );
        continue;
      }
      const path = await findMediaFile(videos, id, VIDEO_EXTENSIONS);
      if (!path) {
        skips.record(
          NAME,
          "missing-file",
          `${at}: no file for ${id} in ${videos} (looked for ${id}.{${VIDEO_EXTENSIONS.join(",")}}). ` +
            "Download it or drop the line; skipped.",
          { item: join(videos, `${id}.*`), pass: epoch },
        );
        continue;
      }
      yield {
        source: NAME,
        id,
        path,
        start: 0,
        end: seconds,
        index: index++,
        epoch,
        captions: [{ start: 0, end: seconds, text: sentence }],
        labels: [],
      };
    }
  }

  return { name: NAME, refs };
}
