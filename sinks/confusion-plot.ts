/**
 * The confusion matrix as a PNG heat map: drawn as SVG, rendered by sharp (as sinks/plots.ts does for line charts).
 * Each row is normalised by its true-class count, so a cell's shade is the share of that class predicted as the
 * column's class (white 0, dark blue 1); the diagonal is recall. Class names label the axes while they fit.
 */
import sharp from "sharp";
import { escapeXml } from "./plots.js";

export interface ConfusionPlotOptions {
  title: string;
  /** Class names in index order (default: the indices). */
  classNames?: readonly string[];
  /** Side of the square grid in pixels (default: 12 px a class, within [240, 1600]). */
  gridSize?: number;
}

/** White -> dark blue, by a share in [0, 1]. */
function shade(share: number): string {
  const t = Math.min(1, Math.max(0, share));
  const mix = (from: number, to: number) => Math.round(from + (to - from) * t);
  return `rgb(${mix(255, 8)},${mix(255, 48)},${mix(255, 107)})`;
}

/** The heat map as an SVG document. `counts` is [C x C], row = true class, column = predicted. */
export function confusionSvg(counts: ArrayLike<number>, classes: number, o: ConfusionPlotOptions): string {
  if (counts.length !== classes * classes)
    throw new RangeError(`confusionSvg: ${counts.length} counts for ${classes} x ${classes} classes`);
  const names = o.classNames ?? Array.from({ length: classes }, (_, i) => String(i));
  if (names.length !== classes)
    throw new RangeError(`confusionSvg: ${names.length} class names for ${classes} classes`);
  const grid = o.gridSize ?? Math.min(1600, Math.max(240, classes * 12));
  const cell = grid / classes;
  const showNames = cell >= 8;
  const fontSize = Math.min(12, Math.max(6, cell * 0.8));
  const longest = showNames ? Math.max(...names.map((n) => n.length)) : 0;
  const labelRoom = showNames ? Math.min(220, longest * fontSize * 0.6 + 10) : 30;
  const m = { left: labelRoom + 30, top: labelRoom + 50, right: 20, bottom: 30 };
  const width = m.left + grid + m.right;
  const height = m.top + grid + m.bottom;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${Math.ceil(height)}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16">${escapeXml(o.title)}</text>`,
  ];
  for (let r = 0; r < classes; r++) {
    let total = 0;
    for (let c = 0; c < classes; c++) total += counts[r * classes + c];
    for (let c = 0; c < classes; c++) {
      const v = counts[r * classes + c];
      if (v === 0) continue;
      const x = m.left + c * cell;
      const y = m.top + r * cell;
      parts.push(
        `<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${cell.toFixed(2)}" height="${cell.toFixed(2)}" fill="${shade(v / total)}"/>`,
      );
    }
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${grid}" height="${grid}" fill="none" stroke="#333"/>`);
  if (showNames) {
    names.forEach((name, i) => {
      const centre = i * cell + cell / 2 + fontSize / 3;
      const label = escapeXml(name);
      parts.push(
        `<text x="${m.left - 4}" y="${(m.top + centre).toFixed(2)}" text-anchor="end">${label}</text>`,
      );
      const x = (m.left + centre).toFixed(2);
      parts.push(`<text x="${x}" y="${m.top - 4}" transform="rotate(-90 ${x} ${m.top - 4})">${label}</text>`);
    });
  }
  parts.push(
    `<text x="${m.left + grid / 2}" y="${height - 8}" text-anchor="middle" font-size="13">predicted class</text>`,
    `<text x="14" y="${m.top + grid / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 14 ${m.top + grid / 2})">true class</text>`,
    "</svg>",
  );
  return parts.join("\n");
}

/** Renders the heat map to a PNG file. */
export async function writeConfusionPng(
  file: string,
  counts: ArrayLike<number>,
  classes: number,
  o: ConfusionPlotOptions,
): Promise<void> {
  await sharp(Buffer.from(confusionSvg(counts, classes, o)))
    .png()
    .toFile(file);
}
