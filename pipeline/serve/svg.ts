/**
 * Charts as SVG text, with no imports: the web page loads this very module (compiled, served at /lib/svg.js) and
 * `vatt report` inlines its output, so both draw the same figures. Curves take downsampled buckets (min, max,
 * last): the line follows the last value of each bucket and a light band spans its min..max.
 */

export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#17becf",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
];

export interface CurveSeries {
  name: string;
  step: readonly number[];
  value: readonly number[];
  min?: readonly number[];
  max?: readonly number[];
  color?: string;
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  width?: number;
  height?: number;
  /** Shares of one (data-wait) read better as percentages. */
  percent?: boolean;
  logY?: boolean;
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A short label for an axis tick: 3 significant digits, k/M for big step counts. */
export function tickLabel(v: number, percent = false): string {
  if (percent) return `${(v * 100).toFixed(0)}%`;
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return `${+v.toPrecision(3)}`;
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

function extent(values: Iterable<number>): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return [0, 1];
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  return [lo, hi];
}

/** A line chart of one or more curves over steps, with a legend. */
export function lineChart(series: readonly CurveSeries[], o: ChartOptions): string {
  const width = o.width ?? 420;
  const height = o.height ?? 220;
  const m = { left: 52, right: 12, top: 24, bottom: 34 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const shown = series.filter((s) => s.step.length > 0);
  const ty = (v: number) => (o.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const [x0, x1] = extent(shown.flatMap((s) => s.step));
  const [y0, y1] = extent(shown.flatMap((s) => [...(s.min ?? s.value), ...(s.max ?? s.value)].map(ty)));
  const pad = (y1 - y0) * 0.05;
  const lo = y0 - pad;
  const hi = y1 + pad;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => m.top + ph - ((ty(y) - lo) / (hi - lo || 1)) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" data-title="${escapeXml(o.title)}">`,
    `<text x="${m.left}" y="15" class="chart-title" font-size="13" font-weight="600">${escapeXml(o.title)}</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`,
  ];
  for (const t of niceTicks(lo, hi, 4)) {
    const y = m.top + ph - ((t - lo) / (hi - lo || 1)) * ph;
    const label = o.logY ? tickLabel(10 ** t) : tickLabel(t, o.percent);
    parts.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eee"/>`,
      `<text x="${m.left - 4}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#555">${label}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1, 5)) {
    const x = sx(t);
    parts.push(
      `<text x="${x.toFixed(1)}" y="${m.top + ph + 14}" text-anchor="middle" font-size="10" fill="#555">${tickLabel(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${m.left + pw / 2}" y="${height - 4}" text-anchor="middle" font-size="10" fill="#555">step</text>`,
  );
  shown.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    if (s.min && s.max && s.min.some((v, k) => v !== s.max![k])) {
      const upper = s.step.map((x, k) => `${sx(x).toFixed(1)},${sy(s.max![k]).toFixed(1)}`);
      const lower = s.step.map((x, k) => `${sx(x).toFixed(1)},${sy(s.min![k]).toFixed(1)}`).reverse();
      parts.push(
        `<polygon points="${[...upper, ...lower].join(" ")}" fill="${color}" opacity="0.15" stroke="none"/>`,
      );
    }
    const pts = s.step.map((x, k) => `${sx(x).toFixed(1)},${sy(s.value[k]).toFixed(1)}`).join(" ");
    const dash = s.dashed ? ` stroke-dasharray="5 4"` : "";
    parts.push(
      `<polyline class="curve" data-series="${escapeXml(s.name)}" data-points="${s.step.length}" data-last="${s.value[s.value.length - 1]}" points="${pts}" fill="none" stroke="${color}" stroke-width="1.5"${dash}/>`,
    );
    if (s.step.length === 1) {
      parts.push(
        `<circle cx="${sx(s.step[0]).toFixed(1)}" cy="${sy(s.value[0]).toFixed(1)}" r="3" fill="${color}"/>`,
      );
    }
    const lx = m.left + 8 + (i % 3) * Math.floor(pw / 3);
    const ly = m.top + 12 + Math.floor(i / 3) * 12;
    parts.push(
      `<line x1="${lx}" x2="${lx + 14}" y1="${ly - 3}" y2="${ly - 3}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 18}" y="${ly}" font-size="10">${escapeXml(s.name)}</text>`,
    );
  });
  if (shown.length === 0) {
    parts.push(
      `<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" text-anchor="middle" font-size="12" fill="#888">no data yet</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("");
}

export interface HistogramSeries {
  name: string;
  /** Counts per bin; bins span [lo, hi] evenly. */
  counts: readonly number[];
  color?: string;
}

/** Overlaid histograms as shares of each series' total (Figure 5's positive vs negative pair similarities). */
export function histogramChart(
  series: readonly HistogramSeries[],
  lo: number,
  hi: number,
  o: ChartOptions,
): string {
  const width = o.width ?? 420;
  const height = o.height ?? 220;
  const m = { left: 44, right: 12, top: 24, bottom: 34 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const shares = series.map((s) => {
    const total = s.counts.reduce((a, b) => a + b, 0) || 1;
    return s.counts.map((c) => c / total);
  });
  const top = Math.max(1e-9, ...shares.flat());
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" data-title="${escapeXml(o.title)}">`,
    `<text x="${m.left}" y="15" font-size="13" font-weight="600">${escapeXml(o.title)}</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`,
  ];
  for (const t of niceTicks(lo, hi, 4)) {
    const x = m.left + ((t - lo) / (hi - lo)) * pw;
    parts.push(
      `<text x="${x.toFixed(1)}" y="${m.top + ph + 14}" text-anchor="middle" font-size="10" fill="#555">${tickLabel(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${m.left + pw / 2}" y="${height - 4}" text-anchor="middle" font-size="10" fill="#555">cosine similarity</text>`,
  );
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const bw = pw / s.counts.length;
    shares[i].forEach((share, k) => {
      if (share === 0) return;
      const h = (share / top) * ph;
      parts.push(
        `<rect class="bar" data-series="${escapeXml(s.name)}" x="${(m.left + k * bw).toFixed(1)}" y="${(m.top + ph - h).toFixed(1)}" width="${Math.max(0.5, bw - 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}" opacity="0.55"/>`,
      );
    });
    const total = s.counts.reduce((a, b) => a + b, 0);
    parts.push(
      `<rect x="${m.left + 8}" y="${m.top + 6 + i * 13}" width="10" height="8" fill="${color}" opacity="0.7"/>`,
      `<text x="${m.left + 22}" y="${m.top + 14 + i * 13}" font-size="10">${escapeXml(s.name)} (${total} pairs)</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

export interface MapPoint {
  x: number;
  y: number;
  /** "video", "text", "audio": drawn as circle, triangle, square. */
  kind: string;
  /** What the colour stands for (a concept, a class, a source). */
  group: string;
  label: string;
}

/** The embedding map: one mark per point, coloured by group, shaped by kind, with a legend of groups. */
export function scatterChart(points: readonly MapPoint[], o: ChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 520;
  const legendWidth = 150;
  const m = { left: 10, right: legendWidth, top: 24, bottom: 10 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const [x0, x1] = extent(points.map((p) => p.x));
  const [y0, y1] = extent(points.map((p) => p.y));
  const groups = [...new Set(points.map((p) => p.group))].sort();
  const colorOf = new Map(groups.map((g, i) => [g, PALETTE[i % PALETTE.length]]));
  const sx = (x: number) => m.left + 6 + ((x - x0) / (x1 - x0 || 1)) * (pw - 12);
  const sy = (y: number) => m.top + 6 + ((y1 - y) / (y1 - y0 || 1)) * (ph - 12);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart map" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" data-title="${escapeXml(o.title)}">`,
    `<text x="${m.left}" y="15" font-size="13" font-weight="600">${escapeXml(o.title)}</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`,
  ];
  for (const p of points) {
    const x = sx(p.x);
    const y = sy(p.y);
    const c = colorOf.get(p.group);
    const title = `<title>${escapeXml(`${p.kind}: ${p.label} (${p.group})`)}</title>`;
    const attrs = `class="pt" data-kind="${escapeXml(p.kind)}" data-group="${escapeXml(p.group)}" fill="${c}" fill-opacity="0.75"`;
    if (p.kind === "text") {
      parts.push(
        `<path ${attrs} d="M${x.toFixed(1)},${(y - 4).toFixed(1)}l4,7h-8z" stroke="#000" stroke-width="0.4">${title}</path>`,
      );
    } else if (p.kind === "audio") {
      parts.push(
        `<rect ${attrs} x="${(x - 3).toFixed(1)}" y="${(y - 3).toFixed(1)}" width="6" height="6">${title}</rect>`,
      );
    } else {
      parts.push(`<circle ${attrs} cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5">${title}</circle>`);
    }
  }
  const lx = width - legendWidth + 10;
  groups.slice(0, 24).forEach((g, i) => {
    parts.push(
      `<circle cx="${lx}" cy="${m.top + 10 + i * 15}" r="4" fill="${colorOf.get(g)}"/>`,
      `<text x="${lx + 9}" y="${m.top + 14 + i * 15}" font-size="11">${escapeXml(g)}</text>`,
    );
  });
  const kinds = [...new Set(points.map((p) => p.kind))];
  parts.push(
    `<text x="${lx}" y="${height - 12}" font-size="10" fill="#555">${escapeXml(kinds.map((k) => `${k}: ${k === "text" ? "▲" : k === "audio" ? "■" : "●"}`).join("  "))}</text>`,
  );
  parts.push("</svg>");
  return parts.join("");
}

/** An evaluation figure over steps beside its chance level (as pipeline/serve/runs.ts gives them). */
export interface EvalCurveData {
  name: string;
  step: readonly number[];
  value: readonly number[];
  chance: readonly number[];
}

/**
 * Evaluation charts: one per retrieval direction ("textToVideo R@10" goes under textToVideo), one for the flat
 * figures of a transfer run (top1, mAP, ...); each figure solid, its chance level dashed in the same colour.
 * Median ranks are left out (another scale).
 */
export function evalCharts(curves: readonly EvalCurveData[]): { title: string; series: CurveSeries[] }[] {
  const groups = new Map<string, CurveSeries[]>();
  for (const c of curves) {
    const cut = c.name.indexOf(" ");
    const title = cut > 0 ? c.name.slice(0, cut) : "evaluation";
    const name = cut > 0 ? c.name.slice(cut + 1) : c.name;
    if (name === "medianRank" || name === "dprime") continue;
    const list = groups.get(title) ?? [];
    const color = PALETTE[(list.length / 2) % PALETTE.length];
    list.push({ name, step: c.step, value: c.value, color });
    if (c.chance.some(Number.isFinite)) {
      list.push({ name: `${name} chance`, step: c.step, value: c.chance, color, dashed: true });
    }
    groups.set(title, list);
  }
  return [...groups].map(([title, series]) => ({ title, series }));
}

/** The latest evaluation as an HTML table: figure, value, chance, value / chance. */
export function evalTableHtml(figures: readonly { name: string; value: number; chance?: number }[]): string {
  if (figures.length === 0) return "<p>No evaluation (eval.json) yet.</p>";
  const fmt = (v: number | undefined) =>
    v === undefined ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(3);
  const rows = figures.map((f) => {
    const ratio =
      f.chance !== undefined && f.chance > 0 && !/medianRank/.test(f.name)
        ? `${(f.value / f.chance).toFixed(1)}x`
        : "";
    return `<tr data-figure="${escapeXml(f.name)}"><td>${escapeXml(f.name)}</td><td>${fmt(f.value)}</td><td>${fmt(f.chance)}</td><td>${ratio}</td></tr>`;
  });
  return `<table class="eval"><thead><tr><th>figure</th><th>value</th><th>chance</th><th>× chance</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}
