#!/usr/bin/env node
/**
 * `npm run soak -- --minutes 60`: a chaos soak of `vatt pretrain --follow`. The trainer runs in its own process on
 * a small synthetic AudioSet-style dataset, its run directory on a small tmpfs this script mounts; a seeded chaos
 * loop grows and damages the dataset, fills the run directory's disk, and SIGTERMs / SIGKILLs the trainer, which
 * is restarted with --resume. At the end, with the data frozen, an interrupted+resumed segment is compared with
 * an uninterrupted one from the same checkpoint. The assertions (bin/soak/checks.ts) and the figures go to
 * OUT/soak-summary.json and OUT/soak-summary.txt.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthesizeDataset } from "../datasets/synth.js";
import { listCheckpoints } from "../sinks/checkpoints.js";
import { DataChaos, fillDisk, poolRows, rng, unfill } from "./soak/chaos.js";
import type { CheckpointRecord, ResumeRecord } from "./soak/checks.js";
import { MetricsTail } from "./soak/metrics-tail.js";
import { descendants, entries, isAlive, sampleProcess, verifyCheckpoint } from "./soak/probe.js";
import { referenceCheck } from "./soak/reference.js";
import { type SoakRecord, writeSummary } from "./soak/summary.js";
import { type Life, startLife, waitExit } from "./soak/trainer.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    seed: { type: "string", default: "1" },
    out: { type: "string", default: "soak-out" },
    keep: { type: "boolean", default: false },
    videos: { type: "string", default: "12" },
    "tmpfs-mb": { type: "string", default: "64" },
    /** Seconds a trainer runs before it may be killed (long enough to judge its resource trends). */
    "min-life": { type: "string", default: "150" },
  },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
const out = resolve(values.out!);
const vattJs = join(dirname(fileURLToPath(import.meta.url)), "vatt.js");
const started = Date.now();
const random = rng(seed);
const eventsFile = join(out, "soak-events.log");

function say(line: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
  const text = `[soak ${t}s] ${line}`;
  console.log(text);
  appendFileSync(eventsFile, `${text}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- setup --------------------------------------------------------------------------------------------------
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const runDir = join(out, "run");
const dataDir = join(out, "data");
const poolDir = join(out, "pool");
const tmpDir = join(out, "trainer-tmp");
mkdirSync(runDir);
mkdirSync(tmpDir);
let tmpfs = false;
try {
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${values["tmpfs-mb"]}m`, "tmpfs", runDir], {
    stdio: "pipe",
  });
  tmpfs = true;
  say(`run directory ${runDir} on a ${values["tmpfs-mb"]} MB tmpfs`);
} catch (err) {
  say(
    `note: could not mount a tmpfs on ${runDir} (${(err as Error).message.split("\n")[0]}); disk-full chaos fills the real disk's folder instead and is skipped`,
  );
}
say(`synthesizing ${values.videos} clips in ${dataDir} and a pool of 16 to add later`);
const synth = { kind: "audioset" as const, width: 96, height: 72, fps: 10, clipSeconds: 3, concurrency: 2 };
await synthesizeDataset({ ...synth, out: dataDir, videos: Number(values.videos), seed });
await synthesizeDataset({ ...synth, out: poolDir, videos: 16, seed: seed + 1000 });
const chaos = new DataChaos(dataDir, poolRows(poolDir), random);
const shmBaseline = new Set(entries("/dev/shm"));

const trainerArgs = (dir: string, steps = 1_000_000, logEvery = 20) => [
  "--preset",
  "tiny",
  "--audioset",
  dataDir,
  "--run-dir",
  dir,
  "--follow",
  "--steps",
  String(steps),
  "--batch-size",
  "4",
  "--seed",
  String(seed),
  "--set",
  "train.checkpointEvery=200",
  "--set",
  "train.keepCheckpoints=2",
  "--set",
  "train.warmupSteps=20",
  "--set",
  "data.concurrency=4",
  "--set",
  "data.buffer=4",
  "--set",
  "data.decodeWorkers=1",
  "--set",
  "eval.maxVideos=4",
  "--set",
  "eval.windows=1",
  "--set",
  `train.logEvery=${logEvery}`,
];
const env = { ...process.env, TMPDIR: tmpDir };

const record: SoakRecord = {
  seed,
  minutes,
  tmpfs,
  out,
  startedAt: new Date(started).toISOString(),
  lives: [],
  actions: {},
  actionLog: [],
  resumes: [],
  checkpoints: [],
  afterKill: [],
  orphans: [],
  metricsBad: [],
  skipKeys: [],
  skipCounts: {},
  stepsFirst: undefined,
  stepsLast: undefined,
  examples: 0,
  trainSeconds: 0,
  unexpectedExits: [],
  reference: undefined,
};

const metrics = new MetricsTail(join(runDir, "metrics.jsonl"));
const seenCheckpoints = new Set<number>();
let life: Life | undefined;
let lives = 0;
let lifeTensors: number | undefined;
let lifeResumeStep: number | undefined;
let lifeLastSkips: Record<string, number> | undefined;
let lastStep = 0;

