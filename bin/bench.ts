#!/usr/bin/env node
/**
 * `npm run bench -- NAME [--json]`: runs one benchmark and prints its figures. With --json, exactly one JSON object
 * on stdout (human notes go to stderr); where a benchmark compares two ways of doing the same work it has a
 * "ratio" key (ours / the other), both rates, and peak RSS.
 */
type Bench = (opts: { json: boolean }) => Promise<Record<string, unknown>>;

/** Imports bench/NAME.js and returns its exported function (a computed path: benches load only when run). */
async function loadBench(file: string, exported: string): Promise<Bench> {
  const mod = (await import(`../bench/${file}.js`)) as Record<string, Bench>;
  if (typeof mod[exported] !== "function") throw new Error(`bench/${file}.js does not export ${exported}`);
  return mod[exported];
}

const BENCHES: Record<string, { about: string; load: () => Promise<Bench> }> = {
  model: {
    about:
      "tiny-preset training step time at DropToken 0/25/50/75 % and achieved GFLOP/s vs the backend's matmul",
    load: () => loadBench("model", "benchModel"),
  },
  captions: {
    about: "stream-parsing a 1 GB caption.json: throughput and peak RSS",
    load: () => loadBench("captions", "benchCaptions"),
  },
  pipeline: {
    about: "decode + augment clips/s vs ffmpeg alone decoding the same clips (ratio), peak RSS",
    load: () => loadBench("pipeline", "benchPipeline"),
  },
  parquet: {
    about: "training input from Parquet shards vs raw video (ratio), prepare clips/s, RSS while writing",
    load: () => loadBench("parquet", "benchParquet"),
  },
  embed: {
    about:
      "BBS video backbone inference forward at 32x224x224: clips/s and GFLOP/s as a share of the GEMM (gemmFraction)",
    load: () => loadBench("embed", "benchEmbed"),
  },
  cli: {
    about: "start-up time of 'vatt --help' and 'vatt probe FILE' (median of several runs) against bare node",
    load: () => loadBench("cli", "benchCli"),
  },
  train: {
    about: "a 500-step tiny pretraining run: examples/s, data-wait share, RSS and tensors at start and end",
    load: () => loadBench("train", "benchTrain"),
  },
  search: {
    about: "embedding search, 10k and 1M 256-d vectors: exact, 4-bit scan, HNSW; p50/p99, recall@10",
    load: () => loadBench("search", "benchSearch"),
  },
};

function usage(): string {
  return [
    "Usage: npm run bench -- NAME [--json]",
    "",
    ...Object.entries(BENCHES).map(([name, b]) => `  ${name.padEnd(10)}${b.about}`),
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const names = argv.filter((a) => !a.startsWith("-"));
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage());
    return 0;
  }
  if (names.length !== 1 || !(names[0] in BENCHES)) {
    console.error(names.length === 0 ? usage() : `bench: unknown benchmark '${names[0]}'\n${usage()}`);
    return 2;
  }
  let run: Bench;
  try {
    run = await BENCHES[names[0]].load();
  } catch (err) {
    console.error(`bench: '${names[0]}' is not available in this build: ${(err as Error).message}`);
    return 1;
  }
  const result = await run({ json });
  console.log(json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`bench: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  },
);
