/**
 * Per-example failures (a corrupt video, a malformed CSV line, a decode that timed out) never tear a stream down:
 * they are recorded here with where and why, counted, and the stream goes on. The counts flow to the metrics.
 *
 * A long run reads its data pass after pass, so one bad line is met once per pass: beside the raw count, the log
 * tells distinct items apart (a file, or "FILE line N" for a row) and counts the passes each was seen in, so the
 * summary can say "1 line, seen in 16 passes" instead of "16".
 */
export interface SkipEvent {
  /** Stage or file that skipped, e.g. "decode", "howto100m:caption.json". */
  where: string;
  /** Short machine-friendly reason, e.g. "corrupt", "timeout", "missing-file", "bad-row". */
  reason: string;
  /** Human message: what was wrong, where (file, line), what to do. */
  message: string;
  /** What was skipped: a file, or "FILE line N" for a row; the message itself when the recorder did not say. */
  item: string;
  /** The pass over the data (the epoch, or e.g. "eval@100") it was seen in; absent for a one-off read. */
  pass?: number | string;
}

/** What was skipped and when: the identity of the item and the pass it was met in. */
export interface SkipSeen {
  item?: string;
  pass?: number | string;
  /** What kind of thing the item is, for the summary ("caption", "video"); default: guessed from the item. */
  unit?: string;
}

/** One "where:reason" of the summary. */
export interface SkipTally {
  /** Skips recorded: one item met in 16 passes counts 16. */
  count: number;
  /** Distinct items (lines, files, ...). */
  items: number;
  /** Fewest and most passes one item was seen in. */
  passes: { min: number; max: number };
  /** What the items are: "line", "row", "file" or "item". */
  unit: string;
  /** Items met after the log stopped telling items apart (`maxItems`): counted in `count` only. */
  untracked?: number;
}

interface ItemTally {
  passes: number;
  lastPass: number | string | undefined;
}

/** What kind of thing an item id names, for the summary's wording. */
export function itemUnit(item: string): string {
  if (/ line \d+$/.test(item)) return "line";
  if (/ row \d+$/.test(item)) return "row";
  if (/[/\\]/.test(item) || /\.[A-Za-z0-9]{1,5}$/.test(item)) return "file";
  return "item";
}

export class SkipLog {
  private readonly counts = new Map<string, number>();
  private readonly items = new Map<string, Map<string, ItemTally>>();
  private readonly untracked = new Map<string, number>();
  private readonly units = new Map<string, string>();
  private readonly recent: SkipEvent[] = [];
  private total = 0;
  private tracked = 0;

  /**
   * @param keepRecent events kept for `lastEvents()`
   * @param onSkip called for every event (printing, forwarding)
   * @param maxItems distinct items told apart in all (each costs a map entry); past it, skips are still counted
   */
  constructor(
    private readonly keepRecent = 50,
    private readonly onSkip?: (event: SkipEvent) => void,
    private readonly maxItems = 100_000,
  ) {}

  /**
   * Records one skip. `seen.item` names the thing skipped (default: the message, which names it too) and
   * `seen.pass` the pass it was met in. Passes are counted as changes of pass per item, which is exact because a
   * run meets an item's passes in order (the next pass starts only after the last one).
   */
  record(where: string, reason: string, message: string, seen: SkipSeen = {}): void {
    const item = seen.item ?? message;
    const event: SkipEvent = {
      where,
      reason,
      message,
      item,
      ...(seen.pass !== undefined ? { pass: seen.pass } : {}),
    };
    const key = `${where}:${reason}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.total += 1;
    let byItem = this.items.get(key);
    if (!byItem) {
      byItem = new Map();
      this.items.set(key, byItem);
      this.units.set(key, seen.unit ?? itemUnit(item));
    }
    const tally = byItem.get(item);
    if (tally) {
      if (tally.lastPass !== seen.pass) {
        tally.passes += 1;
        tally.lastPass = seen.pass;
      }
    } else if (this.tracked < this.maxItems) {
      byItem.set(item, { passes: 1, lastPass: seen.pass });
      this.tracked += 1;
    } else {
      this.untracked.set(key, (this.untracked.get(key) ?? 0) + 1);
    }
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

  /** Per "where:reason": the count, the distinct items and the passes they were seen in. */
  tallies(): Record<string, SkipTally> {
    const out: Record<string, SkipTally> = {};
    for (const key of Object.keys(this.byReason())) {
      const byItem = this.items.get(key) ?? new Map<string, ItemTally>();
      let min = Number.POSITIVE_INFINITY;
      let max = 0;
      for (const t of byItem.values()) {
        min = Math.min(min, t.passes);
        max = Math.max(max, t.passes);
      }
      const untracked = this.untracked.get(key);
      out[key] = {
        count: this.counts.get(key) ?? 0,
        items: byItem.size,
        passes: { min: byItem.size > 0 ? min : 0, max },
        unit: this.units.get(key) ?? "item",
        ...(untracked ? { untracked } : {}),
      };
    }
    return out;
  }

  /** The items of one "where:reason" with the passes each was seen in, most passes first (at most `limit`). */
  itemsOf(key: string, limit = 20): { item: string; passes: number }[] {
    return [...(this.items.get(key) ?? new Map<string, ItemTally>()).entries()]
      .map(([item, t]) => ({ item, passes: t.passes }))
      .sort((a, b) => b.passes - a.passes || a.item.localeCompare(b.item))
      .slice(0, limit);
  }

  lastEvents(): readonly SkipEvent[] {
    return this.recent;
  }
}

function plural(unit: string): string {
  return /(s|x|ch|sh)$/.test(unit) ? `${unit}es` : `${unit}s`;
}

/** "1 line, seen in 16 passes": the items of one "where:reason" and the passes they were seen in. */
export function describeSkipTally(t: SkipTally): string {
  const what = `${t.items} ${t.items === 1 ? t.unit : plural(t.unit)}`;
  if (t.passes.max <= 1) return what;
  const span = t.passes.min === t.passes.max ? `${t.passes.max}` : `${t.passes.min} to ${t.passes.max}`;
  return `${what}, seen in ${span} passes${t.items > 1 && t.passes.min === t.passes.max ? " each" : ""}`;
}

/** One line per "where:reason": "howto100m:HowTo100M_v1.csv bad-row: 1 line, seen in 16 passes (16 skips)". */
export function describeSkipTallies(tallies: Record<string, SkipTally>): string[] {
  return Object.entries(tallies).map(([key, t]) => {
    const cut = key.lastIndexOf(":");
    const notes: string[] = [];
    if (t.count !== t.items) notes.push(`${t.count} skips`);
    if (t.untracked) notes.push(`${t.untracked} more not told apart`);
    const tail = notes.length ? ` (${notes.join("; ")})` : "";
    return `${key.slice(0, cut)} ${key.slice(cut + 1)}: ${describeSkipTally(t)}${tail}`;
  });
}