function readMetrics(): void {
  for (const line of metrics.read()) {
    if (line.event === "resume" || line.event === "start") lifeResumeStep ??= line.step as number;
    if (line.event === "step") {
      lifeTensors = line.tensors as number;
      lastStep = line.step as number;
      record.stepsFirst ??= lastStep;
      record.stepsLast = lastStep;
      if (line.skips) lifeLastSkips = line.skips as Record<string, number>;
    }
    if (line.event === "end" && line.skips) lifeLastSkips = line.skips as Record<string, number>;
    if (line.event === "end") {
      record.examples += Number(line.examples ?? 0);
      record.trainSeconds += Number(line.seconds ?? 0);
    }
  }
}

async function checkNewCheckpoints(): Promise<void> {
  for (const c of await listCheckpoints(runDir).catch(() => [])) {
    if (seenCheckpoints.has(c.step)) continue;
    seenCheckpoints.add(c.step);
    record.checkpoints.push(await verify(c.step, c.dir));
  }
}

async function verify(step: number, dir: string): Promise<CheckpointRecord> {
  try {
    await verifyCheckpoint(dir, step);
    return { step, ok: true };
  } catch (err) {
    // Rotated away (keepCheckpoints) while being read: neither good nor bad.
    if (!existsSync(dir)) return { step, ok: false, gone: true };
    say(`CHECKPOINT step ${step} UNLOADABLE: ${(err as Error).message}`);
    return { step, ok: false, error: (err as Error).message };
  }
}

function sample(): void {
  if (!life || life.exit) return;
  const p = sampleProcess(life.pid);
  if (!p) return;
  const shm = entries("/dev/shm").filter((n) => n.startsWith("vatt-") && !shmBaseline.has(n)).length;
  life.samples.push({
    t: (Date.now() - life.startedAt) / 1000,
    ...p,
    tmpEntries: entries(tmpDir).length,
    shmEntries: shm,
    ...(lifeTensors !== undefined ? { tensors: lifeTensors } : {}),
  });
}

async function startTrainer(resume: boolean): Promise<void> {
  lives += 1;
  const expected = resume ? (await listCheckpoints(runDir)).at(-1)?.step : undefined;
  lifeTensors = undefined;
  lifeResumeStep = undefined;
  lifeLastSkips = undefined;
  life = startLife(lives, vattJs, trainerArgs(runDir), resume, join(out, `trainer-${lives}.log`), env);
  say(
    `trainer life ${lives} started (pid ${life.pid})${resume ? ` with --resume, expecting step ${expected}` : ""}`,
  );
  if (resume) record.resumes.push({ life: lives, expectedStep: expected ?? -1 });
}

/** Bookkeeping when a life has ended: its last metrics, orphans, leftovers; then a restart. */
async function endLife(how: string): Promise<void> {
  const l = life!;
  l.endedBy = how;
  readMetrics();
  const resume = record.resumes.find((r: ResumeRecord) => r.life === l.n);
  if (resume) {
    resume.resumedStep = lifeResumeStep;
    resume.printedStep = l.printedResumeStep;
  }
  for (const [k, v] of Object.entries(lifeLastSkips ?? {}))
    record.skipCounts[k] = (record.skipCounts[k] ?? 0) + v;
  record.skipKeys.push(...Object.keys(lifeLastSkips ?? {}));
  record.lives.push({
    n: l.n,
    pid: l.pid,
    resume: l.resume,
    seconds: (Date.now() - l.startedAt) / 1000,
    endedBy: how,
    exit: l.exit ?? { code: null, signal: null },
    samples: l.samples,
    stderr: l.stderr,
    descendants: l.lastDescendants,
  });
  l.log.end();
  // Orphans: the trainer's decoder processes must go with it (they check for their parent).
  const kids = l.lastDescendants;
  if (kids.length) {
    await sleep(10_000);
    const alive = kids.filter(isAlive);
    if (alive.length) {
      record.orphans.push({ life: l.n, pids: alive });
      say(`life ${l.n}: ${alive.length} of its processes outlived it by 10 s: ${alive.join(", ")}`);
    }
  }
}

async function stopTrainer(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  const l = life!;
  l.child.kill(signal);
  let exited = await waitExit(l, signal === "SIGTERM" ? 120_000 : 30_000);
  if (!exited) {
    say(`life ${l.n} did not exit within the limit after ${signal}; SIGKILL`);
    record.unexpectedExits.push({ life: l.n, why: `no exit after ${signal}` });
    l.child.kill("SIGKILL");
    exited = await waitExit(l, 30_000);
  }
  say(`life ${l.n} exited (code ${l.exit?.code}, signal ${l.exit?.signal}) after ${signal}`);
  await endLife(signal.toLowerCase());
  const last = (await listCheckpoints(runDir)).at(-1);
  if (last) {
    const r = await verify(last.step, last.dir);
    record.afterKill.push({ ...r, life: l.n });
    seenCheckpoints.add(last.step);
    say(
      `newest checkpoint after the ${signal}: step ${last.step} ${r.ok ? "loads" : `UNLOADABLE (${r.error})`}`,
    );
  }
}

