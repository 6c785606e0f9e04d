/**
 * How a child process's large reply buffers reach the pool: through a file, not the IPC channel.
 *
 * Node's IPC channel moved 11 MB (one 32-frame 455x256 clip) in ~500 ms here, ~22 MB/s, however it was fed; a file
 * on tmpfs (/dev/shm) takes ~5 ms to write and as long to read back. So the child writes every large buffer it would
 * have handed to a thread (its `transfer` list) into one file named after the job, and sends the reply with a small
 * marker in each such typed array's place; the pool reads each one back into a buffer of its own (off the main
 * thread, by libuv's pool) and deletes the file. Small buffers stay in the message.
 *
 * The files live in one folder per pool, removed by `close` or, for a pool never closed, when this process exits.
 */
import { closeSync, mkdtempSync, openSync, read, rmSync, unlink, writeSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Buffers at least this large go through the file. */
const FILE_BYTES = 64 * 1024;

/** Stands for a typed array whose bytes are in the reply's file. */
interface FileSlice {
  "vatt:file-slice": true;
  type: TypedArrayName;
  offset: number;
  bytes: number;
}

const TYPED_ARRAYS = {
  Uint8Array,
  Uint8ClampedArray,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  BigUint64Array,
  BigInt64Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

const isSlice = (value: unknown): value is FileSlice =>
  typeof value === "object" && value !== null && (value as FileSlice)["vatt:file-slice"] === true;

const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/** A new folder for a pool's reply files, on tmpfs where there is one; removed when this process exits. */
export function replyFolder(): string {
  let folder: string;
  try {
    folder = mkdtempSync("/dev/shm/vatt-pool-");
  } catch {
    folder = mkdtempSync(join(tmpdir(), "vatt-pool-"));
  }
  process.once("exit", () => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

/** Removes a pool's folder now (its `close`). */
export function removeReplyFolder(folder: string): Promise<void> {
  return rm(folder, { recursive: true, force: true });
}

export function replyFile(folder: string, id: number): string {
  return join(folder, `${id}.bin`);
}

/**
 * The child's side: writes the large buffers of `transfer` that `reply` holds into the job's file and returns the
 * reply with markers in their place, and whether a file was written.
 */
export function packReply(
  reply: unknown,
  transfer: readonly unknown[] | undefined,
  file: string,
): { reply: unknown; written: boolean } {
  const large = new Set(
    (transfer ?? []).filter((b): b is ArrayBuffer => b instanceof ArrayBuffer && b.byteLength >= FILE_BYTES),
  );
  if (large.size === 0) return { reply, written: false };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const walk = (value: unknown): unknown => {
    if (ArrayBuffer.isView(value) && large.has(value.buffer as ArrayBuffer) && !(value instanceof DataView)) {
      const type = value.constructor.name as TypedArrayName;
      const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      const slice: FileSlice = { "vatt:file-slice": true, type, offset, bytes: bytes.byteLength };
      chunks.push(bytes);
      offset += bytes.byteLength;
      return slice;
    }
    if (Array.isArray(value)) return value.map(walk);
    if (isPlain(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    return value;
  };
  const packed = walk(reply);
  if (chunks.length === 0) return { reply, written: false };
  const fd = openSync(file, "w");
  try {
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.byteLength) done += writeSync(fd, chunk, done);
    }
  } finally {
    closeSync(fd);
  }
  return { reply: packed, written: true };
}

/**
 * The pool's side: the reply with each marker replaced by its typed array, read from `file`, which is then deleted.
 * The reads run on libuv's threads, not this one: filling a new buffer is mostly page faults (0.8 ms for 200 KB
 * here, 30 times the read into a buffer already touched), and this thread is the trainer's.
 */
export async function unpackReply(reply: unknown, file: string): Promise<unknown> {
  const slices: { offset: number; into: Uint8Array }[] = [];
  const walk = (value: unknown): unknown => {
    if (isSlice(value)) {
      const Type = TYPED_ARRAYS[value.type];
      // Not zeroed: the read fills it, and zeroing would fault its pages in here.
      const into = Buffer.allocUnsafeSlow(value.bytes);
      slices.push({ offset: value.offset, into });
      return new Type(into.buffer, 0, value.bytes / Type.BYTES_PER_ELEMENT);
    }
    if (Array.isArray(value)) return value.map(walk);
    if (isPlain(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    return value;
  };
  const unpacked = walk(reply);
  const fd = openSync(file, "r"); // a few microseconds: not worth a trip to libuv's threads
  try {
    await Promise.all(slices.map(({ offset, into }) => readFully(fd, into, offset)));
  } finally {
    closeSync(fd);
    // Nothing waits for it. Not `rm`: its checks cost this thread ~1 ms a file (profiled); unlink is one call.
    unlink(file, () => {});
  }
  return unpacked;
}

async function readFully(fd: number, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const got = await new Promise<number>((resolve, reject) =>
      read(fd, into, done, into.byteLength - done, position + done, (err, n) =>
        err ? reject(err) : resolve(n),
      ),
    );
    if (got === 0) throw new Error(`a reply file ended early (${done} of ${into.byteLength} bytes)`);
    done += got;
  }
}
