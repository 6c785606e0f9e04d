// The vatt web view: plain ES modules, no framework. Charts come from /lib/svg.js, the same module `vatt report`
// draws with. State lives in one object per tab; every render redraws from it.
import { evalCharts, evalTableHtml, histogramChart, lineChart, scatterChart } from "/lib/svg.js";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, text = "") => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
};
const api = async (path) => {
  const r = await fetch(path);
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error ?? `${r.status}`);
  return body;
};
const fmt = (v, digits = 4) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–");

/** Charts of a run's step lines: title, series names, options. Series not listed go under "other". */
const CHARTS = [
  { title: "loss (NCE + λ·MIL-NCE)", series: ["loss", "nce", "milNce"] },
  { title: "learning rate", series: ["lr"] },
  { title: "examples / s", series: ["examplesPerSecond"] },
  { title: "data-wait share", series: ["dataWaitShare"], percent: true },
  { title: "gradient norm", series: ["gradNorm"] },
];
const NOT_CURVES = new Set(["elapsedSeconds", "tensors", "skippedSteps"]);

function chartGroups(curves) {
  const listed = new Set(CHARTS.flatMap((c) => c.series));
  const groups = CHARTS.filter((c) => c.series.some((s) => curves[s]));
  for (const name of Object.keys(curves).sort()) {
    if (!listed.has(name) && !NOT_CURVES.has(name)) groups.push({ title: name, series: [name] });
  }
  return groups;
}

function seriesOf(curves, name, extra = {}) {
  const c = curves[name];
  return c ? { name, step: c.step, value: c.last, min: c.min, max: c.max, ...extra } : undefined;
}

// ---------- tabs ----------
for (const b of document.querySelectorAll("#tabs button")) {
  b.addEventListener("click", () => showTab(b.dataset.tab));
}
function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button"))
    b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  if (name === "map") loadMapList();
  if (name === "compare") renderCompare();
  location.hash =
    name === "runs" && current.id !== undefined ? `run=${encodeURIComponent(current.id)}` : name;
}

// ---------- runs ----------
const current = { id: undefined, view: undefined, source: undefined, pending: false };
let runIds = [];

async function loadRuns() {
  const { runs } = await api("/api/runs");
  runIds = runs.map((r) => r.id);
  const list = $("#run-list");
  list.replaceChildren();
  for (const r of runs) {
    const li = el("li", { "data-run": r.id, "data-status": r.status }, r.id || "(this folder)");
    li.append(el("span", { class: `badge ${r.status}` }, r.status));
    li.addEventListener("click", () => openRun(r.id));
    list.append(li);
  }
  for (const sel of ["#cmp-a", "#cmp-b"]) {
    const s = $(sel);
    s.replaceChildren(...runs.map((r) => el("option", { value: r.id }, r.id || "(this folder)")));
  }
  if (runs.length > 1) $("#cmp-b").selectedIndex = 1;
  return runs;
}

async function openRun(id) {
  current.source?.close();
  current.id = id;
  $("#live-indicator").hidden = true;
  for (const li of document.querySelectorAll("#run-list li"))
    li.classList.toggle("active", li.dataset.run === id);
  current.view = await api(`/api/run?id=${encodeURIComponent(id)}`);
  location.hash = `run=${encodeURIComponent(id)}`;
  renderRun();
  follow(id, current.view.offset);
}

/** Follows metrics.jsonl as it grows: step lines are appended to the curves, other lines refetch the run. */
function follow(id, offset) {
  const source = new EventSource(`/api/stream?id=${encodeURIComponent(id)}&from=${offset}`);
  current.source = source;
  source.addEventListener("lines", (e) => {
    if (current.id !== id) return;
    const { records } = JSON.parse(e.data);
    let other = false;
    for (const r of records) {
      if (r.event === "step" && typeof r.step === "number") appendStep(current.view, r);
      else other = true;
    }
    $("#live-indicator").hidden = false;
    if (other) refetchSoon(id);
    else scheduleRender();
  });
  source.addEventListener("reset", () => refetchSoon(id));
}

function appendStep(view, r) {
  for (const [key, v] of Object.entries(r)) {
    if (key === "step" || typeof v !== "number") continue;
    if (!view.curves[key]) view.curves[key] = { step: [], last: [], min: [], max: [], points: 0 };
    const c = view.curves[key];
    c.step.push(r.step);
    c.last.push(v);
    c.min.push(v);
    c.max.push(v);
    c.points++;
  }
  view.last = {
    ...(view.last ?? {}),
    ...Object.fromEntries(Object.entries(r).filter(([, v]) => typeof v === "number")),
  };
  if (view.status !== "corrupt") view.status = "live";
  if ((view.curves.loss?.step.length ?? 0) > 4000) refetchSoon(current.id); // the server downsamples again
}

