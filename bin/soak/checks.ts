/**
 * The soak's assertions as pure functions over what it recorded (bin/soak.ts gathers the records): each returns a
 * verdict with the figures behind it, so the summary can say why it held or failed. Unit-tested in
 * test/bin/soak-checks.test.ts.
 */

export interface Verdict {
  name: string;
  ok: boolean;
  detail: string;
}

/** One sample of a trainer process's resources. */
export interface ResourceSample {
  /** Seconds since the process started. */
  t: number;
  rssMB: number;
  fds: number;
  threads: number;
  children: number;
  tmpEntries: number;
  shmEntries: number;
  /** Live tensors from the trainer's last metrics line (undefined before the first). */
  tensors?: number;
}

export type ResourceKey = Exclude<keyof ResourceSample, "t">;

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface TrendOptions {
  /** Seconds of a process life ignored as warm-up. */
  warmupSeconds: number;
  /** Samples needed after warm-up to judge (fewer: the life is too short, reported as not judged). */
  minSamples: number;
  /** Allowed growth of the last quarter's median over the first quarter's: relative and absolute (either). */
  relative: number;
  absolute: number;
}

export interface Trend {
  key: ResourceKey;
  judged: boolean;
  first: number;
  last: number;
  ok: boolean;
}

/**
 * No growth trend: after warm-up, the median of the last quarter of samples may exceed the first quarter's by at
 * most max(relative * first, absolute). A short life (too few samples) is not judged and passes.
 */
export function trendOf(samples: ResourceSample[], key: ResourceKey, o: TrendOptions): Trend {
  const values = samples
    .filter((s) => s.t >= o.warmupSeconds && s[key] !== undefined)
    .map((s) => s[key] as number);
  if (values.length < o.minSamples) {
    return {
      key,
      judged: false,
      first: values[0] ?? Number.NaN,
      last: values.at(-1) ?? Number.NaN,
      ok: true,
    };
  }
  const q = Math.max(1, Math.floor(values.length / 4));
  const first = median(values.slice(0, q));
  const last = median(values.slice(-q));
  const ok = last - first <= Math.max(o.relative * Math.abs(first), o.absolute);
  return { key, judged: true, first, last, ok };
}

/** What the soak expected at a restart and what the resumed trainer said. */
export interface ResumeRecord {
  life: number;
  /** The newest checkpoint's step when the trainer was restarted. */
  expectedStep: number;
  /** The step of the "resume" event the new life wrote to metrics.jsonl (undefined: none seen). */
  resumedStep?: number;
  /** The step in the stderr line "vatt: resumed DIR at step N". */
  printedStep?: number;
}

export function checkResumes(records: ResumeRecord[]): Verdict {
  const bad = records.filter(
    (r) =>
      r.resumedStep !== r.expectedStep || (r.printedStep !== undefined && r.printedStep !== r.expectedStep),
  );
  return {
    name: "every restart resumed at the newest checkpoint's step",
    ok: bad.length === 0,
    detail:
      bad.length === 0
        ? `${records.length} restarts, each resumed where expected`
        : bad
            .map(
              (r) =>
                `life ${r.life}: expected step ${r.expectedStep}, metrics said ${r.resumedStep ?? "nothing"}, stderr ${r.printedStep ?? "nothing"}`,
            )
            .join("; "),
  };
}

export interface CheckpointRecord {
  step: number;
  ok: boolean;
  /** Rotated away before it could be read: neither good nor bad. */
  gone?: boolean;
  error?: string;
}

export function checkCheckpoints(records: CheckpointRecord[]): Verdict {
  const read = records.filter((r) => !r.gone);
  const bad = read.filter((r) => !r.ok);
  return {
    name: "every checkpoint seen was loadable",
    ok: bad.length === 0 && read.length > 0,
    detail:
      `${read.length} loaded, ${records.length - read.length} rotated away before reading` +
      (bad.length ? `; unloadable: ${bad.map((r) => `step ${r.step} (${r.error})`).join("; ")}` : ""),
  };
}

/** Losses by step of the uninterrupted reference and of the interrupted+resumed run (after its resume). */
export function checkExactResume(reference: Map<number, number>, resumed: Map<number, number>): Verdict {
  const steps = [...resumed.keys()].filter((s) => reference.has(s)).sort((a, b) => a - b);
  const diffs = steps.filter((s) => reference.get(s) !== resumed.get(s));
  return {
    name: "losses after a resume equal an uninterrupted run's (data frozen)",
    ok: steps.length > 0 && diffs.length === 0,
    detail:
      steps.length === 0
        ? "no step to compare"
        : `${steps.length} steps compared (${steps[0]}-${steps.at(-1)}), ${diffs.length} differ` +
          (diffs.length
            ? `: ${diffs
                .slice(0, 5)
                .map((s) => `step ${s} ${reference.get(s)} vs ${resumed.get(s)}`)
                .join(", ")}`
            : ", bit for bit"),
  };
}

/** Every skip key is "where:reason" with both parts present and not "unknown". */
export function badSkipKeys(keys: Iterable<string>): string[] {
  return [...keys].filter((k) => {
    const i = k.indexOf(":");
    if (i <= 0 || i === k.length - 1) return true;
    const where = k.slice(0, i).trim();
    const reason = k.slice(i + 1).trim();
    return !where || !reason || /^unknown$/i.test(where) || /^unknown$/i.test(reason);
  });
}

/** Stderr lines "vatt: skipped: MESSAGE" whose message is empty or "unknown"/"undefined". */
export function badSkipLines(lines: string[]): string[] {
  return lines.filter((l) => {
    const m = /^vatt: skipped:(.*)$/.exec(l);
    if (!m) return false;
    const msg = m[1].trim();
    return msg.length === 0 || /^(unknown|undefined|null)\b/i.test(msg);
  });
}

export function checkSkips(keys: string[], stderrLines: string[]): Verdict {
  const badKeys = badSkipKeys(keys);
  const badLines = badSkipLines(stderrLines);
  return {
    name: "every skip carries where:reason and a message",
    ok: badKeys.length === 0 && badLines.length === 0,
    detail:
      `${new Set(keys).size} distinct keys, ${stderrLines.filter((l) => l.startsWith("vatt: skipped:")).length} stderr skip lines` +
      (badKeys.length ? `; bad keys: ${badKeys.join(", ")}` : "") +
      (badLines.length ? `; bad lines: ${badLines.slice(0, 3).join(" | ")}` : ""),
  };
}
