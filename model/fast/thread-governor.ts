/**
 * The second core, where it pays (issue 21). On a machine of two cores a training run keeps its matrix products on one
 * thread, because the other core decodes clips and a second GEMM thread would fight it. But when the model is the
 * bottleneck (a large preset, Parquet input, clips decoded far ahead) the decoders sit idle behind a full buffer,
 * and two threads make a step up to 1.5x faster (bench model's block: 23.8 vs 35.4 ms on an idle machine).
 *
 * The governor decides from what the training loop measures, step by step: it tries every core once the loop has
 * stopped waiting for data, keeps them only if steps really got faster, and goes back to one thread as soon as the
 * loop waits for data again (the decoders need their core back). Products and attention give bit-identical results
 * on any thread count (they split rows and columns, never the sum), so switching never changes a run's numbers.
 */

export interface ThreadGovernorOptions {
  /** Threads when the decoders need their core (1 on two cores). */
  few: number;
  /** Threads when they do not (all cores). */
  many: number;
  /** Switches the products and attention to `threads` (model/fast `setFastThreads`). */
  use: (threads: number) => void;
  /** Told of each decision, with why (metrics.jsonl). */
  onSwitch?: (e: ThreadDecision) => void;
  /** Steps per measurement: this many fed steps before a trial, and this many timed on trial. */
  window?: number;
  /** A trial must cut the time per step by this share to keep `many` threads. */
  minGain?: number;
  /** Steps to wait after a trial that did not pay before trying again; doubled after each such trial. */
  cooldown?: number;
}

/** "trial": every core tried; "kept": they paid; "no-gain": they did not; "starved": the decoders need a core back. */
export interface ThreadDecision {
  step: number;
  threads: number;
  decision: "trial" | "kept" | "no-gain" | "starved";
  reason: string;
}

/** A step that waited for data longer than this share of its compute counts as starved. */
const STARVED = 0.05;

/** The longest wait between trials, in steps. */
const MAX_COOLDOWN = 50_000;

type State = "few" | "trial" | "many";

export class ThreadGovernor {
  private state: State = "few";
  private readonly window: number;
  private readonly minGain: number;
  private cooldown: number;
  /** Seconds per step (wait + compute) of the last run of fed steps on `few` threads. */
  private recent: number[] = [];
  private baseline = 0;
  private trialTimes: number[] = [];
  private starvedInARow = 0;
  private resumeAt = 0;

  constructor(private readonly o: ThreadGovernorOptions) {
    this.window = o.window ?? 8;
    this.minGain = o.minGain ?? 0.05;
    this.cooldown = o.cooldown ?? 400;
  }

  get threads(): number {
    return this.state === "few" ? this.o.few : this.o.many;
  }

  /** After step `step`: the seconds the loop waited for its batch and the seconds the step computed. */
  observe(step: number, waitedSeconds: number, computeSeconds: number): void {
    const starved = waitedSeconds > STARVED * computeSeconds;
    const seconds = waitedSeconds + computeSeconds;
    switch (this.state) {
      case "few": {
        if (starved || step < this.resumeAt) {
          this.recent = [];
          return;
        }
        this.recent.push(seconds);
        if (this.recent.length < this.window) return;
        this.baseline = median(this.recent);
        this.recent = [];
        this.trialTimes = [];
        this.switchTo("trial", step, "trial", "the data is ahead of the model: trying every core");
        return;
      }
      case "trial": {
        this.trialTimes.push(seconds);
        if (this.trialTimes.length < this.window) return;
        const trial = median(this.trialTimes);
        const gain = 1 - trial / this.baseline;
        if (gain >= this.minGain) {
          this.starvedInARow = 0;
          this.switchTo(
            "many",
            step,
            "kept",
            `steps ${pct(gain)} faster (${ms(trial)} vs ${ms(this.baseline)})`,
          );
        } else {
          this.resumeAt = step + this.cooldown;
          this.cooldown = Math.min(2 * this.cooldown, MAX_COOLDOWN);
          this.switchTo("few", step, "no-gain", `no gain (${ms(trial)} vs ${ms(this.baseline)} per step)`);
        }
        return;
      }
      case "many": {
        this.starvedInARow = starved ? this.starvedInARow + 1 : 0;
        if (this.starvedInARow < 2) return;
        // The decoders fell behind: give their core back, and try again only after a while.
        this.resumeAt = step + this.cooldown;
        this.switchTo("few", step, "starved", "the model waits for data again: the decoders need their core");
        return;
      }
    }
  }

  private switchTo(state: State, step: number, decision: ThreadDecision["decision"], reason: string): void {
    const before = this.threads;
    this.state = state;
    if (this.threads !== before) this.o.use(this.threads);
    this.o.onSwitch?.({ step, threads: this.threads, decision, reason });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;
const ms = (s: number): string => `${(1000 * s).toFixed(0)} ms`;
