/** The skip message of a failed decode says what to do once, whether or not the error's message already did. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClipRef } from "../../core/records.js";
import { MediaError } from "../../media/process.js";
import { decodeSkip } from "../../pipeline/stream.js";

const ref = { source: "audioset", id: "abc_10", path: "clips/abc_10.mp4" } as ClipRef;

describe("decodeSkip", () => {
  it("adds the probe advice to a message without it", () => {
    const skip = decodeSkip(new MediaError("moov atom not found", ref.path, "invalid"), ref);
    assert.equal(
      skip?.message,
      "audioset:abc_10 (clips/abc_10.mp4): moov atom not found; check the file with 'vatt probe', or drop it from the dataset",
    );
  });

  it("does not repeat it when the message already says to probe the file", () => {
    const message =
      "decode of 'clips/abc_10.mp4' at 3.000 s gave no video frames (no video stream, or the file ends before the " +
      "window): check the file with 'vatt probe'";
    const skip = decodeSkip(new MediaError(message, ref.path, "invalid"), ref);
    assert.equal(skip?.reason, "invalid");
    assert.equal(skip?.message.match(/vatt probe/g)?.length, 1);
    assert.ok(skip?.message.endsWith("check the file with 'vatt probe', or drop it from the dataset"));
  });
});
