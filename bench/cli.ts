/**
 * `npm run bench -- cli`: how long the command line takes to start. A command's heavy dependencies (TensorFlow.js,
 * ONNX Runtime, sharp, Arrow) load only when that command runs, so `vatt --help` and `vatt probe FILE` should cost
 * little more than Node itself. Each is timed from spawn to exit, several times, alternating with a bare
 * `node -e 0` so the figures are read against the same machine state; medians are reported.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runMediaTool } from "../media/process.js";
import { round } from "./measure.js";

const VATT = fileURLToPath(new URL("../bin/vatt.js", import.meta.url));

function secondsOf(args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`bench cli: node ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function benchCli(opts: { json: boolean; runs?: number }): Promise<Record<string, unknown>> {
  const runs = opts.runs ?? 9;
  const dir = mkdtempSync(join(tmpdir(), "vatt-bench-cli-"));
  try {
    const clip = join(dir, "clip.mp4");
    await runMediaTool("ffmpeg", [
      ...["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"],
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", clip],
    ]);
    const times = { node: [] as number[], help: [] as number[], probe: [] as number[] };
    secondsOf([VATT, "--help"]); // warm the file cache once
    for (let i = 0; i < runs; i++) {
      times.node.push(secondsOf(["-e", "0"]));
      times.help.push(secondsOf([VATT, "--help"]));
      times.probe.push(secondsOf([VATT, "probe", clip]));
    }
    const result = {
      runs,
      helpSeconds: round(median(times.help)),
      probeSeconds: round(median(times.probe)),
      nodeSeconds: round(median(times.node)),
      helpOverNodeSeconds: round(median(times.help) - median(times.node)),
      probeOverNodeSeconds: round(median(times.probe) - median(times.node)),
      targetSeconds: 0.3,
    };
    if (!opts.json) {
      console.log(
        `vatt --help ${result.helpSeconds} s, vatt probe ${result.probeSeconds} s (median of ${runs}; ` +
          `bare node ${result.nodeSeconds} s)`,
      );
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
