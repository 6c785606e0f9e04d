import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { randomFor } from "../../core/random.js";
import {
  addGaussianNoiseNative,
  cropResizeColourNative,
  decodeJpegRegionNative,
  dropoutBits,
  dropoutMask,
  dropoutThreshold,
  jpegDecoderStatus,
  nativeKernelStatus,
  nativeModelKernels,
  useNativeKernels,
  videoPatchesNative,
} from "../../native/kernels.js";
import { addGaussianNoiseScalar, peakAbs, zigguratTables } from "../../operators/audio.js";
import { drawColourFactors } from "../../operators/color.js";
import { cropResizeColourScalar } from "../../operators/crop.js";

const skip = nativeKernelStatus.available ? false : `native kernels not built: ${nativeKernelStatus.reason}`;

describe("cropResizeColourNative (vectorised C) against the JavaScript reference", { skip }, () => {
  it("matches on random sizes, boxes (resized or not), flips and colour factors, greys and dark pixels included", () => {
    for (let trial = 0; trial < 60; trial++) {
      const rng = randomFor(7, 0, trial, "native-kernel");
      const t = 1 + rng.int(3);
      const h = 1 + rng.int(50);
      const w = 1 + rng.int(70);
      const frames = new Uint8Array(t * h * w * 3).map(() => rng.int(256));
      if (trial % 4 === 0) {
        // grey pixels (no hue) and black ones (value 0 after a negative brightness)
        for (let i = 0; i < frames.length; i += 3) frames.fill(i % 2 === 0 ? frames[i] : 0, i, i + 3);
      }
      const bw = 1 + rng.int(w);
      const bh = 1 + rng.int(h);
      const box = { x: rng.int(w - bw + 1), y: rng.int(h - bh + 1), width: bw, height: bh };
      // Every third trial needs no resize (the box is the output size: the path after ffmpeg's crop).
      const oh = trial % 3 === 1 ? bh : 1 + rng.int(40);
      const ow = trial % 3 === 1 ? bw : 1 + rng.int(40);
      const flip = rng.next() < 0.5;
      const colour =
        trial % 5 === 4
          ? undefined
          : trial % 7 === 3
            ? { brightness: -0.125, saturation: 1.4, contrast: 1.4, hue: 0.2 } // the ranges' extremes
            : drawColourFactors(rng);
      const symmetric = trial % 3 !== 0;
      const expected = cropResizeColourScalar(frames, t, h, w, box, oh, ow, flip, colour, symmetric);
      const got = cropResizeColourNative(
        frames,
        t,
        h,
        w,
        box,
        oh,
        ow,
        flip,
        colour,
        symmetric,
        new Float32Array(expected.length),
      );
      for (let i = 0; i < expected.length; i++) {
        assert.ok(
          Math.abs(got[i] - expected[i]) < 2e-5,
          `trial ${trial} (${w}x${h} box ${JSON.stringify(box)} -> ${ow}x${oh}) index ${i}: ${got[i]} != ${expected[i]}`,
        );
      }
    }
  });

  it("refuses buffers that do not match the sizes instead of writing past them", () => {
    const frames = new Uint8Array(2 * 4 * 4 * 3);
    const box = { x: 0, y: 0, width: 4, height: 4 };
    assert.throws(
      () => cropResizeColourNative(frames, 2, 4, 4, box, 8, 8, false, undefined, true, new Float32Array(10)),
      RangeError,
    );
    assert.throws(
      () => cropResizeColourNative(frames, 3, 4, 4, box, 2, 2, false, undefined, true, new Float32Array(36)),
      RangeError,
    );
    // A box far outside the frame, whose corner would overflow 32-bit arithmetic.
    assert.throws(
      () =>
        cropResizeColourNative(
          frames,
          2,
          4,
          4,
          { x: 2 ** 31 - 1, y: 0, width: 1, height: 1 },
          2,
          2,
          false,
          undefined,
          true,
          new Float32Array(24),
        ),
      RangeError,
    );
    assert.throws(
      () =>
        cropResizeColourNative(
          frames,
          2,
          4,
          4,
          { ...box, x: 1 },
          2,
          2,
          false,
          undefined,
          true,
          new Float32Array(24),
        ),
      RangeError,
    );
  });
});

