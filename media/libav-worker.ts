/**
 * Entry of a decoding worker thread (media/libav-pool.ts): takes one job at a time, decodes or probes it with
 * media/libav.ts, and sends the result back with its buffers transferred, not copied.
 */
import { parentPort } from "node:worker_threads";
import type { LibavDecodeJob } from "./libav-input.js";

export type WorkerRequest =
  | { id: number; kind: "decode"; job: LibavDecodeJob }
  | { id: number; kind: "probe"; file: string };

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; message: string; kind: "missing" | "invalid" | "unsupported" | "failed" };

const port = parentPort;
if (!port) throw new Error("media/libav-worker.js runs as a worker thread only");

const { LibavDecoder } = await import("./libav.js");
const { LibavError, libavProbe } = await import("./libav-input.js");
const decoder = new LibavDecoder();

port.on("message", (request: WorkerRequest) => {
  try {
    if (request.kind === "probe") {
      port.postMessage({ id: request.id, ok: true, result: libavProbe(request.file) } satisfies WorkerReply);
      return;
    }
    const result = decoder.decode(request.job);
    const transfer = [result.frames.buffer as ArrayBuffer];
    if (result.audio) transfer.push(result.audio.buffer as ArrayBuffer);
    port.postMessage({ id: request.id, ok: true, result } satisfies WorkerReply, transfer);
  } catch (err) {
    const kind = err instanceof LibavError ? err.kind : "failed";
    const message = err instanceof Error ? err.message : String(err);
    port.postMessage({ id: request.id, ok: false, message, kind } satisfies WorkerReply);
  }
});
