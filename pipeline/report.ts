/**
 * `vatt report RUN --out report.html`: one self-contained HTML file of a run, with the same figures as the web
 * view (the curves drawn by pipeline/serve/svg.ts, inline), the latest evaluation beside chance, the skip table,
 * the embedding map of any embeddings file in the run folder, the effective config, and the run's images as data
 * URIs. No script, no network: it opens anywhere.
 */
import { readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { extname, join } from "node:path";
import {
  computeEmbeddingMap,
  type EmbeddingMap,
  type Labeller,
  synthLabeller,
} from "./serve/embedding-map.js";
import { contentType } from "./serve/files.js";
import { type RunView, readRun } from "./serve/runs.js";
import {
  type CurveSeries,
  escapeXml,
  evalCharts,
  evalTableHtml,
  histogramChart,
  lineChart,
  scatterChart,
} from "./serve/svg.js";

const CHARTS: { title: string; series: string[]; percent?: boolean }[] = [
  { title: "loss (NCE + λ·MIL-NCE)", series: ["loss", "nce", "milNce"] },
  { title: "learning rate", series: ["lr"] },
  { title: "examples / s", series: ["examplesPerSecond"] },
  { title: "data-wait share", series: ["dataWaitShare"], percent: true },
  { title: "gradient norm", series: ["gradNorm"] },
];

function curve(view: RunView, name: string): CurveSeries | undefined {
  const c = view.curves[name];
  return c?.step.length ? { name, step: c.step, value: c.last, min: c.min, max: c.max } : undefined;
}

const fmt = (v: unknown, digits = 4): string =>
  typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–";

/** The map and similarity histograms of each embeddings file (vatt embed) in the run folder, as the web view. */
async function embeddingFigures(runDir: string, labeller: Labeller | undefined): Promise<string> {
  const names = (await readdir(runDir)).filter((n) => /\.(arrow|parquet)$/i.test(n)).sort();
  const parts: string[] = [];
  for (const name of names) {
    let map: EmbeddingMap;
    try {
      map = await computeEmbeddingMap(join(runDir, name), "vt", labeller ? { labeller } : {});
    } catch (err) {
      parts.push(`<p class="problems">${escapeXml(name)}: ${escapeXml((err as Error).message)}</p>`);
      continue;
    }
    const points = map.points.map((p) => ({
      x: p.x,
      y: p.y,
      kind: p.kind,
      group: p.concept === "unknown" ? p.source || "(none)" : p.concept,
      label: `${p.id} ${p.start.toFixed(1)}-${p.end.toFixed(1)} s`,
    }));
    parts.push(`<h3>${escapeXml(name)}: ${map.items} items</h3><div class="grid">`);
    parts.push(scatterChart(points, { title: "S_vt: video and text together" }));
    const h = map.histogram;
    if (h) {
      parts.push(
        histogramChart(
          [
            { name: `positive ${h.pair} pairs`, counts: h.positive, color: "#2ca02c" },
            { name: "negative pairs", counts: h.negative, color: "#d62728" },
          ],
          h.lo,
          h.hi,
          { title: "pair similarities", height: 260 },
        ),
      );
    }
    parts.push("</div>");
  }
  return parts.length ? `<h2>Embedding map</h2>${parts.join("")}` : "";
}

/**
 * The report's HTML for one run folder. `dataset`: the dataset folder, whose synth.json (when there is one) names
 * the concept of each clip on the map.
 */
export async function renderReport(runDir: string, o: { dataset?: string } = {}): Promise<string> {
  if (!(await stat(runDir).catch(() => undefined))?.isDirectory()) {
    throw new Error(`run folder '${runDir}' does not exist: give a folder written by 'vatt pretrain'`);
  }
  const { view } = await readRun(runDir, "");
  if (view.status === "empty" && view.config === undefined) {
    throw new Error(`'${runDir}' holds neither metrics.jsonl nor config.json: is it a run folder?`);
  }
  const last = view.last ?? {};
  const t2v = (view.eval as { textToVideo?: Record<string, number> & { chance: Record<string, number> } })
    ?.textToVideo;
  const figures: [string, string][] = [
    ["step", last.step === undefined ? "–" : String(last.step)],
    ["loss", fmt(last.loss)],
    ["NCE (video-audio)", fmt(last.nce)],
    ["MIL-NCE (video-text)", fmt(last.milNce)],
    ["learning rate", typeof last.lr === "number" ? last.lr.toExponential(2) : "–"],
    ["examples / s", fmt(last.examplesPerSecond, 1)],
    ["data wait", typeof last.dataWaitShare === "number" ? `${(100 * last.dataWaitShare).toFixed(0)}%` : "–"],
  ];
  if (t2v)
    figures.push(["text→video R@10", `${fmt(t2v["R@10"], 3)} (chance ${fmt(t2v.chance?.["R@10"], 3)})`]);
  const charts = CHARTS.map((g) => {
    const series = g.series.map((s) => curve(view, s)).filter((s): s is CurveSeries => s !== undefined);
    return series.length ? lineChart(series, { title: g.title, percent: g.percent }) : "";
  }).join("");
  const evalChartsSvg = evalCharts(view.evalCurves)
    .map((g) => lineChart(g.series, { title: g.title }))
    .join("");
  const skips = view.skips.length
    ? `<table><tr><th>where</th><th>reason</th><th>count</th><th>steps / items</th></tr>${view.skips
        .map(
          (s) =>
            `<tr><td>${escapeXml(s.where)}</td><td>${escapeXml(s.reason)}</td><td>${s.count}</td><td>${s.steps ? s.steps.slice(0, 20).join(", ") : escapeXml(s.detail ?? "")}</td></tr>`,
        )
        .join("")}</table>`
    : "<p>Nothing skipped.</p>";
  const images: string[] = [];
  for (const name of view.images) {
    const bytes = await readFile(join(runDir, name));
    const type = contentType(name);
    images.push(
      `<figure><img alt="${escapeXml(name)}" src="data:${type};base64,${bytes.toString("base64")}"><figcaption>${escapeXml(name)}</figcaption></figure>`,
    );
  }
  const problems = view.problems.map((p) => `<li>${escapeXml(p.message)}</li>`).join("");
  const title = `vatt run ${escapeXml(runDir)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:.5em}
dl div{background:#f7f7f9;border-radius:4px;padding:.4em .6em}dt{font-size:11px;color:#666}dd{margin:0;font-size:17px;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:.5em}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left}
img{max-width:100%;border:1px solid #ddd}pre{background:#f7f7f9;padding:.6em;overflow:auto}.problems{color:#a00}
</style></head><body>
<h1>${title}</h1>
<p>Status: <b>${view.status}</b>; report written ${new Date().toISOString()}.</p>
${problems ? `<ul class="problems">${problems}</ul>` : ""}
<dl>${figures.map(([k, v]) => `<div><dt>${escapeXml(k)}</dt><dd>${escapeXml(v)}</dd></div>`).join("")}</dl>
<h2>Training curves</h2><div class="grid">${charts || "<p>No step lines in metrics.jsonl.</p>"}</div>
<h2>Evaluation (dashed: chance)</h2>${evalTableHtml(view.evalFigures)}<div class="grid">${evalChartsSvg}</div>
${await embeddingFigures(runDir, o.dataset ? await synthLabeller(o.dataset) : undefined)}
<h2>Skips</h2>${skips}
<h2>Images</h2>${images.join("") || "<p>No images in the run folder.</p>"}
<h2>Effective config</h2><pre>${escapeXml(JSON.stringify(view.config ?? null, null, 2))}</pre>
</body></html>
`;
}

/** Writes the report of `runDir` to `out` (whole or not at all). */
export async function writeReport(
  runDir: string,
  out: string,
  o: { dataset?: string } = {},
): Promise<{ out: string; bytes: number }> {
  if (extname(out).toLowerCase() !== ".html") {
    throw new Error(`--out '${out}': the report is one HTML file; give a name ending in .html`);
  }
  const html = await renderReport(runDir, o);
  const partial = `${out}.partial-${process.pid}`;
  await writeFile(partial, html);
  await rename(partial, out);
  return { out, bytes: Buffer.byteLength(html) };
}