describe("addGaussianNoiseNative against the JavaScript reference", { skip }, () => {
  it("draws the same normals from the same seed words (tail draws included)", () => {
    for (let trial = 0; trial < 6; trial++) {
      const rng = randomFor(3, 0, trial, "native-noise");
      // 200,000 samples: about 2,400 of them take the ziggurat's slow path.
      const audio = new Float32Array(200_000).map((_, i) => 0.8 * Math.sin(i / (7 + trial)));
      const words: [number, number, number, number] = [
        rng.nextUint32(),
        rng.nextUint32(),
        rng.nextUint32(),
        rng.nextUint32(),
      ];
      const sigma = 0.01 * (trial + 1) * peakAbs(audio);
      const expected = addGaussianNoiseScalar(audio, sigma, words);
      const got = addGaussianNoiseNative(
        audio,
        new Float32Array(audio.length),
        sigma,
        Uint32Array.from(words),
        zigguratTables,
      );
      let differing = 0;
      for (let i = 0; i < audio.length; i++) {
        const d = Math.abs(got[i] - expected[i]);
        assert.ok(d < 1e-6, `trial ${trial} sample ${i}: ${got[i]} != ${expected[i]}`);
        if (d > 0) differing++;
      }
      // exp/log may round differently in C and JavaScript on the slow path; nothing else may differ.
      assert.ok(differing < 50, `${differing} samples differ`);
    }
  });
});

const noJpeg = jpegDecoderStatus.available ? false : `libjpeg decoder not built: ${jpegDecoderStatus.reason}`;

describe("decodeJpegRegionNative against sharp", { skip: noJpeg }, () => {
  it("decodes any region to the pixels of the whole frame (sharp's decode), cropped", async () => {
    const [w, h] = [173, 97]; // not a multiple of the 16-pixel MCU either way
    const rng = randomFor(4, 0, 0, "jpeg");
    const pixels = Buffer.from(
      new Uint8Array(w * h * 3).map((_, i) => (i * 7 + ((i / 300) | 0) * 13 + rng.int(40)) & 255),
    );
    for (const options of [{ quality: 90 }, { quality: 75, chromaSubsampling: "4:4:4" }]) {
      const jpeg = await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
        .jpeg(options)
        .toBuffer();
      const whole = await sharp(jpeg).raw().toBuffer();
      for (let trial = 0; trial < 25; trial++) {
        const bw = 1 + rng.int(w);
        const bh = 1 + rng.int(h);
        const box =
          trial === 0
            ? { x: 0, y: 0, width: w, height: h }
            : { x: rng.int(w - bw + 1), y: rng.int(h - bh + 1), width: bw, height: bh };
        const out = new Uint8Array(5 + box.width * box.height * 3);
        decodeJpegRegionNative(jpeg, w, h, box, out, 5);
        for (let y = 0; y < box.height; y++) {
          const from = ((box.y + y) * w + box.x) * 3;
          const got = out.subarray(5 + y * box.width * 3, 5 + (y + 1) * box.width * 3);
          assert.deepEqual(
            got,
            new Uint8Array(whole.subarray(from, from + box.width * 3)),
            `${JSON.stringify(box)} row ${y}`,
          );
        }
      }
    }
  });

  it("names what is wrong with a damaged or mis-sized frame", async () => {
    const jpeg = await sharp({ create: { width: 32, height: 16, channels: 3, background: "#808080" } })
      .jpeg()
      .toBuffer();
    const out = new Uint8Array(32 * 16 * 3);
    const all = { x: 0, y: 0, width: 32, height: 16 };
    assert.throws(
      () => decodeJpegRegionNative(jpeg, 16, 16, { ...all, width: 16 }, out, 0),
      /32x16x3, the row says 16x16x3/,
    );
    assert.throws(
      () => decodeJpegRegionNative(jpeg.subarray(0, jpeg.length / 2), 32, 16, all, out, 0),
      Error,
    );
    assert.throws(() => decodeJpegRegionNative(new Uint8Array(100), 32, 16, all, out, 0), /JPEG/i);
    assert.throws(() => decodeJpegRegionNative(jpeg, 32, 16, all, out, 1), RangeError);
    assert.throws(
      () => decodeJpegRegionNative(jpeg, 32, 16, { x: 2 ** 31 - 1, y: 0, width: 1, height: 1 }, out, 0),
      RangeError,
    );
  });
});

