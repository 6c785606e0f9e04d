/** The end-of-run plots are best effort: a full disk or a blocked path costs the pictures, not the run. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { writeRunPlots } from "../../pipeline/pretrain.js";

describe("writeRunPlots", () => {
  it("returns no plots and says why when loss.png cannot be written", async () => {
    const runDir = await mkdtemp(join(tmpdir(), "vatt-plots-"));
    try {
      const step = (n: number) =>
        JSON.stringify({ event: "step", step: n, loss: 2 - n / 10, nce: 1, milNce: 1, lr: 1e-3 });
      await writeFile(join(runDir, "metrics.jsonl"), `${[1, 2, 3].map(step).join("\n")}\n`);
      await mkdir(join(runDir, "loss.png", "x"), { recursive: true }); // a folder where the file goes
      const lines: string[] = [];
      assert.deepEqual(await writeRunPlots(runDir, (l) => lines.push(l)), []);
      assert.match(lines.join("\n"), /could not write the loss and learning-rate plots/);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });
});
