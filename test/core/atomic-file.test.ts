/** writeFileAtomic: the old file or the new one, never a truncated mix, and no temporary file left behind. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { writeFileAtomic } from "../../core/atomic-file.js";

describe("writeFileAtomic", () => {
  it("replaces the file's contents and leaves no temporary file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vatt-atomic-"));
    try {
      const file = join(dir, "config.json");
      await writeFile(file, "old\n");
      await writeFileAtomic(file, "new\n");
      assert.equal(await readFile(file, "utf8"), "new\n");
      assert.deepEqual(await readdir(dir), ["config.json"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("keeps the old file intact when the write fails", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vatt-atomic-"));
    try {
      const file = join(dir, "config.json");
      await writeFile(file, "old\n");
      // The temporary name taken by a folder makes the write fail, as ENOSPC would, before the rename.
      await mkdir(join(dir, `.config.json.tmp-${process.pid}`));
      await assert.rejects(writeFileAtomic(file, "new\n"));
      assert.equal(await readFile(file, "utf8"), "old\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
