/**
 * Typed arrays for buffers that are written in full before anyone reads them (decoded frames, augmented video).
 * `new Float32Array(n)` zero-fills, which for a 19 MB clip costs 1.5-3 ms here (memory bandwidth and page faults);
 * these skip that. Only for callers that overwrite every element: the contents start as whatever was there.
 */
export function uninitialisedBytes(length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.allocUnsafeSlow(length).buffer as ArrayBuffer, 0, length);
}

export function uninitialisedFloat32(length: number): Float32Array<ArrayBuffer> {
  return new Float32Array(Buffer.allocUnsafeSlow(length * 4).buffer as ArrayBuffer, 0, length);
}