describe("native optimiser loops against the formulas", {
  skip: skip || (!useNativeKernels && "VATT_NATIVE=0"),
}, () => {
  it("sums squares skipping NaN, and applies Keras Adam in place", () => {
    const kernels = nativeModelKernels();
    assert.ok(kernels, "native kernels in use");
    const rng = randomFor(5, 0, 0, "adam");
    const n = 10_007;
    const g = new Float32Array(n).map((_, i) => (i % 997 === 0 ? Number.NaN : rng.uniform(-2, 2)));
    let squares = 0;
    for (const x of g) if (!Number.isNaN(x)) squares += x * x;
    assert.ok(Math.abs(kernels.sumSquares(g) - squares) < 1e-6 * squares);
    const p = new Float32Array(n).map(() => rng.uniform(-1, 1));
    const m = new Float32Array(n).map(() => rng.uniform(-0.1, 0.1));
    const v = new Float32Array(n).map(() => rng.uniform(0, 0.01));
    const [want, wantM, wantV] = [Float32Array.from(p), Float32Array.from(m), Float32Array.from(v)];
    const [factor, b1, b2, eps, lrT] = [0.5, 0.9, 0.999, 1e-7, 1e-3];
    for (let i = 0; i < n; i++) {
      const x = Number.isNaN(g[i]) ? 0 : g[i] * factor;
      wantM[i] = b1 * wantM[i] + (1 - b1) * x;
      wantV[i] = b2 * wantV[i] + (1 - b2) * x * x;
      want[i] -= (wantM[i] / (Math.sqrt(wantV[i]) + eps)) * lrT;
    }
    const returned = kernels.adamUpdate(p, m, v, g, factor, b1, b2, eps, lrT);
    assert.ok(
      Math.abs(returned - squares) < 1e-6 * squares,
      "adamUpdate returns the gradient's sum of squares",
    );
    for (let i = 0; i < n; i++) {
      // float32 arithmetic against double: a few ulps of the terms' size (m ~0.2, v ~0.01).
      assert.ok(Math.abs(m[i] - wantM[i]) <= 1e-7, `m[${i}]: ${m[i]} != ${wantM[i]}`);
      assert.ok(Math.abs(v[i] - wantV[i]) <= 1e-8, `v[${i}]: ${v[i]} != ${wantV[i]}`);
      assert.ok(Math.abs(p[i] - want[i]) <= 1e-6, `p[${i}]: ${p[i]} != ${want[i]}`);
    }
    assert.throws(() => kernels.adamUpdate(p, m, v, g.subarray(1), factor, b1, b2, eps, lrT), RangeError);
  });

  it("updates a gradient that is zero outside a few rows exactly as dense Adam, reading only those rows", () => {
    const kernels = nativeModelKernels();
    assert.ok(kernels, "native kernels in use");
    const rng = randomFor(6, 0, 0, "adam rows");
    const [rowsTotal, width] = [50, 7];
    const n = rowsTotal * width;
    const rows = Int32Array.from([0, 3, 4, 17, 49]);
    const g = new Float32Array(n);
    for (const r of rows) for (let j = 0; j < width; j++) g[r * width + j] = rng.uniform(-2, 2);
    g[3 * width + 2] = Number.NaN; // a NaN in a listed row counts as 0, as in the dense update
    const start = [0, 1, 2].map(() => new Float32Array(n).map(() => rng.uniform(0.001, 0.1)));
    const dense = start.map((x) => Float32Array.from(x));
    const sparse = start.map((x) => Float32Array.from(x));
    const k = [0.5, 0.9, 0.999, 1e-7, 1e-3] as const;
    const wantSquares = kernels.adamUpdate(dense[0], dense[1], dense[2], g, ...k);
    // Garbage outside the listed rows proves they are not read.
    const poisoned = Float32Array.from(g, (x, i) => (rows.includes(Math.floor(i / width)) ? x : 1e30));
    const squares = kernels.adamUpdate(sparse[0], sparse[1], sparse[2], poisoned, ...k, rows, width);
    // The same updates; the sum of squares is added up row by row rather than in blocks of 4096.
    assert.ok(Math.abs(squares - wantSquares) <= 1e-6 * wantSquares, `${squares} vs ${wantSquares}`);
    for (let i = 0; i < 3; i++) assert.deepEqual(sparse[i], dense[i], `array ${i}`);
    const [p, m, v] = sparse;
    assert.throws(() => kernels.adamUpdate(p, m, v, g, ...k, Int32Array.from([4, 3]), width), RangeError);
    assert.throws(() => kernels.adamUpdate(p, m, v, g, ...k, Int32Array.from([50]), width), RangeError);
    assert.throws(() => kernels.adamUpdate(p, m, v, g, ...k, rows, 8), TypeError);
  });
});

