/**
 * The long fuzzing run behind `npm run fuzz -- TARGET --minutes N`.
 *
 * The parent forks a child process that runs fast-check with a fresh random seed per round (one round per minute
 * at most). Before each case the child sends the parent the input, so when the child hangs past the case limit
 * (a loop no timer can interrupt) or dies (a native crash, out of memory), the parent still holds the input that
 * did it: it saves it into the corpus, reports it and starts a new child for the time left. A failure found inside
 * the child is shrunk by fast-check and saved the same way.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { contractProperty, type FuzzInput, type FuzzTarget, saveToCorpus, showInput } from "./harness.js";
import { startingInputs, TARGETS } from "./targets.js";

export interface FuzzFailure {
  target: string;
  kind: "contract" | "hang" | "crash";
  message: string;
  seed?: number;
  path?: string;
  /** The corpus file the (shrunk) input was saved to. */
  saved: string;
  input: string;
}

export interface FuzzReport {
  target: string;
  tried: number;
  rounds: number;
  /** Distinct failures, in the order found. */
  failures: FuzzFailure[];
  /** How many times each distinct failure was hit. */
  repeats: Record<string, number>;
}

type ChildMessage =
  | { kind: "case"; input: FuzzInput }
  | { kind: "round"; seed: number; tried: number }
  | { kind: "failure"; seed: number; path: string; tried: number; message: string; input: FuzzInput }
  | { kind: "done" };

interface ChildJob {
  target: string;
  deadline: number;
}

const ROUND_MS = 60_000;

/** The child: rounds of fast-check until the deadline, each case announced to the parent first. */
async function childMain(job: ChildJob): Promise<void> {
  const send = (m: ChildMessage) =>
    new Promise<void>((resolve) => {
      process.send?.(m, undefined, {}, () => resolve());
    });
  const target = TARGETS[job.target];
  const dir = await mkdtemp(join(tmpdir(), `vatt-fuzz-${target.name}-`));
  const announced: FuzzTarget = {
    ...target,
    run: async (input, d) => {
      await send({ kind: "case", input });
      return target.run(input, d);
    },
  };
  // Seeds and corpus as they were at the start: a counterexample saved during this run is not mutated again (it
  // would make every later round rediscover the same failure at once).
  const seeds = await startingInputs(target);
  try {
    while (Date.now() < job.deadline - 1000) {
      const seed = randomInt(2 ** 31);
      const result = await fc.check(contractProperty(announced, seeds, dir), {
        seed,
        numRuns: Number.MAX_SAFE_INTEGER,
        interruptAfterTimeLimit: Math.min(ROUND_MS, job.deadline - Date.now()),
        markInterruptAsFailure: false,
        timeout: target.caseTimeoutMs,
      });
      if (result.failed && result.counterexample) {
        const message =
          result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
        await send({
          kind: "failure",
          seed,
          path: result.counterexamplePath ?? "",
          tried: result.numRuns,
          message,
          input: result.counterexample[0],
        });
      } else await send({ kind: "round", seed, tried: result.numRuns });
    }
  } finally {
    await target.close?.();
    await rm(dir, { recursive: true, force: true });
  }
  await send({ kind: "done" });
}

/** Runs `targetName` for `minutes`, printing progress with `log`; returns what was tried and found. */
export async function fuzzFor(
  targetName: string,
  minutes: number,
  log: (line: string) => void = console.log,
): Promise<FuzzReport> {
  const target = TARGETS[targetName];
  if (!target)
    throw new Error(
      `unknown fuzz target '${targetName}'; the targets are ${Object.keys(TARGETS).join(", ")}`,
    );
  const deadline = Date.now() + minutes * 60_000;
  const report: FuzzReport = { target: targetName, tried: 0, rounds: 0, failures: [], repeats: {} };
  log(`fuzz ${targetName} for ${minutes} min: ${target.readers}`);
  while (Date.now() < deadline - 1000) {
    const ended = await runChild(target, deadline, report, log);
    if (ended === "done") break;
  }
  log(
    `fuzz ${targetName}: ${report.tried} inputs tried in ${report.rounds} rounds, ${report.failures.length} distinct failures`,
  );
  for (const [signature, n] of Object.entries(report.repeats)) log(`  ${n} x ${signature}`);
  return report;
}

async function runChild(
  target: FuzzTarget,
  deadline: number,
  report: FuzzReport,
  log: (line: string) => void,
): Promise<"done" | "lost"> {
  const job: ChildJob = { target: target.name, deadline };
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, VATT_FUZZ_CHILD: JSON.stringify(job) },
    serialization: "advanced",
    execArgv: [...process.execArgv, "--no-warnings"], // e.g. YAML's warnings on every ambiguous generated alias
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let last: FuzzInput | undefined;
  let lastAt = Date.now();
  let casesThisRound = 0;
  let done = false;
  const record = async (failure: Omit<FuzzFailure, "saved" | "input" | "target">, input: FuzzInput) => {
    // The same failure (its message with numbers blanked) is counted again but saved and printed once.
    const signature = `${failure.kind}:${failure.message.split("\n")[0].replace(/\d+/g, "N")}`;
    report.repeats[signature] = (report.repeats[signature] ?? 0) + 1;
    if (report.repeats[signature] > 1) return;
    const saved = await saveToCorpus(target.name, input);
    const full = { ...failure, target: target.name, saved, input: showInput(input) };
    report.failures.push(full);
    log(
      `FAILURE (${full.kind}) ${full.message}\n  seed ${full.seed ?? "-"} path ${full.path ?? "-"}\n  input ${full.input}\n  saved ${saved}`,
    );
  };
  child.on("message", (m: ChildMessage) => {
    lastAt = Date.now();
    if (m.kind === "case") {
      last = m.input;
      casesThisRound++;
    } else if (m.kind === "round") {
      report.tried += m.tried;
      report.rounds++;
      casesThisRound = 0;
      log(`  round seed ${m.seed}: ${m.tried} inputs, ${report.tried} in all`);
    } else if (m.kind === "failure") {
      report.tried += m.tried;
      report.rounds++;
      casesThisRound = 0;
      void record({ kind: "contract", message: m.message, seed: m.seed, path: m.path }, m.input);
    } else if (m.kind === "done") done = true;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const hangMs = target.caseTimeoutMs * 3 + 15_000;
  const watchdog = setInterval(() => {
    if (Date.now() - lastAt > hangMs) child.kill("SIGKILL");
  }, 1000);
  const { code, signal } = await exit;
  clearInterval(watchdog);
  if (done) return "done";
  report.tried += casesThisRound;
  const hung = Date.now() - lastAt > hangMs;
  if (last) {
    await record(
      {
        kind: hung ? "hang" : "crash",
        message: hung
          ? `no progress for ${hangMs} ms on this input`
          : `the fuzzing process died (exit ${code}, signal ${signal})`,
      },
      last,
    );
  } else log(`the fuzzing process ended early (exit ${code}, signal ${signal}) before any input`);
  return last ? "lost" : "done";
}

if (process.env.VATT_FUZZ_CHILD) {
  childMain(JSON.parse(process.env.VATT_FUZZ_CHILD) as ChildJob).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
