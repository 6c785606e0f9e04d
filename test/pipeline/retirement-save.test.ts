/** retired-files.json after a failed write (a full disk): retried until written, since --resume reads it. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { ClipRef } from "../../core/records.js";
import { RetiredFiles } from "../../core/retired.js";
import { RetirementWatch, retiredFilesPath } from "../../pipeline/retirement.js";

describe("RetirementWatch saving", () => {
  it("writes the retired list again after a failed write, with nothing else changing", async () => {
    const runDir = await mkdtemp(join(tmpdir(), "vatt-retire-save-"));
    try {
      const lines: string[] = [];
      const watch = new RetirementWatch(new RetiredFiles({ after: 1, atOnce: () => true }), runDir, (l) =>
        lines.push(l),
      );
      // The temporary name taken by a folder makes the write fail, as ENOSPC would.
      // A folder where core/atomic-file.ts writes its temporary file: the write fails as on a full disk.
      const blocker = join(runDir, `.retired-files.json.tmp-${process.pid}`);
      await mkdir(blocker);
      const ref = { path: "clips/bad.mp4", epoch: 0 } as ClipRef;
      watch.started(ref);
      watch.failed(ref, { reason: "crashed-decoder", message: "clips/bad.mp4 crashed the decoder" });
      await watch.flush();
      assert.ok(lines.some((l) => l.includes("could not write")));
      await rm(blocker, { recursive: true });
      await watch.flush();
      const saved = JSON.parse(await readFile(retiredFilesPath(runDir), "utf8"));
      assert.deepEqual(
        saved.retired.map((e: { file: string }) => e.file),
        ["clips/bad.mp4"],
      );
      assert.ok(lines.some((l) => l.includes("up to date again")));
      assert.deepEqual(await readdir(runDir), ["retired-files.json"]);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });

  it("leaves no temporary file behind when the write fails after creating it", async () => {
    const runDir = await mkdtemp(join(tmpdir(), "vatt-retire-save-"));
    try {
      const watch = new RetirementWatch(new RetiredFiles({ after: 1, atOnce: () => true }), runDir);
      // A non-empty folder under the final name: the temporary file is written, the rename fails.
      await mkdir(join(retiredFilesPath(runDir), "x"), { recursive: true });
      const ref = { path: "clips/bad.mp4", epoch: 0 } as ClipRef;
      watch.started(ref);
      watch.failed(ref, { reason: "crashed-decoder", message: "clips/bad.mp4 crashed the decoder" });
      await watch.flush();
      assert.deepEqual(await readdir(runDir), ["retired-files.json"]);
      await rm(retiredFilesPath(runDir), { recursive: true });
      await watch.flush();
      assert.equal(JSON.parse(await readFile(retiredFilesPath(runDir), "utf8")).retired.length, 1);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });
});
