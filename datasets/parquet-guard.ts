/**
 * Reading Parquet with parquet-wasm without letting a damaged file take the run down.
 *
 * On some damaged files parquet-wasm panics. The Rust panic is a wasm trap (`RuntimeError: unreachable`) thrown
 * from a callback the module queued with `queueMicrotask`: it would surface as an *uncaught exception* (a crash)
 * and the call's promise would never settle (a hang). So while a guarded call is pending, `queueMicrotask` runs
 * its callbacks under a catch that takes a trap and rejects the pending calls with an Error naming the file;
 * anything else a callback throws is re-thrown unchanged.
 *
 * A trap can leave that wasm instance unusable (a later call never settles), so after one the next reader is a
 * fresh instance of the module (`parquetWasm()`; the old one is dropped with whatever it held). Readers take the
 * module from `parquetWasm()` for each file rather than importing it.
 *
 * Every other failure of the reader ("Corrupt footer", a missing field) is also given the file's name.
 */
import { createRequire } from "node:module";

type ParquetWasm = typeof import("parquet-wasm");

const require = createRequire(import.meta.url);

/** The reader module in use, and whether a trap has spoiled it (then the next `parquetWasm()` loads anew). */
const reader: { module?: ParquetWasm; trapped: boolean } = { trapped: false };

/** parquet-wasm, freshly instantiated when the instance in use has trapped. */
export function parquetWasm(): ParquetWasm {
  if (reader.trapped || !reader.module) {
    const path = require.resolve("parquet-wasm");
    if (reader.trapped) delete require.cache[path];
    reader.module = require(path) as ParquetWasm;
    reader.trapped = false;
  }
  return reader.module;
}

/** An Error that names `file`, from whatever the reader threw. */
export function unreadableParquet(file: string, err: unknown): Error {
  const why = err instanceof Error ? err.message : String(err);
  return new Error(
    `${file}: not a readable Parquet file (${why}); it is damaged or not Parquet: write it again`,
  );
}

/**
 * Frees a reader's file handle. After a trap the handle stays borrowed by the call that never finished and
 * cannot be freed (its memory goes with the dropped instance), so that failure is ignored.
 */
export function freeParquetFile(file: { free(): void }): void {
  try {
    file.free();
  } catch {
    // borrowed by a trapped call
  }
}

/** The rejections of the guarded calls now pending, and `queueMicrotask` as it was before the first. */
const pending = new Set<(trap: Error) => void>();
const plainQueueMicrotask = globalThis.queueMicrotask;

/** A wasm trap (WebAssembly.RuntimeError); one in a microtask while a Parquet read is pending is the reader's. */
function isTrap(err: unknown): err is Error {
  return err instanceof Error && err.name === "RuntimeError";
}

function guardedQueueMicrotask(callback: () => void): void {
  plainQueueMicrotask(() => {
    try {
      callback();
    } catch (err) {
      if (!isTrap(err) || pending.size === 0) throw err;
      reader.trapped = true;
      for (const fail of [...pending]) fail(err);
    }
  });
}

/** Runs one parquet-wasm call on `file`; a trap or error of the reader becomes an Error naming the file. */
export async function readParquetGuarded<T>(file: string, call: () => Promise<T> | T): Promise<T> {
  let fail: (trap: Error) => void = () => {};
  const trapped = new Promise<never>((_, reject) => {
    fail = (trap) => reject(trap);
  });
  pending.add(fail);
  globalThis.queueMicrotask = guardedQueueMicrotask;
  try {
    return await Promise.race([Promise.resolve().then(call), trapped]);
  } catch (err) {
    if (isTrap(err)) reader.trapped = true;
    throw unreadableParquet(file, err);
  } finally {
    pending.delete(fail);
    if (pending.size === 0) globalThis.queueMicrotask = plainQueueMicrotask;
  }
}