function refetchSoon(id) {
  if (current.pending) return;
  current.pending = true;
  setTimeout(async () => {
    current.pending = false;
    if (current.id !== id) return;
    const offset = current.view.offset;
    current.view = await api(`/api/run?id=${encodeURIComponent(id)}`);
    current.view.offset = Math.max(offset, current.view.offset);
    renderRun();
  }, 200);
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderRun();
  });
}

function figure(id, label, value, chance) {
  const d = el("div");
  d.append(el("dt", {}, label));
  const dd = el("dd", { id }, value);
  if (chance !== undefined) dd.append(el("span", { class: "chance" }, ` chance ${chance}`));
  d.append(dd);
  return d;
}

function renderRun() {
  const v = current.view;
  if (!v) return;
  $("#run-title").textContent = `${v.id || "(this folder)"} — ${v.status}`;
  $("#problems").replaceChildren(...v.problems.map((p) => el("li", {}, p.message)));
  const last = v.last ?? {};
  const t2v = v.eval?.textToVideo;
  const figures = [
    figure("final-step", "step", last.step === undefined ? "–" : String(last.step)),
    figure("final-loss", "loss", fmt(last.loss)),
    figure("final-nce", "NCE (video-audio)", fmt(last.nce)),
    figure("final-milnce", "MIL-NCE (video-text)", fmt(last.milNce)),
    figure("final-lr", "learning rate", typeof last.lr === "number" ? last.lr.toExponential(2) : "–"),
    figure("final-speed", "examples / s", fmt(last.examplesPerSecond, 1)),
    figure(
      "final-wait",
      "data wait",
      typeof last.dataWaitShare === "number" ? `${(100 * last.dataWaitShare).toFixed(0)}%` : "–",
    ),
  ];
  if (t2v) {
    figures.push(figure("final-r10", "text→video R@10", fmt(t2v["R@10"], 3), fmt(t2v.chance?.["R@10"], 3)));
    figures.push(figure("final-r1", "text→video R@1", fmt(t2v["R@1"], 3), fmt(t2v.chance?.["R@1"], 3)));
  }
  const v2a = v.eval?.videoToAudio;
  if (v2a)
    figures.push(
      figure("final-va-r10", "video→audio R@10", fmt(v2a["R@10"], 3), fmt(v2a.chance?.["R@10"], 3)),
    );
  $("#figures").replaceChildren(...figures);
  $("#charts").innerHTML = chartGroups(v.curves)
    .map((g) =>
      lineChart(g.series.map((s) => seriesOf(v.curves, s)).filter(Boolean), {
        title: g.title,
        percent: g.percent,
      }),
    )
    .join("");
  $("#eval-table").innerHTML = evalTableHtml(v.evalFigures);
  $("#eval-charts").innerHTML = evalCharts(v.evalCurves)
    .map((g) => lineChart(g.series, { title: g.title }))
    .join("");
  const body = $("#skips tbody");
  body.replaceChildren(
    ...v.skips.map((s) => {
      const tr = el("tr");
      tr.append(el("td", {}, s.where), el("td", {}, s.reason), el("td", {}, String(s.count)));
      tr.append(el("td", {}, s.steps ? s.steps.slice(0, 20).join(", ") : (s.detail ?? "")));
      return tr;
    }),
  );
  if (v.skips.length === 0) {
    const tr = el("tr");
    tr.append(el("td", { colspan: "4" }, "nothing skipped"));
    body.append(tr);
  }
  const images = $("#images");
  const want = v.images.map((name) => fileUrl(v.id, name));
  const have = [...images.querySelectorAll("img")].map((i) => i.getAttribute("src"));
  if (want.join() !== have.join()) {
    images.replaceChildren(...want.map((src, i) => el("img", { src, alt: v.images[i], title: v.images[i] })));
  }
  $("#config").textContent = v.config === undefined ? "(no config.json)" : JSON.stringify(v.config, null, 2);
}
const fileUrl = (runId, name) =>
  `/files/runs/${[...(runId ? runId.split("/") : []), name].map(encodeURIComponent).join("/")}`;

// ---------- compare ----------
async function renderCompare() {
  const a = $("#cmp-a").value;
  const b = $("#cmp-b").value;
  if (a === undefined || b === undefined || runIds.length === 0) return;
  const [va, vb] = await Promise.all([a, b].map((id) => api(`/api/run?id=${encodeURIComponent(id)}`)));
  const groups = chartGroups({ ...va.curves, ...vb.curves });
  $("#compare-charts").innerHTML = groups
    .flatMap((g) =>
      g.series.map((s) =>
        lineChart(
          [
            seriesOf(va.curves, s, { name: `${a || "."}: ${s}`, color: "#1f77b4" }),
            seriesOf(vb.curves, s, { name: `${b || "."}: ${s}`, color: "#d62728", dashed: true }),
          ].filter(Boolean),
          { title: s, percent: g.percent },
        ),
      ),
    )
    .join("");
}
$("#cmp-a").addEventListener("change", renderCompare);
$("#cmp-b").addEventListener("change", renderCompare);

