/** The soak's end: every assertion judged (bin/soak/checks.ts), written as soak-summary.json and a text page. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CheckpointRecord,
  checkCheckpoints,
  checkResumes,
  checkSkips,
  type ResourceKey,
  type ResourceSample,
  type ResumeRecord,
  type Trend,
  trendOf,
  type Verdict,
} from "./checks.js";
import type { ReferenceResult } from "./reference.js";

export interface LifeRecord {
  n: number;
  pid: number;
  resume: boolean;
  seconds: number;
  endedBy: string;
  exit: { code: number | null; signal: string | null };
  samples: ResourceSample[];
  stderr: string[];
  descendants: number[];
}

export interface SoakRecord {
  seed: number;
  minutes: number;
  tmpfs: boolean;
  out: string;
  startedAt: string;
  lives: LifeRecord[];
  actions: Record<string, number>;
  actionLog: { t: number; action: string; what: string }[];
  resumes: ResumeRecord[];
  checkpoints: CheckpointRecord[];
  afterKill: (CheckpointRecord & { life: number })[];
  orphans: { life: number; pids: number[] }[];
  metricsBad: string[];
  skipKeys: string[];
  skipCounts: Record<string, number>;
  stepsFirst?: number;
  stepsLast?: number;
  examples: number;
  trainSeconds: number;
  unexpectedExits: { life: number; why: string }[];
  reference?: ReferenceResult;
  allOk?: boolean;
}

/** Tolerances of the no-growth checks: the last quarter's median over the first's, after 60 s of warm-up. */
export const TOLERANCES: Record<ResourceKey, { relative: number; absolute: number }> = {
  rssMB: { relative: 0.2, absolute: 48 },
  fds: { relative: 0, absolute: 6 },
  threads: { relative: 0, absolute: 4 },
  children: { relative: 0, absolute: 2 },
  tmpEntries: { relative: 0, absolute: 3 },
  shmEntries: { relative: 0, absolute: 3 },
  tensors: { relative: 0, absolute: 8 },
};

export function lifeTrends(samples: ResourceSample[]): Trend[] {
  return (Object.keys(TOLERANCES) as ResourceKey[]).map((key) =>
    trendOf(samples, key, { warmupSeconds: 60, minSamples: 12, ...TOLERANCES[key] }),
  );
}

