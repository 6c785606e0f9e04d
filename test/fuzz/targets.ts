/**
 * Every fuzz target, by name: the one place the quick tests (`test/fuzz/*.test.ts`) and the long runner
 * (`npm run fuzz -- TARGET --minutes N`) take their properties from.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  contractProperty,
  type FuzzInput,
  type FuzzTarget,
  readCorpus,
  replayCorpus,
  showInput,
} from "./harness.js";
import { configTarget } from "./targets/config.js";
import { csvTarget } from "./targets/csv.js";
import { jsonTarget } from "./targets/json.js";
import { manifestTarget } from "./targets/manifest.js";
import { mediaTarget } from "./targets/media.js";
import { parquetTarget } from "./targets/parquet.js";
import { safetensorsTarget } from "./targets/safetensors.js";
import { vocabTarget } from "./targets/vocab.js";

export const TARGETS: Record<string, FuzzTarget> = {
  json: jsonTarget,
  csv: csvTarget,
  manifest: manifestTarget,
  config: configTarget,
  vocab: vocabTarget,
  safetensors: safetensorsTarget,
  parquet: parquetTarget,
  media: mediaTarget,
};

/** The seeds of a target plus its corpus files: what mutations start from. */
export async function startingInputs(target: FuzzTarget): Promise<FuzzInput[]> {
  return [...(await target.seeds()), ...(await readCorpus(target.name))];
}

/** The quick test's fixed seed: the same inputs on every `npm test`. */
export const QUICK_SEED = 20251203;

/**
 * Replays the corpus, then runs `target.quickRuns` generated inputs with a fixed seed. Throws on the first broken
 * contract with fast-check's seed, path and the shrunk input. Returns the number of inputs tried.
 */
export async function quickFuzz(
  target: FuzzTarget,
  numRuns = target.quickRuns,
): Promise<{ corpus: number; generated: number }> {
  const dir = await mkdtemp(join(tmpdir(), `vatt-fuzz-${target.name}-`));
  try {
    const corpus = await replayCorpus(target, dir);
    const seeds = await startingInputs(target);
    const result = await fc.check(contractProperty(target, seeds, dir), {
      seed: QUICK_SEED,
      numRuns,
      timeout: target.caseTimeoutMs,
    });
    if (result.failed) {
      const input = result.counterexample?.[0];
      throw new Error(
        `fuzz target ${target.name}: ${result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)}\n` +
          `seed ${result.seed}, path ${result.counterexamplePath}\ninput ${input ? showInput(input) : "(none)"}`,
      );
    }
    return { corpus, generated: result.numRuns };
  } finally {
    await target.close?.();
    await rm(dir, { recursive: true, force: true });
  }
}
