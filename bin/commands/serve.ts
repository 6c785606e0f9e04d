import { type Command, intOption, optionalString } from "../cli.js";

export const serveCommand: Command = {
  name: "serve",
  summary:
    "A local web view of runs: live curves, evaluation, skips, config, images, the embedding map, search",
  usage:
    "vatt serve [--runs DIR] [--index INDEX] [--dataset DIR] [--embeddings FILE] [--port 8080] [--host 127.0.0.1]",
  options: {
    runs: { type: "string", help: "folder holding run folders (or one run)", default: "runs" },
    index: {
      type: "string",
      help: "search index folder written by 'vatt index' (search with the model that built it)",
    },
    dataset: { type: "string", help: "dataset folder: the videos that thumbnails and playback come from" },
    embeddings: {
      type: "string",
      multiple: true,
      help: "embeddings file (vatt embed) for the map; repeatable",
    },
    port: { type: "string", help: "TCP port", default: "8080" },
    host: { type: "string", help: "address to bind (0.0.0.0 opens it to the network)", default: "127.0.0.1" },
  },
  async run(args) {
    const { startServer } = await import("../../pipeline/serve/app.js");
    const index = optionalString(args, "index");
    const { openVideoSearch } = await import("../../pipeline/video-search.js");
    const searcher = index ? await openVideoSearch(index) : undefined;
    const server = await startServer({
      search: searcher ? (text, k) => searcher.search(text, k) : undefined,
      runs: optionalString(args, "runs") ?? "runs",
      index,
      dataset: optionalString(args, "dataset"),
      embeddings: (args.values.embeddings as string[] | undefined) ?? [],
      port: intOption("serve", args, "port", { min: 0, max: 65535 }),
      host: optionalString(args, "host") ?? "127.0.0.1",
    });
    console.log(`vatt serve: ${server.url} (Ctrl-C to stop)`);
    await new Promise<void>((done) => {
      const stop = () => {
        Promise.all([server.close(), searcher?.close()]).then(() => done());
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    return 0;
  },
};
