/**
 * A reader of TensorBoard event files written from the formats' specs (TFRecord framing with masked CRC-32C, the
 * protobuf wire format, tensorboard/compat/proto/event.proto and summary.proto), sharing no code with the writer
 * in sinks/tensorboard.ts: a bitwise CRC instead of the writer's table, a hand-rolled wire decoder instead of
 * protobufjs. For tests only.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";

/** CRC-32C bit by bit (reflected polynomial 0x82F63B78), as RFC 3720 defines it. */
export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

export function masked(bytes: Uint8Array): number {
  const crc = crc32cBitwise(bytes);
  return ((((crc >>> 15) | (crc << 17)) + 0xa282ead8) % 2 ** 32) >>> 0;
}

/** TFRecord frames: uint64 LE length, masked CRC of the length, data, masked CRC of the data. */
export function readFrames(file: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let at = 0;
  while (at < file.length) {
    if (file.length - at < 12) throw new Error(`truncated frame header at byte ${at}`);
    const lengthBytes = file.subarray(at, at + 8);
    if (file.readUInt32LE(at + 8) !== masked(lengthBytes))
      throw new Error(`length CRC mismatch at byte ${at}`);
    const length = Number(file.readBigUInt64LE(at));
    const data = file.subarray(at + 12, at + 12 + length);
    if (data.length !== length || at + 16 + length > file.length)
      throw new Error(`truncated record at ${at}`);
    if (file.readUInt32LE(at + 12 + length) !== masked(data))
      throw new Error(`data CRC mismatch at byte ${at}`);
    records.push(data);
    at += 16 + length;
  }
  return records;
}

export type WireValue =
  | { field: number; wire: 0; value: bigint }
  | { field: number; wire: 1 | 2 | 5; value: Buffer };

/** The protobuf wire format: a key varint (field << 3 | wire type) then the value. */
export function wireFields(bytes: Buffer): WireValue[] {
  const out: WireValue[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= bytes.length) throw new Error("varint runs past the end");
      const b = bytes[at++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (at < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      out.push({ field, wire, value: bytes.subarray(at, at + size) });
      at += size;
    } else if (wire === 2) {
      const length = Number(varint());
      out.push({ field, wire, value: bytes.subarray(at, at + length) });
      at += length;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  sessionStatus?: number;
  values?: { tag: string; simpleValue: number }[];
}

export function decodeEvent(bytes: Buffer): ReadEvent {
  const e: ReadEvent = { wallTime: 0, step: 0 };
  for (const f of wireFields(bytes)) {
    if (f.field === 1 && f.wire === 1) e.wallTime = f.value.readDoubleLE(0);
    else if (f.field === 2 && f.wire === 0) e.step = Number(BigInt.asIntN(64, f.value));
    else if (f.field === 3 && f.wire === 2) e.fileVersion = f.value.toString("utf8");
    else if (f.field === 7 && f.wire === 2) {
      e.sessionStatus = Number(wireFields(f.value).find((s) => s.field === 1)?.value ?? 0n);
    } else if (f.field === 5 && f.wire === 2) {
      e.values = wireFields(f.value)
        .filter((v) => v.field === 1 && v.wire === 2)
        .map((v) => {
          const value = wireFields(v.value as Buffer);
          const tag = value.find((x) => x.field === 1 && x.wire === 2);
          const simple = value.find((x) => x.field === 2 && x.wire === 5);
          assert.ok(tag && simple, "a Summary.Value without tag or simple_value");
          return {
            tag: (tag.value as Buffer).toString("utf8"),
            simpleValue: (simple.value as Buffer).readFloatLE(0),
          };
        });
    } else throw new Error(`unexpected Event field ${f.field} (wire type ${f.wire})`);
  }
  return e;
}

export async function readEventFile(file: string): Promise<ReadEvent[]> {
  return readFrames(await readFile(file)).map(decodeEvent);
}

export async function eventFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith("events.out.tfevents.")).sort();
}

/** tag -> step -> value, failing on a tag written twice at one step. */
export function scalarTable(
  events: ReadEvent[],
): Map<string, Map<number, { value: number; wallTime: number }>> {
  const table = new Map<string, Map<number, { value: number; wallTime: number }>>();
  for (const e of events) {
    for (const v of e.values ?? []) {
      const series = table.get(v.tag) ?? new Map();
      assert.ok(!series.has(e.step), `${v.tag} written twice at step ${e.step}`);
      series.set(e.step, { value: v.simpleValue, wallTime: e.wallTime });
      table.set(v.tag, series);
    }
  }
  return table;
}
