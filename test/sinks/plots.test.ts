import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import sharp from "sharp";
import { lineChartSvg, niceTicks, writeLineChartPng } from "../../sinks/plots.js";

describe("plots", () => {
  it("picks round tick values", () => {
    assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(0.13, 0.61), [0.2, 0.3, 0.4, 0.5, 0.6]);
  });

  it("draws every series, escapes labels, and survives non-finite points", () => {
    const svg = lineChartSvg(
      [
        {
          label: "loss <total>",
          points: [
            [1, 3],
            [2, Number.NaN],
            [3, 1],
          ],
          color: "#c00",
        },
        {
          label: "nce",
          points: [
            [1, 2],
            [3, 0.5],
          ],
          color: "#00c",
        },
      ],
      { title: "Loss & more", xLabel: "step", yLabel: "loss" },
    );
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    assert.match(svg, /loss &lt;total&gt;/);
    assert.match(svg, /Loss &amp; more/);
    assert.doesNotMatch(svg, /NaN/);
  });

  it("renders a PNG of the asked size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vatt-plot-"));
    try {
      const file = join(dir, "lr.png");
      await writeLineChartPng(
        file,
        [
          {
            label: "lr",
            points: [
              [0, 1e-4],
              [10, 5e-5],
            ],
            color: "#080",
          },
        ],
        {
          title: "learning rate",
          xLabel: "step",
          yLabel: "lr",
          width: 400,
          height: 300,
          logY: true,
        },
      );
      const meta = await sharp(file).metadata();
      assert.equal(meta.format, "png");
      assert.equal(meta.width, 400);
      assert.equal(meta.height, 300);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