describe("attention argument checks", { skip }, () => {
  it("refuses sizes whose products wrap (they would pass the length checks with small arrays)", () => {
    const kernels = nativeModelKernels();
    assert.ok(kernels, "native kernels in use");
    const none = new Float32Array(0);
    const words = new Uint32Array(4);
    assert.throws(
      () =>
        kernels.attention(
          none,
          none,
          none,
          null,
          null,
          none,
          null,
          null,
          null,
          2 ** 30,
          16,
          2 ** 26,
          16,
          1,
          0,
          words,
          1,
          null,
        ),
      /too large/,
    );
    const four = new Float32Array(4);
    assert.throws(
      () =>
        kernels.attention(
          four,
          four,
          four,
          null,
          null,
          none,
          null,
          null,
          null,
          1,
          2,
          1,
          2,
          1,
          0,
          words,
          1,
          null,
        ),
      /out must be a Float32Array of 4 elements/,
    );
    assert.throws(
      () =>
        kernels.attention(
          four,
          four,
          four,
          null,
          null,
          four,
          null,
          null,
          null,
          1,
          2,
          1,
          2,
          1,
          0,
          words,
          0,
          null,
        ),
      /thread count/,
    );
    assert.throws(() => dropoutMask(8, 1, [1, 2, 3, 1]), RangeError);
  });

  it("gives the same results on 1 and 3 threads, and with the probabilities kept for the backward pass", () => {
    const kernels = nativeModelKernels();
    assert.ok(kernels, "native kernels in use");
    const [b, n, h, dh] = [2, 130, 3, 64]; // large enough to be split
    const rng = randomFor(9, 0, 0, "attention threads");
    const size = b * n * h * dh;
    const [q, k, v, dout] = [0, 1, 2, 3].map(() => new Float32Array(size).map(() => rng.uniform(-1, 1)));
    const bias = new Float32Array(b * h * n * n).map(() => rng.uniform(-1, 1));
    const words = Uint32Array.from([5, 6, 7, 1]);
    // keep: the forward pass keeps the probabilities and the backward pass reads them instead of recomputing.
    const run = (threads: number, keep = false) => {
      const out = new Float32Array(size);
      const [dq, dk, dv] = [0, 1, 2].map(() => new Float32Array(size));
      const ds = new Float32Array(bias.length);
      const probs = keep ? new Float32Array(bias.length) : null;
      kernels.attention(
        q,
        k,
        v,
        bias,
        null,
        out,
        null,
        null,
        null,
        b,
        n,
        h,
        dh,
        0.125,
        0.1,
        words,
        threads,
        probs,
      );
      kernels.attention(q, k, v, bias, dout, dq, dk, dv, ds, b, n, h, dh, 0.125, 0.1, words, threads, probs);
      return [out, dq, dk, dv, ds];
    };
    const one = run(1);
    const three = run(3);
    const kept = run(1, true);
    for (const [i, x] of one.entries()) {
      assert.deepEqual(three[i], x, `output ${i}`);
      assert.deepEqual(kept[i], x, `output ${i} with the probabilities kept`);
    }
    assert.ok(
      one[2].some((x) => x !== 0),
      "gradients were written",
    );
  });
});

