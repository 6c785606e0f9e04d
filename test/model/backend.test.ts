import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { isBackendChoice, selectBackend } from "../../model/backend.js";

test("auto falls back past the absent node bindings to a working wasm backend", async () => {
  const info = await selectBackend("auto");
  // tfjs-node(-gpu) cannot be installed here; where it is, the first choice wins instead.
  if (info.choice === "wasm") {
    assert.equal(info.name, "wasm");
    assert.equal(info.skipped.length, 2);
    assert.match(info.skipped[0], /^node-gpu: /);
  }
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0]);
  assert.equal(y, 11);
});

test("an explicit choice is used alone; cpu always works", async () => {
  assert.equal((await selectBackend("cpu")).name, "cpu");
  assert.ok(isBackendChoice("wasm"));
  assert.ok(!isBackendChoice("gpu"));
  await selectBackend("wasm");
});
