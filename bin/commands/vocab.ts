import { access } from "node:fs/promises";
import { type Command, intOption, requireString, UserError } from "../cli.js";

export const vocabCommand: Command = {
  name: "vocab",
  summary: "Build the word vocabulary (<pad>,<bos>,<eos>,<unk>, then words by frequency) from caption.json",
  usage: "vatt vocab --captions caption.json [--size 65536] --out vocab.txt [--json]",
  options: {
    captions: { type: "string", help: "HowTo100M caption.json ({video_id: {start, end, text}})" },
    size: { type: "string", help: "entries in the vocabulary, special tokens included", default: "65536" },
    out: { type: "string", help: "where to write the vocabulary, one token per line" },
    json: { type: "boolean", help: "print one JSON summary object" },
  },
  async run(args) {
    const captions = requireString("vocab", args, "captions");
    const out = requireString("vocab", args, "out");
    const size = intOption("vocab", args, "size", { min: 4 }) ?? 65536;
    await access(captions).catch(() => {
      throw new UserError(`vatt vocab: cannot read --captions ${captions}: no such file (check the path)`);
    });
    const { SkipLog } = await import("../../core/skips.js");
    const { captionVocabulary, writeVocabulary } = await import("../../pipeline/vocab.js");
    const skips = new SkipLog(5);
    const { vocab, distinctWords, videos, captions: lines } = await captionVocabulary(captions, size, skips);
    await writeVocabulary(vocab, out).catch((err: Error) => {
      throw new UserError(`vatt vocab: cannot write --out ${out}: ${err.message}`);
    });
    const summary = {
      out,
      size: vocab.size,
      distinctWords,
      videos,
      captions: lines,
      skipped: skips.byReason(),
    };
    if (args.values.json) console.log(JSON.stringify(summary));
    else {
      console.log(
        `wrote ${vocab.size} tokens to ${out} (${distinctWords} distinct words in ${lines} captions of ${videos} videos)`,
      );
      for (const e of skips.lastEvents()) console.error(`skipped: ${e.message}`);
      if (skips.count > skips.lastEvents().length) console.error(`... ${skips.count} entries skipped in all`);
    }
    return 0;
  },
};
