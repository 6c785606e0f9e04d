/**
 * The house rules, checked by `npm test` (`npm run layers`): one floor per concern, lowest first
 *
 *   core/     records, geometry, seeded randomness, skips, flow control, order, the worker pool
 *   media/    ffmpeg processes, probe, in-process libav decoding          (core)
 *   native/   the C kernels' loader                                      (core)
 *   datasets/ files -> clip references                                   (core, media)
 *   operators/ one transformation each                                   (core, media, native)
 *   model/    the network; its engine layer in model/fast/               (core, native)
 *   sinks/    where streams end                                          (core, media, native, model)
 *   pipeline/ the composed jobs a user runs or scripts                   (everything below)
 *   bin/      parsing and printing                                       (pipeline and below)
 *
 * A floor imports only the floors listed after it; nothing imports bin/ (but bin/ itself); no cycles.
 */
const floors = ["core", "media", "native", "datasets", "operators", "model", "sinks", "pipeline", "bin"];
const allowed = {
  core: [],
  media: ["core"],
  native: ["core"],
  datasets: ["core", "media"],
  operators: ["core", "media", "native"],
  model: ["core", "native"],
  sinks: ["core", "media", "native", "model"],
  pipeline: ["core", "media", "native", "datasets", "operators", "model", "sinks"],
  bin: ["core", "media", "native", "datasets", "operators", "model", "sinks", "pipeline"],
};

const floorRules = floors.map((floor) => ({
  name: `${floor}-imports-only-${allowed[floor].join("-") || "itself"}`,
  comment: `${floor}/ may import only ${allowed[floor].length ? allowed[floor].map((f) => `${f}/`).join(", ") : "node and npm modules"} (and itself): a lower floor never imports a higher one`,
  severity: "error",
  from: { path: `^${floor}/` },
  to: {
    path: `^(${floors.filter((f) => f !== floor && !allowed[floor].includes(f)).join("|")})/`,
  },
}));

module.exports = {
  forbidden: [
    ...floorRules,
    {
      name: "no-cycles",
      comment: "files do not import each other in circles (a type in the wrong file, usually)",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "datasets-operators-without-tensorflow",
      comment:
        "datasets/ and operators/ stay free of TensorFlow.js: plain typed arrays, usable for preprocessing alone",
      severity: "error",
      from: { path: "^(datasets|operators)/" },
      to: { path: "@tensorflow" },
    },
    {
      name: "library-never-imports-bench-or-test",
      comment:
        "library code does not import the benches or the tests (bin/fuzz.ts is the fuzzers' runner, a developer tool like bin/bench.ts)",
      severity: "error",
      from: {
        path: "^(core|media|native|datasets|operators|model|sinks|pipeline|bin)/",
        pathNot: "^bin/fuzz\\.ts$",
      },
      to: { path: "^(bench|test)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules|build)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
