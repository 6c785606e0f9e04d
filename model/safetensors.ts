/**
 * The safetensors format, written and read here per its public specification:
 *   8 bytes: N, unsigned little-endian 64-bit header size
 *   N bytes: UTF-8 JSON { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { string: string } },
 *            padded with spaces so the data starts 8-byte aligned
 *   rest:    raw little-endian tensor bytes; offsets are relative to the start of this region
 * Only F32 and I32 are needed here.
 */

export type SafeDType = "F32" | "I32";

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Int32Array;
}

interface HeaderEntry {
  dtype: SafeDType;
  shape: number[];
  data_offsets: [number, number];
}

const ALIGN = 8;

/** Serialises tensors (sorted by name, so output is deterministic) and string metadata. */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, HeaderEntry | Record<string, string>> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new RangeError(`${name}: shape ${t.shape} does not hold ${t.data.length} values`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const pad = (ALIGN - ((8 + headerBytes.length) % ALIGN)) % ALIGN;
  json += " ".repeat(pad);
  headerBytes = encoder.encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    // Typed arrays are little-endian on every platform Node runs on; copy the bytes as they are.
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

export interface DecodedSafetensors {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<SafeDType, number> = { F32: 4, I32: 4 };

/**
 * Parses a safetensors file. Every number the header claims (header size, offsets, shapes) is checked against the
 * bytes actually there before anything is allocated, so a damaged header costs an Error naming `file`, never a
 * huge allocation or a TypeError.
 */
export function decodeSafetensors(bytes: Uint8Array, file = "safetensors"): DecodedSafetensors {
  const fail = (why: string) =>
    new Error(`${file}: ${why}; the checkpoint is damaged or not a safetensors file`);
  if (bytes.length < 8) throw fail("shorter than its 8-byte header size");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const claimed = view.getBigUint64(0, true);
  if (claimed > BigInt(bytes.length - 8)) {
    throw fail(`the header claims ${claimed} bytes, the file holds ${bytes.length - 8} after the size`);
  }
  const headerSize = Number(claimed);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerSize)));
  } catch (err) {
    throw fail(`the header is not valid JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header))
    throw fail("the header is not a JSON object");
  const dataStart = 8 + headerSize;
  const dataBytes = bytes.length - dataStart;
  const tensors: Record<string, SafeTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      const ok =
        entry !== null &&
        typeof entry === "object" &&
        Object.values(entry).every((v) => typeof v === "string");
      if (!ok) throw fail("__metadata__ must map names to strings");
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = (entry ?? {}) as Partial<HeaderEntry>;
    const { dtype, shape, data_offsets: offsets } = e;
    if (dtype !== "F32" && dtype !== "I32")
      throw fail(`dtype ${JSON.stringify(dtype)} of ${name} is not supported (F32, I32)`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`the shape of ${name} is not a list of sizes: ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o))) {
      throw fail(`data_offsets of ${name} must be [begin, end]: ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets;
    if (begin < 0 || begin > end || end > dataBytes)
      throw fail(`${name} lies outside the file (bytes ${begin}..${end} of ${dataBytes})`);
    // Multiplied in order, stopping once past the span: a claimed shape never grows beyond the real bytes.
    let needed = DTYPE_BYTES[dtype];
    for (const d of shape) needed = needed > end - begin ? needed : needed * d;
    if (needed !== end - begin)
      throw fail(`${name}: shape [${shape}] of ${dtype} does not fill bytes ${begin}..${end}`);
    // Copy into a fresh, aligned buffer (the data region need not be 4-byte aligned in memory).
    const raw = bytes.slice(dataStart + begin, dataStart + end);
    const data = dtype === "F32" ? new Float32Array(raw.buffer) : new Int32Array(raw.buffer);
    tensors[name] = { dtype, shape, data };
  }
  return { tensors, metadata };
}
