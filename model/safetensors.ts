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

export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  if (bytes.length < 8) throw new Error("safetensors: file shorter than its 8-byte header size");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerSize = Number(view.getBigUint64(0, true));
  if (8 + headerSize > bytes.length) throw new Error("safetensors: header size beyond the end of the file");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerSize))) as Record<
    string,
    unknown
  >;
  const dataStart = 8 + headerSize;
  const tensors: Record<string, SafeTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as HeaderEntry;
    const [begin, end] = e.data_offsets;
    if (dataStart + end > bytes.length || begin > end)
      throw new Error(`safetensors: ${name} lies outside the file`);
    // Copy into a fresh, aligned buffer (the data region need not be 4-byte aligned in memory).
    const raw = bytes.slice(dataStart + begin, dataStart + end);
    let data: Float32Array | Int32Array;
    if (e.dtype === "F32") data = new Float32Array(raw.buffer);
    else if (e.dtype === "I32") data = new Int32Array(raw.buffer);
    else throw new Error(`safetensors: dtype ${String(e.dtype)} of ${name} is not supported`);
    tensors[name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}