// ---------- map ----------
let mapData;
async function loadMapList() {
  const info = await api("/api/info");
  const sel = $("#map-file");
  if (sel.options.length !== info.embeddings.length) {
    sel.replaceChildren(
      ...info.embeddings.map((f) => el("option", { value: f }, f.split("/").slice(-2).join("/"))),
    );
  }
  if (info.embeddings.length === 0) {
    $("#map-info").textContent =
      "No embeddings file: write one with 'vatt embed --out RUN/embeddings.arrow' or pass --embeddings.";
    return;
  }
  await loadMap();
}
async function loadMap() {
  const file = $("#map-file").value;
  const space = $("#map-space").value;
  $("#map-info").textContent = "computing the layout (UMAP) ...";
  try {
    mapData = await api(`/api/map?file=${encodeURIComponent(file)}&space=${space}`);
  } catch (err) {
    $("#map-info").textContent = err.message;
    return;
  }
  renderMap();
}
function renderMap() {
  if (!mapData) return;
  const by = $("#map-colour").value;
  const points = mapData.points.map((p) => ({
    x: p.x,
    y: p.y,
    kind: p.kind,
    group: by === "source" ? p.source || "(none)" : p.concept,
    label: `${p.id} ${p.start.toFixed(1)}-${p.end.toFixed(1)} s`,
  }));
  const kinds = [...new Set(points.map((p) => p.kind))].join(" + ");
  $("#map-info").textContent =
    `${mapData.items} items, ${points.length} points (${kinds}), layout ${mapData.seconds.toFixed(2)} s`;
  $("#map").innerHTML = scatterChart(points, {
    title: `${mapData.space === "vt" ? "S_vt" : "S_va"} coloured by ${by}`,
  });
  const h = mapData.histogram;
  $("#hist").innerHTML = h
    ? histogramChart(
        [
          { name: `positive ${h.pair} pairs`, counts: h.positive, color: "#2ca02c" },
          { name: "negative pairs", counts: h.negative, color: "#d62728" },
        ],
        h.lo,
        h.hi,
        { title: "pair similarities", width: 420, height: 260 },
      )
    : "";
}
$("#map-file").addEventListener("change", loadMap);
$("#map-space").addEventListener("change", loadMap);
$("#map-colour").addEventListener("change", renderMap);

// ---------- search ----------
$("#search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = $("#search-q").value.trim();
  if (!q) return;
  $("#search-info").textContent = "searching ...";
  let body;
  try {
    body = await api(`/api/search?q=${encodeURIComponent(q)}&k=8`);
  } catch (err) {
    $("#search-info").textContent = err.message;
    $("#results").replaceChildren();
    return;
  }
  $("#search-info").textContent = `${body.results.length} windows for “${body.query}”`;
  $("#results").replaceChildren(
    ...body.results.map((r, i) => {
      const div = el("div", { class: "hit", "data-rank": String(i + 1), "data-file": r.file });
      if (r.thumb)
        div.append(el("img", { src: r.thumb, alt: `frame at ${((r.start + r.end) / 2).toFixed(1)} s` }));
      div.append(el("div", { class: "score" }, `similarity ${r.score.toFixed(3)}`));
      div.append(
        el(
          "div",
          { class: "where" },
          `${r.file.split("/").pop()} ${r.start.toFixed(1)}–${r.end.toFixed(1)} s`,
        ),
      );
      if (r.media) div.addEventListener("click", () => play(r));
      return div;
    }),
  );
});

function play(r) {
  const video = $("#player");
  video.hidden = false;
  video.dataset.start = String(r.start);
  video.dataset.end = String(r.end);
  const seek = () => {
    video.currentTime = r.start;
    video.play().catch(() => {});
  };
  if (video.getAttribute("src") === r.media) seek();
  else {
    video.src = r.media;
    video.addEventListener("loadedmetadata", seek, { once: true });
  }
}
$("#player").addEventListener("timeupdate", () => {
  const video = $("#player");
  if (video.currentTime >= Number(video.dataset.end)) {
    video.pause();
    video.dataset.stopped = "true";
  }
});

// ---------- start ----------
const runs = await loadRuns();
const hash = decodeURIComponent(location.hash.slice(1));
if (hash.startsWith("run=") && runIds.includes(hash.slice(4))) await openRun(hash.slice(4));
else if (["compare", "map", "search"].includes(hash)) showTab(hash);
else if (runs.length > 0) await openRun(runs[0].id);
document.body.dataset.ready = "true";
