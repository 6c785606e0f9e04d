/** metrics.jsonl under a full or broken disk: a failed append drops the line, never the run. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MetricsLog } from "../../sinks/metrics.js";

describe("MetricsLog", () => {
  it("survives ENOSPC: /dev/full takes no line and write does not throw", () => {
    if (!existsSync("/dev/full")) return;
    const log = new MetricsLog("/dev/full", { tensorboard: false });
    assert.doesNotThrow(() => log.write({ event: "step", step: 1 }));
    assert.doesNotThrow(() => log.write({ event: "step", step: 2 }));
    assert.equal(log.droppedLines, 2);
  });

  it("leaves no broken line when the disk fills mid-line (a small tmpfs; skipped without root)", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "vatt-metrics-full-"));
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" });
    } catch {
      await rm(dir, { recursive: true, force: true });
      t.skip("cannot mount a tmpfs here");
      return;
    }
    try {
      const file = join(dir, "metrics.jsonl");
      const log = new MetricsLog(file, { tensorboard: false });
      const pad = "x".repeat(3000); // lines that do not divide the 64 KiB evenly: one is cut mid-way
      for (let step = 0; step < 60; step++) log.write({ event: "step", step, pad });
      assert.ok(log.droppedLines > 0, "the disk never filled");
      const text = await readFile(file, "utf8");
      assert.ok(text.endsWith("\n"));
      const kept = text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((l) => l.event === "step").length;
      assert.equal(kept + log.droppedLines, 60);
      // Space again: the next line comes after one gap record counting every line lost (a short gap record that
      // fit on its own must not have reset the count).
      await truncate(file, 0);
      log.write({ event: "step", step: 60 });
      const after = (await readFile(file, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        after.map((l) => [l.event, l.dropped ?? l.step]),
        [
          ["metrics-gap", 60 - kept],
          ["step", 60],
        ],
      );
    } finally {
      execFileSync("umount", [dir], { stdio: "ignore" });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("records a metrics-gap line with the count when appending works again", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vatt-metrics-"));
    try {
      const file = join(dir, "metrics.jsonl");
      const log = new MetricsLog(file, { tensorboard: false });
      log.write({ event: "start", step: 0 });
      await rm(file);
      await mkdir(file); // appending to a folder fails (EISDIR), as a full disk would
      log.write({ event: "step", step: 1 });
      log.write({ event: "step", step: 2 });
      await rm(file, { recursive: true });
      log.write({ event: "step", step: 3 });
      const lines = (await readFile(file, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        lines.map((l) => [l.event, l.step ?? l.dropped]),
        [
          ["metrics-gap", 2],
          ["step", 3],
        ],
      );
      assert.equal(log.droppedLines, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
