/**
 * Line charts of a run (loss, learning rate) as PNG: drawn as SVG, rendered by sharp. No plotting library: a chart
 * here is a few polylines, axes and labels.
 */
import sharp from "sharp";

export interface Series {
  label: string;
  points: [number, number][];
  color: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Plot y on a log scale (values <= 0 are dropped). */
  logY?: boolean;
}

export const escapeXml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** The chart as an SVG document. */
export function lineChartSvg(series: readonly Series[], o: ChartOptions): string {
  const width = o.width ?? 800;
  const height = o.height ?? 450;
  const m = { left: 80, right: 20, top: 40, bottom: 55 };
  const ty = (y: number) => (o.logY ? Math.log10(y) : y);
  const all = series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => ty(y));
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const py = (y: number) => height - m.bottom - ((ty(y) - y0) / (y1 - y0)) * (height - m.top - m.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16">${escapeXml(o.title)}</text>`,
  ];
  for (const t of niceTicks(x0, x1)) {
    const x = px(t);
    parts.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${height - m.bottom}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${height - m.bottom + 18}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    const yv = o.logY ? 10 ** t : t;
    const y = py(yv);
    parts.push(`<line x1="${m.left}" y1="${y}" x2="${width - m.right}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 8}" y="${y + 4}" text-anchor="end">${formatTick(yv)}</text>`);
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${height - m.top - m.bottom}" fill="none" stroke="#333"/>`,
    `<text x="${(m.left + width - m.right) / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text x="18" y="${(m.top + height - m.bottom) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(m.top + height - m.bottom) / 2})">${escapeXml(o.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    if (pts.length > 0) {
      const d = pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
      parts.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`);
    }
    const ly = m.top + 16 + i * 18;
    parts.push(
      `<line x1="${width - m.right - 150}" y1="${ly - 4}" x2="${width - m.right - 125}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`,
    );
    parts.push(`<text x="${width - m.right - 118}" y="${ly}">${escapeXml(s.label)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Renders the chart to a PNG file. */
export async function writeLineChartPng(
  file: string,
  series: readonly Series[],
  o: ChartOptions,
): Promise<void> {
  await sharp(Buffer.from(lineChartSvg(series, o)))
    .png()
    .toFile(file);
}
