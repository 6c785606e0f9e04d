/**
 * The house rules of .dependency-cruiser.cjs (run over the real tree by `npm run layers` in `npm test`) catch what
 * they are meant to: checked here on a small tree of files that break each rule once, so a rule that silently
 * stopped matching (a renamed folder, a typo in a path pattern) fails this test.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { makeTempDir, removeDir } from "../media.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const DEPCRUISE = join(ROOT, "node_modules", ".bin", "depcruise");
const CONFIG = join(ROOT, ".dependency-cruiser.cjs");

/** Runs the house rules over `dir` and returns dependency-cruiser's report lines. */
function cruise(dir: string, folders: string[]): { status: number | null; report: string } {
  const r = spawnSync(DEPCRUISE, [...folders, "--config", CONFIG, "--output-type", "err"], {
    cwd: dir,
    encoding: "utf8",
  });
  return { status: r.status, report: `${r.stdout}${r.stderr}` };
}

async function files(dir: string, tree: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(tree)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext" } }));
}

describe("the layering rule", () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir("vatt-layers-");
  });
  after(() => removeDir(dir));

  it("passes a tree whose imports all point down a floor", async () => {
    const ok = join(dir, "ok");
    await files(ok, {
      "core/records.ts": "export const a = 1;\n",
      "operators/crop.ts": 'import { a } from "../core/records.js";\nexport const b = a;\n',
      "pipeline/job.ts": 'import { b } from "../operators/crop.js";\nexport const c = b;\n',
      "bin/vatt.ts": 'import { c } from "../pipeline/job.js";\nconsole.log(c);\n',
    });
    const { status, report } = cruise(ok, ["core", "operators", "pipeline", "bin"]);
    assert.equal(status, 0, report);
    assert.match(report, /no dependency violations/);
  });

  it("names the rule and both files for an upward import, a cycle, and tfjs in an operator", async () => {
    const bad = join(dir, "bad");
    await files(bad, {
      "core/records.ts": 'import { job } from "../pipeline/job.js";\nexport const a = job;\n',
      "pipeline/job.ts": "export const job = 1;\n",
      "model/a.ts": 'import { b } from "./b.js";\nexport const a = b;\n',
      "model/b.ts": 'import { a } from "./a.js";\nexport const b = () => a;\n',
      "operators/crop.ts": 'import * as tf from "@tensorflow/tfjs";\nexport const t = tf;\n',
      "datasets/reader.ts": 'import { t } from "../operators/crop.js";\nexport const r = t;\n',
    });
    const { status, report } = cruise(bad, ["core", "pipeline", "model", "operators", "datasets"]);
    assert.notEqual(status, 0, report);
    assert.match(report, /core-imports-only-itself: core\/records\.ts → pipeline\/job\.ts/);
    assert.match(report, /no-cycles: model\/[ab]\.ts/);
    assert.match(report, /datasets-imports-only-core-media: datasets\/reader\.ts → operators\/crop\.ts/);
    assert.match(report, /datasets-operators-without-tensorflow: operators\/crop\.ts → .*@tensorflow/);
  });
});