// Track the descendants for the orphan check at each sample.
function trackDescendants(): void {
  if (!life || life.exit) return;
  life.lastDescendants = descendants(life.pid);
}

// ---- the run -----------------------------------------------------------------------------------------------
await startTrainer(false);
const deadline = started + minutes * 60_000;
let ticking = true;
const ticker = (async () => {
  while (ticking) {
    readMetrics();
    sample();
    trackDescendants();
    await checkNewCheckpoints();
    await sleep(3000);
  }
})();

const ACTIONS: [string, number][] = [
  ["add", 4],
  ["delete", 1],
  ["truncate", 1],
  ["garbage", 1],
  ["malformed-csv", 1],
  ["fill-disk", 1],
  ["sigterm", 1],
  ["sigkill", 1],
];
const totalWeight = ACTIONS.reduce((a, [, w]) => a + w, 0);
function pick(): string {
  let r = random.next() * totalWeight;
  for (const [name, w] of ACTIONS) {
    r -= w;
    if (r < 0) return name;
  }
  return ACTIONS[0][0];
}

while (Date.now() < deadline - 20_000) {
  await sleep(6000 + random.int(14_000));
  // A trainer that died by itself is recorded and restarted.
  if (life?.exit && !life.endedBy) {
    say(
      `life ${life.n} EXITED BY ITSELF (code ${life.exit.code}, signal ${life.exit.signal}); last stderr: ${life.stderr.slice(-3).join(" | ")}`,
    );
    record.unexpectedExits.push({
      life: life.n,
      why: `exit code ${life.exit.code} signal ${life.exit.signal}`,
    });
    await endLife("itself");
    await startTrainer((await listCheckpoints(runDir)).length > 0);
    continue;
  }
  let action = pick();
  const age = life ? (Date.now() - life.startedAt) / 1000 : 0;
  // Lives long enough to judge their resource trends, and a checkpoint to resume from.
  if (
    (action === "sigterm" || action === "sigkill") &&
    (age < Number(values["min-life"]) || seenCheckpoints.size === 0)
  )
    action = "add";
  if (action === "fill-disk" && !tmpfs) action = "add";
  let what: string;
  try {
    switch (action) {
      case "add":
        what = chaos.add();
        break;
      case "delete":
        what = await chaos.remove(life?.pid);
        break;
      case "truncate":
        what = await chaos.truncate(life?.pid);
        break;
      case "garbage":
        what = await chaos.garbage(life?.pid);
        break;
      case "malformed-csv":
        what = chaos.malformedCsv();
        break;
      case "fill-disk": {
        const filler = join(runDir, "soak-filler");
        const bytes = await fillDisk(filler);
        const hold = 10_000 + random.int(20_000);
        say(
          `filled the run directory's disk (${(bytes / 2 ** 20).toFixed(0)} MB) for ${(hold / 1000).toFixed(0)} s`,
        );
        await sleep(hold);
        await unfill(filler);
        what = "freed the disk";
        break;
      }
      default: {
        await stopTrainer(action === "sigterm" ? "SIGTERM" : "SIGKILL");
        await startTrainer(true);
        what = `${action} and restart`;
      }
    }
  } catch (err) {
    what = `failed: ${(err as Error).message}`;
  }
  record.actions[action] = (record.actions[action] ?? 0) + 1;
  record.actionLog.push({ t: (Date.now() - started) / 1000, action, what });
  say(`${action}: ${what}`);
}

// ---- the end: stop, then the frozen-data reference check ------------------------------------------------------
say("chaos over: stopping the trainer with SIGTERM");
if (life && !life.exit) await stopTrainer("SIGTERM");
else if (life && !life.endedBy) {
  record.unexpectedExits.push({ life: life.n, why: `exit code ${life.exit?.code}` });
  await endLife("itself");
}
ticking = false;
await ticker;
readMetrics();
record.metricsBad = metrics.badLines;
// Checkpoints still there at the end are read once more.
for (const c of await listCheckpoints(runDir))
  record.afterKill.push({ ...(await verify(c.step, c.dir)), life: 0 });

say("reference check: the data frozen, an uninterrupted segment against an interrupted+resumed one");
record.reference = await referenceCheck({
  runDir,
  out,
  vattJs,
  args: trainerArgs,
  env,
  segment: 300,
  say,
});
await writeSummary(record);
if (tmpfs) execFileSync("umount", ["-l", runDir], { stdio: "ignore" });
if (!values.keep) {
  for (const d of [dataDir, poolDir, join(out, "ref-a"), join(out, "ref-b")])
    await rm(d, { recursive: true, force: true });
}
say(`summary: ${join(out, "soak-summary.txt")}`);
process.exit(record.allOk ? 0 : 1);
