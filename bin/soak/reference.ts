/**
 * The soak's exact-resume check, run once the chaos is over and the data folder no longer changes. Two copies of
 * the run directory continue from the same (newest) checkpoint C: A trains 2K steps without a break; B is sent
 * SIGTERM once it has passed step C+K/2... (it stops after the current step with a checkpoint) and is restarted
 * with --resume to the same end. B's losses after its resume must equal A's at the same steps, bit for bit (as
 * test/sinks/training-loop.test.ts "resumes exactly" compares). Under chaos the data changes between a kill and
 * the restart, so there the losses legitimately differ; this is the honest place to compare them.
 */
import { cp, stat } from "node:fs/promises";
import { join } from "node:path";
import { listCheckpoints } from "../../sinks/checkpoints.js";
import { checkExactResume, type Verdict } from "./checks.js";
import { MetricsTail } from "./metrics-tail.js";
import { startLife, waitExit } from "./trainer.js";

export interface ReferenceOptions {
  runDir: string;
  out: string;
  vattJs: string;
  args: (dir: string, steps: number, logEvery: number) => string[];
  env: NodeJS.ProcessEnv;
  /** Steps each side trains past the checkpoint. */
  segment: number;
  say: (line: string) => void;
}

export interface ReferenceResult extends Verdict {
  fromStep?: number;
  killedAt?: number;
  resumedAt?: number;
  reference?: [number, number][];
  resumed?: [number, number][];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function copyRun(from: string, to: string): Promise<MetricsTail> {
  await cp(from, to, { recursive: true, filter: (src) => !src.endsWith("soak-filler") });
  const size = (await stat(join(to, "metrics.jsonl")).catch(() => undefined))?.size ?? 0;
  return new MetricsTail(join(to, "metrics.jsonl"), size);
}

function losses(lines: Record<string, unknown>[], into: Map<number, number>): void {
  for (const l of lines) if (l.event === "step") into.set(l.step as number, l.loss as number);
}

export async function referenceCheck(o: ReferenceOptions): Promise<ReferenceResult> {
  const name = "losses after a resume equal an uninterrupted run's (data frozen)";
  const last = (await listCheckpoints(o.runDir)).at(-1);
  if (!last) return { name, ok: false, detail: "no checkpoint to start from" };
  const c = last.step;
  const end = c + o.segment;
  const dirA = join(o.out, "ref-a");
  const dirB = join(o.out, "ref-b");
  const tailA = await copyRun(o.runDir, dirA);
  const tailB = await copyRun(o.runDir, dirB);

  o.say(`reference A: step ${c} -> ${end} without a break`);
  const a = startLife(1, o.vattJs, o.args(dirA, end, 1), true, join(o.out, "reference-a.log"), o.env);
  if (!(await waitExit(a, 600_000))) {
    a.child.kill("SIGKILL");
    return { name, ok: false, detail: "reference A did not finish in 10 minutes", fromStep: c };
  }
  const reference = new Map<number, number>();
  losses(tailA.read(), reference);

  o.say(`reference B: step ${c} -> ${end}, SIGTERM past step ${c + o.segment / 2}, then --resume`);
  const b1 = startLife(1, o.vattJs, o.args(dirB, end, 1), true, join(o.out, "reference-b1.log"), o.env);
  let killedAt: number | undefined;
  const before = new Map<number, number>();
  for (let waited = 0; waited < 600_000 && !b1.exit; waited += 200) {
    losses(tailB.read(), before);
    const top = Math.max(0, ...before.keys());
    if (top >= c + o.segment / 2) {
      b1.child.kill("SIGTERM");
      killedAt = top;
      break;
    }
    await sleep(200);
  }
  await waitExit(b1, 120_000);
  tailB.read();
  const b2 = startLife(2, o.vattJs, o.args(dirB, end, 1), true, join(o.out, "reference-b2.log"), o.env);
  if (!(await waitExit(b2, 600_000))) {
    b2.child.kill("SIGKILL");
    return {
      name,
      ok: false,
      detail: "reference B's resumed part did not finish in 10 minutes",
      fromStep: c,
    };
  }
  const lines = tailB.read();
  const resumeAt = lines.find((l) => l.event === "resume")?.step as number | undefined;
  const resumed = new Map<number, number>();
  losses(lines, resumed);
  const verdict = checkExactResume(reference, resumed);
  return {
    ...verdict,
    detail: `from checkpoint ${c}: B stopped by SIGTERM at step ${killedAt ?? "?"} and resumed at ${resumeAt ?? "?"}; ${verdict.detail}`,
    ok: verdict.ok && killedAt !== undefined && killedAt < end && resumeAt !== undefined,
    fromStep: c,
    killedAt,
    resumedAt: resumeAt,
    reference: [...reference],
    resumed: [...resumed],
  };
}
