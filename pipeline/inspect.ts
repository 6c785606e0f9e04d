/**
 * A contact sheet of augmented examples, so a person can see what the model sees: per example one row with a
 * caption line (id, window, masks, captions or labels), the frames after augmentation (mapped back from [-1, 1]),
 * and the audio waveform as a strip. Drawn with sharp: raw RGB tiles composited onto a canvas plus one SVG overlay
 * for the text and the waveforms.
 *
 * Crops are resampled in typed arrays (the clip keeps its decoded window, shown on the sheet): the same boxes,
 * flips and colours as training draws, which by default resamples in ffmpeg's filter graph instead, so training's
 * pixels differ from these by resampling alone (test/pipeline/stream.test.ts compares the two).
 */
import sharp, { type OverlayOptions } from "sharp";
import { flow, fromIterable, mapEach, takeFirst, toAsyncIterable } from "../core/flow.js";
import type { ClipRef, Example } from "../core/records.js";
import { SkipLog } from "../core/skips.js";
import { type AugmentOptions, augmentClip } from "../operators/augment.js";
import type { DecodeOptions } from "../operators/decode.js";
import { decodeClips } from "./stream.js";

export interface InspectOptions {
  /** Examples (rows) on the sheet. */
  examples: number;
  /** Frames shown per example, evenly spaced over the clip. */
  framesShown: number;
  seed: number;
  decode?: Partial<DecodeOptions>;
  augment?: Partial<AugmentOptions>;
  /** Text per class index, for labelled sources. */
  classNames?: readonly string[];
  skips?: SkipLog;
}

export interface SheetRow {
  ref: ClipRef;
  example: Example;
}

const PAD = 8;
const TEXT_HEIGHT = 36;
const WAVE_HEIGHT = 48;

/** [-1, 1] floats of frame `t` -> uint8 RGB. */
export function frameToRgb(example: Example, t: number): Buffer {
  const [, h, w] = example.videoShape;
  const size = h * w * 3;
  const out = Buffer.alloc(size);
  const src = example.video.subarray(t * size, (t + 1) * size);
  for (let i = 0; i < size; i++) out[i] = Math.max(0, Math.min(255, Math.round((src[i] + 1) * 127.5)));
  return out;
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!,
  );
}

/** Min/max envelope of the audio per pixel column, as an SVG path inside the box. */
function waveformPath(audio: Float32Array, left: number, top: number, width: number, height: number): string {
  const mid = top + height / 2;
  const per = Math.max(1, Math.floor(audio.length / width));
  const parts: string[] = [];
  for (let x = 0; x < width; x++) {
    let lo = 0;
    let hi = 0;
    for (let i = x * per; i < Math.min(audio.length, (x + 1) * per); i++) {
      const v = audio[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    parts.push(
      `M${left + x} ${(mid - hi * (height / 2)).toFixed(1)}V${(mid - lo * (height / 2) + 0.5).toFixed(1)}`,
    );
  }
  return parts.join("");
}

function describeRow(row: SheetRow, classNames?: readonly string[]): [string, string] {
  const { ref, example } = row;
  const head =
    `${ref.source} ${ref.id}  #${ref.index}  ${ref.start.toFixed(2)}-${ref.end.toFixed(2)} s` +
    `  audio ${example.audioMask ? "yes" : "none"}${example.padded ? "  padded (looped)" : ""}`;
  const captions = ref.captions.map((c) => c.text).join(" | ");
  const labels = ref.labels.map((l) => classNames?.[l] ?? `class ${l}`).join(" | "); // AudioSet names often contain commas
  const detail = captions ? `captions: ${captions}` : labels ? `labels: ${labels}` : "no text, no labels";
  return [head, detail.length > 180 ? `${detail.slice(0, 177)}...` : detail];
}

/** Draws the sheet for rows already made; returns PNG bytes. */
export async function renderContactSheet(
  rows: readonly SheetRow[],
  opts: { framesShown: number; classNames?: readonly string[] },
): Promise<Buffer> {
  if (rows.length === 0) throw new Error("contact sheet: no examples to draw (every clip was skipped?)");
  const [frames, h, w] = rows[0].example.videoShape;
  const shown = Math.min(opts.framesShown, frames);
  const stripWidth = shown * w + (shown - 1) * 2;
  const width = Math.max(stripWidth, 480) + 2 * PAD;
  const rowHeight = TEXT_HEIGHT + h + 4 + WAVE_HEIGHT + PAD;
  const height = PAD + rows.length * rowHeight;
  const tiles: OverlayOptions[] = [];
  const svg: string[] = [];
  rows.forEach((row, r) => {
    const top = PAD + r * rowHeight;
    const [head, detail] = describeRow(row, opts.classNames);
    svg.push(`<text x="${PAD}" y="${top + 13}" class="head">${escapeXml(head)}</text>`);
    svg.push(`<text x="${PAD}" y="${top + 29}" class="detail">${escapeXml(detail)}</text>`);
    for (let k = 0; k < shown; k++) {
      const t = shown === 1 ? 0 : Math.round((k * (frames - 1)) / (shown - 1));
      tiles.push({
        input: frameToRgb(row.example, t),
        raw: { width: w, height: h, channels: 3 },
        left: PAD + k * (w + 2),
        top: top + TEXT_HEIGHT,
      });
    }
    const waveTop = top + TEXT_HEIGHT + h + 4;
    svg.push(
      `<rect x="${PAD}" y="${waveTop}" width="${stripWidth}" height="${WAVE_HEIGHT}" class="wavebg"/>`,
    );
    svg.push(
      `<path d="${waveformPath(row.example.audio, PAD, waveTop, stripWidth, WAVE_HEIGHT)}" class="wave"/>`,
    );
  });
  const overlay = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      "<style>.head{font:bold 12px sans-serif;fill:#eee}.detail{font:11px sans-serif;fill:#bbb}" +
      ".wavebg{fill:#222}.wave{stroke:#6cf;stroke-width:1}</style>" +
      `${svg.join("")}</svg>`,
  );
  return sharp({ create: { width, height, channels: 3, background: { r: 24, g: 24, b: 28 } } })
    .composite([...tiles, { input: overlay, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

/** Decodes and augments the first `examples` refs (skipping bad files) and draws them. */
export async function inspectRefs(
  refs: AsyncIterable<ClipRef> | Iterable<ClipRef>,
  opts: InspectOptions,
): Promise<Buffer> {
  const skips = opts.skips ?? new SkipLog();
  const augment = { ...opts.augment, seed: opts.seed };
  const rows: SheetRow[] = [];
  const made = flow(
    fromIterable(refs),
    decodeClips({ ...opts.decode, seed: opts.seed }, { skips, concurrency: 2, buffer: 0 }),
    mapEach((clip) => ({ ref: clip.ref, example: augmentClip(clip, augment) })),
    takeFirst(opts.examples),
  );
  for await (const row of toAsyncIterable(made)) rows.push(row);
  if (rows.length === 0) {
    const why = skips.count > 0 ? `; ${skips.count} skipped: ${JSON.stringify(skips.byReason())}` : "";
    throw new Error(`no example could be decoded${why}`);
  }
  return renderContactSheet(rows, { framesShown: opts.framesShown, classNames: opts.classNames });
}
