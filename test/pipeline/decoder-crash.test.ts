/**
 * A file that crashes or hangs the in-process decoder costs its clip, never the run (issue 20): a real tiny
 * pretraining run (the CLI, its own process) where the decoder's test switches (media/libav-worker.ts) make one named
 * file segfault or hang its decoding process for real.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { orderedRefs } from "../../core/order.js";
import { SkipLog } from "../../core/skips.js";
import { synthesizeDataset } from "../../datasets/synth.js";
import { resolveConfig } from "../../pipeline/config.js";
import { runModelConfig, trainingSource } from "../../pipeline/pretrain-data.js";

const VATT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "vatt.js");

let dir: string;
/** The file the run reads first: the one made to break, so the run surely asks for it, and only once. */
let first: string;

/** The smallest run: one step of 2 examples, one clip decoded at a time, from 8 videos (one epoch is not used up). */
const settings = (runDir: string) => ({
  runDir: join(dir, runDir),
  seed: 5,
  data: {
    audioset: join(dir, "as"),
    heldOutShare: 0,
    decodeShortSide: 64,
    concurrency: 1,
    buffer: 1,
    decodeWorkers: 1,
    decodeTimeoutMs: 1500,
  },
  train: { steps: 1, batchSize: 2, warmupSteps: 0, checkpointEvery: 1, evalEvery: 0 },
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-decoder-crash-"));
  const small = { width: 96, height: 64, fps: 10, minSeconds: 4, maxSeconds: 4 };
  await synthesizeDataset({ kind: "audioset", out: join(dir, "as"), videos: 8, seed: 9, ...small });
  const config = resolveConfig(settings("order"));
  const refs = orderedRefs(trainingSource(config, runModelConfig(config, 100), new SkipLog()), {
    seed: config.seed,
    shuffleBuffer: config.data.shuffleBuffer,
  });
  for await (const ref of refs) {
    first = ref.path;
    break;
  }
});
after(() => rm(dir, { recursive: true, force: true }));

/** Runs `vatt pretrain` with the settings above and the decoder's test switches in its environment. */
function pretrain(runDir: string, env: Record<string, string>) {
  const s = settings(runDir);
  const set = (key: string, value: unknown) => ["--set", `${key}=${value}`];
  const args = [
    ...["pretrain", "--audioset", s.data.audioset, "--run-dir", s.runDir, "--seed", String(s.seed)],
    ...Object.entries(s.data)
      .filter(([key]) => key !== "audioset")
      .flatMap(([key, value]) => set(`data.${key}`, value)),
    ...Object.entries(s.train).flatMap(([key, value]) => set(`train.${key}`, value)),
  ];
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => {
      const child = spawn(process.execPath, [VATT, ...args], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 240_000,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    },
  );
}

/** The jobs the decoder ran, per file: "probe x.mp4", "decode x.mp4" -> count. */
async function attempts(log: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await readFile(log, "utf8")).trim().split("\n")) {
    const [kind, name] = line.split(" ");
    counts.set(`${kind} ${name}`, (counts.get(`${kind} ${name}`) ?? 0) + 1);
  }
  return counts;
}

/** The skips of the run's end line in metrics.jsonl. */
async function endSkips(runDir: string): Promise<Record<string, number>> {
  const lines = (await readFile(join(dir, runDir, "metrics.jsonl"), "utf8")).trim().split("\n");
  const end = lines.map((l) => JSON.parse(l)).find((r) => r.event === "end");
  assert.ok(end, "the run wrote its end line");
  return end.skips;
}

/** The tries of the broken file, and a check that the run asked for every file once (the cached probe). */
function triesOf(counts: Map<string, number>, name: string): number {
  for (const [job, n] of counts) {
    if (job.startsWith("probe ") && !job.endsWith(` ${name}`))
      assert.equal(n, 1, `${job}: the run asks once`);
  }
  return (counts.get(`probe ${name}`) ?? 0) + (counts.get(`decode ${name}`) ?? 0);
}

describe("a file that breaks the decoder, in a real run", () => {
  it("crashes it: the run finishes, the file is tried twice and skipped as crashed-decoder", async () => {
    const name = basename(first);
    const log = join(dir, "crash.log");
    const run = await pretrain("crash", { VATT_TEST_DECODER_CRASH: name, VATT_TEST_DECODER_LOG: log });
    assert.equal(run.code, 0, `${run.signal ?? ""}\n${run.stderr}`);
    assert.match(run.stdout, /steps: 1 /);
    assert.match(run.stdout, /skipped:\n\s+decode crashed-decoder: 1 file\n/);
    assert.match(
      run.stderr,
      new RegExp(
        `skipped: .*${name}.* crashed the decoder \\(SIGSEGV\\) twice.*the file crashed the decoder`,
      ),
    );
    assert.equal((await endSkips("crash"))["decode:crashed-decoder"], 1);
    assert.equal(triesOf(await attempts(log), name), 2, "tried once more in a fresh process, then given up");
  });

  it("hangs it: each try is killed at the time limit, the run finishes, the file is skipped as timeout", async () => {
    const name = basename(first);
    const log = join(dir, "hang.log");
    const run = await pretrain("hang", { VATT_TEST_DECODER_HANG: name, VATT_TEST_DECODER_LOG: log });
    assert.equal(run.code, 0, `${run.signal ?? ""}\n${run.stderr}`);
    assert.match(run.stdout, /skipped:\n\s+decode timeout: 1 file\n/);
    assert.match(run.stderr, new RegExp(`skipped: .*${name}.* hung the decoder past its 1.5 s limit twice`));
    assert.equal((await endSkips("hang"))["decode:timeout"], 1);
    assert.equal(triesOf(await attempts(log), name), 2);
  });
});
