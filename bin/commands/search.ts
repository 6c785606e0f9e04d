import { type Command, choiceOption, intOption, optionalString, requireString } from "../cli.js";

function clock(seconds: number): string {
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - m * 60).toFixed(1).padStart(4, "0")}`;
}

export const searchCommand: Command = {
  name: "search",
  summary: "Find the video windows of an index that best match a sentence",
  usage: 'vatt search --index INDEX "text query" [--k 10] [--json]',
  options: {
    index: { type: "string", help: "index folder written by 'vatt index'" },
    k: { type: "string", help: "results to show", default: "10" },
    checkpoint: {
      type: "string",
      help: "model to embed the query with (default: the one that built the index)",
    },
    engine: {
      type: "string",
      help: "auto, exact, quantized (4-bit scan, rescored) or graph (HNSW)",
      default: "auto",
    },
    json: { type: "boolean", help: "print one JSON object" },
  },
  positionals: { min: 1, max: 1, names: "QUERY" },
  async run(args) {
    const index = requireString("search", args, "index");
    const query = args.positionals[0];
    const engine = choiceOption("search", args, "engine", ["auto", "exact", "quantized", "graph"] as const);
    const { searchVideos } = await import("../../pipeline/video-search.js");
    const { hits, known } = await searchVideos({
      index,
      query,
      k: intOption("search", args, "k", { min: 1, max: 10_000 }),
      model: optionalString(args, "checkpoint"),
      engine,
    });
    if (args.values.json) {
      console.log(JSON.stringify({ query, known, hits }));
      return 0;
    }
    console.log(`query '${query}' (words the model knows: ${known.join(" ")})`);
    for (const [i, h] of hits.entries()) {
      console.log(
        `${String(i + 1).padStart(3)}. ${h.score.toFixed(3)}  ${h.file}  ${clock(h.start)}-${clock(h.end)}`,
      );
    }
    return 0;
  },
};
