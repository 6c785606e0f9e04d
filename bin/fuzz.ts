/**
 * `npm run fuzz -- TARGET --minutes N`: fuzzes one target (or `all`, one after another) for N minutes with random
 * seeds, printing the inputs tried and every failure (its seed, path and the shrunk input, saved into
 * test/fuzz/corpus/TARGET/). Exit status 1 when anything failed.
 */
import { fuzzFor } from "../test/fuzz/long-run.js";
import { TARGETS } from "../test/fuzz/targets.js";

const USAGE = `usage: npm run fuzz -- TARGET|all [--minutes N]   (targets: ${Object.keys(TARGETS).join(", ")})`;

function parse(argv: string[]): { targets: string[]; minutes: number } {
  const minutesAt = argv.indexOf("--minutes");
  const minutes = minutesAt >= 0 ? Number(argv[minutesAt + 1]) : 1;
  const rest = argv.filter((_, i) => i !== minutesAt && i !== minutesAt + 1);
  if (rest.length !== 1 || !(minutes > 0)) throw new Error(USAGE);
  const targets = rest[0] === "all" ? Object.keys(TARGETS) : [rest[0]];
  for (const t of targets) if (!TARGETS[t]) throw new Error(`unknown fuzz target '${t}'\n${USAGE}`);
  return { targets, minutes };
}

async function main(): Promise<void> {
  const { targets, minutes } = parse(process.argv.slice(2));
  let failures = 0;
  for (const t of targets) failures += (await fuzzFor(t, minutes)).failures.length;
  process.exitCode = failures > 0 ? 1 : 0;
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exitCode = 2;
});
