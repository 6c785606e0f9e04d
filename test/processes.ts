/** Test helper: the live child processes of this test process, read from /proc (Linux). */
import { readdirSync, readFileSync } from "node:fs";

export interface ChildProcessInfo {
  pid: number;
  command: string;
  state: string;
}

/** Children whose parent is this process (zombies included: state "Z"). */
export function childProcesses(): ChildProcessInfo[] {
  const children: ChildProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
    const close = stat.lastIndexOf(")");
    const command = stat.slice(stat.indexOf("(") + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(" ");
    if (Number(ppid) === process.pid) children.push({ pid: Number(entry), command, state });
  }
  return children;
}

/**
 * Waits until no child process whose command matches remains (but those in `except`, e.g. the ones that were there
 * before), or the timeout passes; returns those left.
 */
export async function waitForNoChildren(
  pattern: RegExp,
  timeoutMs = 3000,
  except: ReadonlySet<number> = new Set(),
): Promise<ChildProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = childProcesses().filter((c) => pattern.test(c.command) && !except.has(c.pid));
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 25));
  }
}
