/**
 * Entry of a decoding worker (media/libav-pool.ts, through core/worker-pool.ts; a child process by default, a thread
 * when asked): decodes or probes one job at a time with media/libav.ts, and sends the result back (a thread's
 * buffers transferred, a child's copied through its channel).
 *
 * TEST-ONLY switches, read from the environment at each job so that tests can make the decoder fail for real on
 * one file (never set them in a run you care about):
 * - VATT_TEST_DECODER_CRASH=<basename>: a job (decode or probe) of a file of that name kills its worker with
 *   SIGSEGV, as a segfault in libav would (in a thread, that is the whole process: what isolation guards against).
 * - VATT_TEST_DECODER_HANG=<basename>: a job of that file blocks its worker in native code (Atomics.wait with no
 *   timeout), as a decoder stuck in a loop would; only its time limit ends it.
 * - VATT_TEST_DECODER_LOG=<path>: one line per job is appended to that file ("<kind> <basename> <pid>"), so a test
 *   can count how often a file was tried.
 */
import { appendFileSync } from "node:fs";
import { basename } from "node:path";
import { isMainThread } from "node:worker_threads";
import { inPoolWorker, serveJobs } from "../core/worker-pool.js";
import type { LibavDecodeJob } from "./libav-input.js";

export type WorkerRequest = { kind: "decode"; job: LibavDecodeJob } | { kind: "probe"; file: string };

/** The decoder's own failures travel as replies: their kind decides between an error and a clip left to ffmpeg. */
export type WorkerReply =
  | { ok: true; result: unknown }
  | { ok: false; message: string; kind: "missing" | "invalid" | "unsupported" | "failed" };

if (!inPoolWorker()) throw new Error("media/libav-worker.js runs as a decoding pool's worker only");

const { LibavDecoder } = await import("./libav.js");
const { LibavError, libavProbe } = await import("./libav-input.js");
// A child copies each result out before the next decode (core/pool-files.ts), so it may reuse its buffers.
const decoder = new LibavDecoder({ reuseBuffers: isMainThread });

/** The test-only switches of the file comment. */
function testSwitches(request: WorkerRequest): void {
  const env = process.env;
  if (!env.VATT_TEST_DECODER_CRASH && !env.VATT_TEST_DECODER_HANG && !env.VATT_TEST_DECODER_LOG) return;
  const name = basename(request.kind === "probe" ? request.file : request.job.file);
  if (env.VATT_TEST_DECODER_LOG)
    appendFileSync(env.VATT_TEST_DECODER_LOG, `${request.kind} ${name} ${process.pid}\n`);
  const block = (ms?: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  if (name === env.VATT_TEST_DECODER_CRASH) {
    process.kill(process.pid, "SIGSEGV");
    block(5000); // the signal may land on another of the process's threads a moment later
    process.abort();
  }
  if (name === env.VATT_TEST_DECODER_HANG) block();
}

serveJobs<WorkerRequest, WorkerReply>((request) => {
  testSwitches(request);
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
