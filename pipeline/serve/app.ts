/**
 * `vatt serve`: a local web view of runs. The routes (all GET):
 *
 *   /                          the page (web/index.html; its code under /web/, the chart module at /lib/svg.js)
 *   /api/info                  roots, whether search is on, embeddings files for the map
 *   /api/runs                  every run under the runs folder: id, status, last figures, problems
 *   /api/run?id=RUN            one run: downsampled curves, eval curves, skips, config, images, byte offset
 *   /api/stream?id=RUN&from=N  server-sent events: the metrics.jsonl lines appended after byte N, as they come
 *   /api/map?file=F&space=vt   the 2-D embedding map (UMAP, cached) and the similarity histograms
 *   /api/search?q=TEXT&k=8     the search function's hits, each with a thumbnail and media URL
 *   /api/thumb?file=F&t=S      a JPEG frame of a video at S seconds (ffmpeg, cached)
 *   /api/media?file=F          a video (HTTP range requests)
 *   /files/ROOT/PATH           a file under the runs / index / dataset root (ROOT: runs, index, dataset)
 *
 * Every file served is checked to lie inside one of the roots after symlinks are resolved; anything else is 404.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { EmbeddingMapCache, type Labeller, type MapSpace, synthLabeller } from "./embedding-map.js";
import { contentType, fileResponse, resolveInside, safeSegments, thumbnail } from "./files.js";
import { readLinesFrom, type StepColumns } from "./metrics-file.js";
import { findRuns, type RunView, readRun } from "./runs.js";

/** One search result: a window of a video file, with its similarity to the query. */
export interface SearchHit {
  /** The video: an absolute path, or one relative to the dataset root (else the index root). */
  file: string;
  /** The window in seconds. */
  start: number;
  end: number;
  /** Similarity (cosine) of the window's embedding to the query's; higher is closer. */
  score: number;
}

/** What the Search tab calls: the k windows nearest to a text query, best first. */
export type SearchFunction = (text: string, k: number) => Promise<SearchHit[]> | SearchHit[];

export interface ServeOptions {
  /** Folder holding run folders (or one run). */
  runs: string;
  /** The search index folder: served as a root (search itself comes through `search`). */
  index?: string;
  /** Dataset folder: the videos that search results and thumbnails point at. */
  dataset?: string;
  /** Embeddings files (vatt embed) for the map; .arrow / .parquet files in run folders are found as well. */
  embeddings?: string[];
  search?: SearchFunction;
  /** Concept / class of a clip, for the map's colours; default: the dataset's synth.json when there is one. */
  labeller?: Labeller;
  port?: number;
  host?: string;
  /** Where thumbnails are cached (default: a folder under the system temp dir). */
  cacheDir?: string;
  /** Seconds between looks at a growing metrics.jsonl (default 0.25). */
  pollSeconds?: number;
  seed?: number;
}

const here = fileURLToPath(new URL(".", import.meta.url));
/** The page's files: `web/` at the package root (three floors above dist/pipeline/serve/). */
export const WEB_DIR = resolve(here, "..", "..", "..", "web");

function notFound(): Response {
  return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain" } });
}

function badRequest(message: string): Response {
  return Response.json({ error: message }, { status: 400 });
}

