/**
 * Entry of a decoding worker thread (media/libav-pool.ts, through core/worker-pool.ts): decodes or probes one job
 * at a time with media/libav.ts, and sends the result back with its buffers transferred, not copied.
 */
import { isMainThread } from "node:worker_threads";
import { serveJobs } from "../core/worker-pool.js";
import type { LibavDecodeJob } from "./libav-input.js";

export type WorkerRequest = { kind: "decode"; job: LibavDecodeJob } | { kind: "probe"; file: string };

/** The decoder's own failures travel as replies: their kind decides between an error and a clip left to ffmpeg. */
export type WorkerReply =
  | { ok: true; result: unknown }
  | { ok: false; message: string; kind: "missing" | "invalid" | "unsupported" | "failed" };

if (isMainThread) throw new Error("media/libav-worker.js runs as a worker thread only");

const { LibavDecoder } = await import("./libav.js");
const { LibavError, libavProbe } = await import("./libav-input.js");
const decoder = new LibavDecoder();

serveJobs<WorkerRequest, WorkerReply>((request) => {
  try {
    if (request.kind === "probe") return { reply: { ok: true, result: libavProbe(request.file) } };
    const result = decoder.decode(request.job);
    const transfer = [result.frames.buffer as ArrayBuffer];
    if (result.audio) transfer.push(result.audio.buffer as ArrayBuffer);
    return { reply: { ok: true, result }, transfer };
  } catch (err) {
    const kind = err instanceof LibavError ? err.kind : "failed";
    const message = err instanceof Error ? err.message : String(err);
    return { reply: { ok: false, message, kind } };
  }
});
