/** Small measuring helpers shared by the benches. */
import { readdir, readFile } from "node:fs/promises";

/** Rounds a figure for a bench report: `digits` decimals, as a number (JSON stays numeric). */
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** utime + stime + cutime + cstime of one /proc/PID/stat, in seconds (clock ticks of 1/100 s). */
async function statCpuSeconds(pid: number | "self"): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime, stime, cutime, cstime are fields 14-17 (1-based), i.e. 11-14 after the ")".
  return fields.length > 14 ? fields.slice(11, 15).reduce((a, b) => a + Number(b), 0) / 100 : 0;
}

/**
 * CPU seconds used so far by this process and everything under it (Linux): our own time, our reaped children's,
 * and each live child's own plus its reaped children's. The last part matters because ffmpeg runs under the
 * long-lived spawner process (media/ffmpeg.ts), whose reaped children never show in our own cutime. CPU time is
 * a cost other load on the machine does not distort, unlike wall time.
 */
export async function processTreeCpuSeconds(): Promise<number> {
  let total = await statCpuSeconds("self");
  const entries = await readdir("/proc").catch(() => [] as string[]);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === process.pid) total += await statCpuSeconds(Number(entry));
  }
  return total;
}