export async function writeSummary(r: SoakRecord): Promise<void> {
  const trends = r.lives.map((l) => ({ life: l.n, trends: lifeTrends(l.samples) }));
  const badTrends = trends.flatMap((t) =>
    t.trends.filter((x) => !x.ok).map((x) => `life ${t.life} ${x.key} ${x.first} -> ${x.last}`),
  );
  const judged = trends.reduce((n, t) => n + t.trends.filter((x) => x.judged).length, 0);
  const kills = r.lives.filter((l) => l.endedBy === "sigterm" || l.endedBy === "sigkill");
  const stderr = r.lives.flatMap((l) => l.stderr);
  const verdicts: Verdict[] = [
    checkResumes(r.resumes),
    checkCheckpoints([...r.checkpoints, ...r.afterKill]),
    r.reference ?? {
      name: "losses after a resume equal an uninterrupted run's",
      ok: false,
      detail: "not run",
    },
    {
      name: "RSS, live tensors, fds, threads, children, temporary files stay flat in every life",
      ok: badTrends.length === 0 && judged > 0,
      detail: badTrends.length
        ? badTrends.join("; ")
        : `${judged} trends judged in ${trends.length} lives, none grew`,
    },
    checkSkips(r.skipKeys, stderr),
    {
      name: "no trainer exited by itself or hung on a signal",
      ok: r.unexpectedExits.length === 0,
      detail: r.unexpectedExits.length
        ? r.unexpectedExits.map((e) => `life ${e.life}: ${e.why}`).join("; ")
        : "none",
    },
    {
      name: "no trainer process outlived its trainer",
      ok: r.orphans.length === 0,
      detail: r.orphans.length
        ? r.orphans.map((o) => `life ${o.life}: ${o.pids.join(",")}`).join("; ")
        : "none",
    },
    {
      name: "every metrics.jsonl line parses",
      ok: r.metricsBad.length === 0,
      detail: r.metricsBad.length
        ? `${r.metricsBad.length} bad: ${r.metricsBad.slice(0, 3).join(" | ")}`
        : "all parse",
    },
  ];
  r.allOk = verdicts.every((v) => v.ok);
  // The first sample after warm-up in the first life long enough to have one (else its first after 10 s).
  const withSamples = r.lives.filter((l) => l.samples.length > 0);
  const lastLife = withSamples.at(-1);
  const first =
    withSamples.map((l) => l.samples.find((s) => s.t >= 60)).find((s) => s !== undefined) ??
    withSamples[0]?.samples.find((s) => s.t >= 10);
  const last = lastLife?.samples.at(-1);
  const steps = (r.stepsLast ?? 0) - (r.stepsFirst ?? 0);
  const figures = {
    lives: r.lives.length,
    restarts: r.resumes.length,
    kills: {
      sigterm: kills.filter((l) => l.endedBy === "sigterm").length,
      sigkill: kills.filter((l) => l.endedBy === "sigkill").length,
    },
    chaosActions: r.actions,
    steps: { first: r.stepsFirst, last: r.stepsLast },
    examplesPerSecond: r.trainSeconds > 0 ? r.examples / r.trainSeconds : undefined,
    approxStepsPerMinute: steps / Math.max(1e-9, r.minutes),
    skipsByReason: r.skipCounts,
    checkpointsLoaded: [...r.checkpoints, ...r.afterKill].filter((c) => c.ok).length,
    resourcesFirstVsLast: { first, last },
  };
  const summary = {
    figures,
    verdicts,
    allOk: r.allOk,
    trends,
    record: { ...r, lives: r.lives.map((l) => ({ ...l, stderr: l.stderr.slice(-40) })) },
  };
  writeFileSync(join(r.out, "soak-summary.json"), `${JSON.stringify(summary, null, 1)}\n`);
  const fmt = (s: ResourceSample | undefined) =>
    s
      ? `RSS ${s.rssMB} MB, ${s.fds} fds, ${s.threads} threads, ${s.children} children, ${s.tmpEntries} tmp, ${s.shmEntries} shm, ${s.tensors ?? "?"} tensors`
      : "?";
  const text = [
    `vatt soak: ${r.minutes} min, seed ${r.seed}, started ${r.startedAt}, run dir on ${r.tmpfs ? "a tmpfs" : "a plain folder (no tmpfs)"}`,
    `lives ${figures.lives}, restarts ${figures.restarts} (SIGTERM ${figures.kills.sigterm}, SIGKILL ${figures.kills.sigkill}), unexpected exits ${r.unexpectedExits.length}`,
    `chaos actions: ${Object.entries(r.actions)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    `steps ${r.stepsFirst} -> ${r.stepsLast}; ${figures.examplesPerSecond?.toFixed(2) ?? "?"} examples/s over the lives that ended cleanly`,
    `skips by reason (lives' last counts, summed): ${
      Object.entries(r.skipCounts)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "none"
    }`,
    `checkpoints loaded: ${figures.checkpointsLoaded}`,
    `first sample after warm-up: ${fmt(first)}`,
    `last sample:                ${fmt(last)}`,
    "",
    ...verdicts.map((v) => `${v.ok ? "PASS" : "FAIL"}  ${v.name}: ${v.detail}`),
    "",
    r.allOk ? "every assertion held" : "SOME ASSERTIONS FAILED",
  ].join("\n");
  writeFileSync(join(r.out, "soak-summary.txt"), `${text}\n`);
  console.log(text);
}
