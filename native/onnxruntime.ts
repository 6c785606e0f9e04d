/**
 * Loading ONNX Runtime (the onnxruntime-node package): the GEMM of the fast path and the runner of exported models
 * both come through here.
 *
 * Since 1.29 the library starts a telemetry client (Microsoft's 1DS SDK) when its environment is created; on Linux
 * that client leaves an empty `/tmp/mat-debug-<pid>.log` behind every process, so thousands of cluster jobs fill
 * /tmp with them, and it would try to upload from machines that have no business talking to the internet.
 * ORT_DISABLE_TELEMETRY, read when the environment is created, turns it off; a value the user set is kept.
 */
import { createRequire } from "node:module";

/** Turns ONNX Runtime's telemetry off unless the user has set ORT_DISABLE_TELEMETRY themselves. */
export function quietOnnxRuntime(env: NodeJS.ProcessEnv = process.env): void {
  env.ORT_DISABLE_TELEMETRY ??= "1";
}

/** `require(id)` for onnxruntime-node and its files, with telemetry off first. Throws when the package is absent. */
export function requireOnnxRuntime<T>(id: "onnxruntime-node" | `onnxruntime-node/${string}`): T {
  quietOnnxRuntime();
  return createRequire(import.meta.url)(id) as T;
}
