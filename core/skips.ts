/**
 * Per-example failures (a corrupt video, a malformed CSV line, a decode that timed out) never tear a stream down:
 * they are recorded here with where and why, counted, and the stream goes on. The counts flow to the metrics.
 */
export interface SkipEvent {
  /** Stage or file that skipped, e.g. "decode", "howto100m:caption.json". */
  where: string;
  /** Short machine-friendly reason, e.g. "corrupt", "timeout", "missing-file", "bad-row". */
  reason: string;
  /** Human message: what was wrong, where (file, line), what to do. */
  message: string;
}

export class SkipLog {
  private readonly counts = new Map<string, number>();
  private readonly recent: SkipEvent[] = [];
  private total = 0;

  constructor(
    private readonly keepRecent = 50,
    private readonly onSkip?: (event: SkipEvent) => void,
  ) {}

  record(where: string, reason: string, message: string): void {
    const event = { where, reason, message };
    const key = `${where}:${reason}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.total += 1;
    this.recent.push(event);
    if (this.recent.length > this.keepRecent) this.recent.shift();
    this.onSkip?.(event);
  }

  get count(): number {
    return this.total;
  }

  /** Counts keyed by "where:reason". */
  byReason(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  lastEvents(): readonly SkipEvent[] {
    return this.recent;
  }
}