/** The hono app for the options (no socket: `startServer` listens). */
export async function createServeApp(o: ServeOptions): Promise<Hono> {
  const roots: Record<string, string | undefined> = { runs: o.runs, index: o.index, dataset: o.dataset };
  const rootList = Object.values(roots).filter((r): r is string => r !== undefined);
  const labeller = o.labeller ?? (o.dataset ? await synthLabeller(o.dataset) : undefined);
  const maps = new EmbeddingMapCache({ seed: o.seed ?? 0, ...(labeller ? { labeller } : {}) });
  const columns = new Map<string, StepColumns>();
  const cacheDir = o.cacheDir ?? join(tmpdir(), "vatt-serve-cache");
  const pollMs = Math.max(20, (o.pollSeconds ?? 0.25) * 1000);

  const knownRun = async (id: string | undefined): Promise<string | undefined> => {
    if (id === undefined) return undefined;
    if (id !== "" && !safeSegments(id)) return undefined;
    return (await findRuns(o.runs)).includes(id) ? id : undefined;
  };
  // One read of a run at a time: two requests at once must not both append the same new lines to its columns.
  const reading = new Map<string, Promise<unknown>>();
  const runView = (id: string): Promise<RunView> => {
    const next = (reading.get(id) ?? Promise.resolve())
      .catch(() => {})
      .then(async () => {
        const { view, columns: cols } = await readRun(o.runs, id, columns.get(id));
        columns.set(id, cols);
        return view;
      });
    reading.set(id, next);
    return next;
  };
  const embeddingFiles = async (): Promise<string[]> => {
    const files = new Set((o.embeddings ?? []).map((f) => resolve(f)));
    for (const id of await findRuns(o.runs)) {
      for (const name of await readdir(join(o.runs, id)).catch(() => [] as string[])) {
        if (/\.(arrow|parquet)$/i.test(name)) files.add(resolve(o.runs, id, name));
      }
    }
    return [...files].sort();
  };
  const mediaPath = async (file: string | undefined): Promise<string | undefined> =>
    file ? resolveInside(rootList, file) : undefined;

  const app = new Hono();
  app.get("/", async () => {
    const html = await readFile(join(WEB_DIR, "index.html"), "utf8");
    return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  app.get("/web/*", async (c) => {
    const segments = safeSegments(c.req.path.slice("/web/".length));
    const path = segments && (await resolveInside([WEB_DIR], segments.join("/")));
    return path ? fileResponse(path) : notFound();
  });
  app.get("/lib/svg.js", async () => {
    const js = await readFile(join(here, "svg.js"), "utf8");
    return new Response(js.replace(/\n\/\/# sourceMappingURL=.*$/, ""), {
      headers: { "content-type": contentType("x.js") },
    });
  });
  app.get("/api/info", async () =>
    Response.json({
      runs: resolve(o.runs),
      index: o.index ? resolve(o.index) : null,
      dataset: o.dataset ? resolve(o.dataset) : null,
      search: Boolean(o.search),
      embeddings: await embeddingFiles(),
    }),
  );
  app.get("/api/runs", async () => {
    const ids = await findRuns(o.runs);
    const runs = [];
    for (const id of ids) {
      const v = await runView(id);
      runs.push({ id, status: v.status, last: v.last ?? null, eval: v.eval ?? null, problems: v.problems });
    }
    return Response.json({ runs });
  });
  app.get("/api/run", async (c) => {
    const id = await knownRun(c.req.query("id"));
    if (id === undefined) return notFound();
    return Response.json(await runView(id));
  });
  app.get("/api/stream", async (c) => {
    const id = await knownRun(c.req.query("id"));
    if (id === undefined) return notFound();
    const file = join(o.runs, id, "metrics.jsonl");
    let offset = Math.max(0, Number(c.req.query("from") ?? 0) || 0);
    return streamSSE(c, async (stream) => {
      let quietMs = 0;
      while (!stream.aborted && !stream.closed) {
        const exists = await stat(file).catch(() => undefined);
        if (exists) {
          const batch = await readLinesFrom(file, offset).catch(() => undefined);
          if (batch?.truncated) {
            offset = 0;
            await stream.writeSSE({ event: "reset", data: "{}" });
          } else if (batch && batch.offset > offset) {
            offset = batch.offset;
            await stream.writeSSE({
              event: "lines",
              data: JSON.stringify({ offset, records: batch.records, badLines: batch.badLines }),
            });
            quietMs = 0;
          }
        }
        quietMs += pollMs;
        if (quietMs >= 15_000) {
          await stream.write(": keep-alive\n\n");
          quietMs = 0;
        }
        await stream.sleep(pollMs);
      }
    });
  });
  app.get("/api/map", async (c) => {
    const space = (c.req.query("space") ?? "vt") as MapSpace;
    if (space !== "vt" && space !== "va") return badRequest("space is vt (video-text) or va (video-audio)");
    const file = c.req.query("file");
    const files = await embeddingFiles();
    if (!file || !files.includes(resolve(file))) return notFound();
    try {
      return Response.json(await maps.get(resolve(file), space));
    } catch (err) {
      return Response.json({ error: (err as Error).message }, { status: 422 });
    }
  });
  app.get("/api/search", async (c) => {
    if (!o.search) {
      return Response.json(
        { error: "search is off: start 'vatt serve' with --index (a search index and its text encoder)" },
        { status: 503 },
      );
    }
    const q = (c.req.query("q") ?? "").trim();
    const k = Math.min(100, Math.max(1, Number(c.req.query("k") ?? 8) || 8));
    if (!q) return badRequest("type some words to search for");
    const hits = await o.search(q, k);
    const results = [];
    for (const h of hits) {
      const path = await mediaPath(h.file);
      const file = encodeURIComponent(path ?? h.file);
      const mid = (h.start + h.end) / 2;
      results.push({
        ...h,
        playable: Boolean(path),
        media: path ? `/api/media?file=${file}` : null,
        thumb: path ? `/api/thumb?file=${file}&t=${mid.toFixed(2)}` : null,
      });
    }
    return Response.json({ query: q, results });
  });
  app.get("/api/thumb", async (c) => {
    const path = await mediaPath(c.req.query("file"));
    const t = Number(c.req.query("t") ?? 0);
    if (!path || !Number.isFinite(t)) return notFound();
    try {
      return fileResponse(await thumbnail(cacheDir, path, t));
    } catch (err) {
      return new Response(`no thumbnail: ${(err as Error).message}\n`, { status: 422 });
    }
  });
  app.get("/api/media", async (c) => {
    const path = await mediaPath(c.req.query("file"));
    return path ? fileResponse(path, c.req.header("range")) : notFound();
  });
  app.get("/files/:root/*", async (c) => {
    const root = roots[c.req.param("root")];
    const prefix = `/files/${c.req.param("root")}/`;
    const raw = new URL(c.req.url).pathname;
    const segments = root && raw.startsWith(prefix) ? safeSegments(raw.slice(prefix.length)) : undefined;
    const path = segments?.length ? await resolveInside([root!], segments.join("/")) : undefined;
    if (!path || !(await stat(path)).isFile()) return notFound();
    return fileResponse(path, c.req.header("range"));
  });
  app.notFound(() => notFound());
  app.onError((err) => Response.json({ error: err.message }, { status: 500 }));
  return app;
}

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Listens on host:port (127.0.0.1:8080 by default); a port in use is one clear error. */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const runsStat = await stat(o.runs).catch(() => undefined);
  if (!runsStat?.isDirectory()) {
    throw new Error(
      `runs folder '${o.runs}' does not exist: give the folder that holds your runs with --runs`,
    );
  }
  for (const [name, dir] of [
    ["index", o.index],
    ["dataset", o.dataset],
  ] as const) {
    if (dir && !(await stat(dir).catch(() => undefined))) {
      throw new Error(
        `--${name} '${dir}' does not exist: give an existing ${name} folder or leave the option out`,
      );
    }
  }
  const app = await createServeApp(o);
  const host = o.host ?? "127.0.0.1";
  const port = o.port ?? 8080;
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  await new Promise<void>((ok, fail) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        fail(
          new Error(
            `port ${port} on ${host} is already in use (another 'vatt serve'?): stop that server or choose another port, e.g. --port ${port === 65535 ? 8081 : port + 1}`,
          ),
        );
      } else if (err.code === "EACCES") {
        fail(
          new Error(`port ${port} on ${host} needs privileges: choose a port above 1023, e.g. --port 8080`),
        );
      } else fail(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
    });
    server.listen(port, host, () => ok());
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${actualPort}`,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}