describe("dropoutMask", () => {
  it("keeps 1 - rate of the entries, scaled by 1 / (1 - rate), where each element's hashed bits reach the threshold", () => {
    const words: [number, number, number, number] = [11, 22, 33, 1];
    const mask = dropoutMask(100_000, 0.1, words);
    const kept = Math.fround(1 / 0.9);
    let zeros = 0;
    for (let i = 0; i < mask.length; i++) {
      assert.equal(mask[i], dropoutBits(i, words) >= dropoutThreshold(0.1) ? kept : 0, `entry ${i}`);
      if (mask[i] === 0) zeros++;
    }
    assert.ok(Math.abs(zeros / mask.length - 0.1) < 0.005, `${zeros} dropped`);
    assert.notDeepEqual(dropoutMask(1000, 0.1, [11, 22, 34, 1]), mask.subarray(0, 1000));
    // Neighbouring elements are independent: the kept pattern has no short period and pairs agree as chance says.
    let sameAsNext = 0;
    for (let i = 0; i + 1 < mask.length; i++) if ((mask[i] === 0) === (mask[i + 1] === 0)) sameAsNext++;
    assert.ok(
      Math.abs(sameAsNext / (mask.length - 1) - (0.1 * 0.1 + 0.9 * 0.9)) < 0.005,
      `${sameAsNext} pairs`,
    );
  });

  it("cuts video patches, adds rows and accumulates like the formulas, and rejects positions outside the clip", () => {
    const kernels = nativeModelKernels();
    assert.ok(kernels, "native kernels in use");
    const [batch, frames, height, width, pt, ph, pw] = [2, 4, 6, 10, 2, 3, 5];
    const video = Float32Array.from({ length: batch * frames * height * width * 3 }, (_, i) => i);
    const [t, h, w] = [Int32Array.from([1, 0, 1]), Int32Array.from([0, 1, 1]), Int32Array.from([1, 0, 0])];
    const size = pt * ph * pw * 3;
    const out = new Float32Array(batch * 3 * size + 7).fill(-1);
    const dims: [number, number, number, number, number, number, number] = [
      batch,
      frames,
      height,
      width,
      pt,
      ph,
      pw,
    ];
    assert.ok(videoPatchesNative(video, out.subarray(0, batch * 3 * size), dims, [t, h, w]));
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < 3; k++) {
        for (let j = 0; j < size; j++) {
          const [dt, dh, dw, c] = [
            Math.floor(j / (ph * pw * 3)),
            Math.floor(j / (pw * 3)) % ph,
            Math.floor(j / 3) % pw,
            j % 3,
          ];
          const [f, y, x] = [b * frames + t[k] * pt + dt, h[k] * ph + dh, w[k] * pw + dw];
          assert.equal(
            out[(b * 3 + k) * size + j],
            ((f * height + y) * width + x) * 3 + c,
            `b${b} k${k} j${j}`,
          );
        }
      }
    }
    assert.ok(
      out.subarray(batch * 3 * size).every((v) => v === -1),
      "nothing written past the patches",
    );
    const outside = Int32Array.from([2, 0, 0]);
    assert.throws(
      () => videoPatchesNative(video, out.subarray(0, batch * 3 * size), dims, [outside, h, w]),
      RangeError,
    );
    assert.throws(() => videoPatchesNative(video, out, dims, [t, h, w]), RangeError);
    // Sizes whose products wrap to the (empty) arrays' lengths are refused, not written past.
    const none = new Float32Array(0);
    const zero = Int32Array.from([0]);
    const huge: typeof dims = [16, 2 ** 30, 2 ** 30, 1, 2 ** 30, 2 ** 30, 1];
    assert.throws(() => videoPatchesNative(none, none, huge, [zero, zero, zero]), RangeError);
    const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
    kernels.addRows(x, Float32Array.from([10, 20, 30]));
    assert.deepEqual(Array.from(x), [11, 22, 33, 14, 25, 36]);
    kernels.addInto(x, Float32Array.from([1, 1, 1, 1, 1, 1]));
    assert.deepEqual(Array.from(x), [12, 23, 34, 15, 26, 37]);
    assert.throws(() => kernels.addRows(x, new Float32Array(4)), TypeError);
    assert.throws(() => kernels.addInto(x, new Float32Array(5)), TypeError);
    assert.throws(() => kernels.addInto(x.subarray(0, 4), x.subarray(2, 6)), RangeError);
    assert.throws(() => kernels.addRows(x, x.subarray(0, 3)), RangeError);
  });

  it("draws the same bits in JavaScript as natively (VATT_NATIVE=0 runs give the same masks)", () => {
    const words = [0xdeadbeef, 7, 0x80000000, 1];
    assert.equal(dropoutThreshold(0), 0);
    assert.equal(dropoutThreshold(0.5), 2 ** 31);
    assert.equal(dropoutThreshold(1 - 2 ** -40), 2 ** 32 - 1);
    const native = dropoutMask(4096, 0.3, words as [number, number, number, number]);
    const threshold = dropoutThreshold(0.3);
    for (let i = 0; i < native.length; i++) {
      assert.equal(native[i] === 0, dropoutBits(i, words) < threshold, `entry ${i}`);
    }
  });
});
