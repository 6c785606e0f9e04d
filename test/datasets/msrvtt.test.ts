import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { msrvtt } from "../../datasets/msrvtt.js";
import { CONCEPTS } from "../../datasets/synth-concepts.js";
import { synthesizeDownstream } from "../../datasets/synth-downstream.js";
import { probe } from "../../media/probe.js";
import { collect, fixtureDir } from "./fixtures.js";

describe("msrvtt", () => {
  it("reads a synthetic 1k-A set: one ref per video with its sentence, which names the video's concepts", async () => {
    const root = await fixtureDir({});
    const truth = await synthesizeDownstream({
      kind: "msrvtt",
      out: root,
      videos: 4,
      seed: 9,
      width: 48,
      height: 32,
      fps: 8,
    });
    const skips = new SkipLog();
    const refs = await collect(msrvtt({ root, skips }).refs(2));
    assert.deepEqual(skips.byReason(), {});
    assert.deepEqual(
      refs.map((r) => [r.source, r.id, r.index, r.epoch, r.start, r.end, r.path]),
      truth.items.map((it, i) => ["msrvtt", it.id, i, 2, 0, 3.2, join(root, it.file)]),
    );
    for (const [i, r] of refs.entries()) {
      assert.match(r.id, /^video(\d{4})$/);
      assert.ok(Number(r.id.slice(5)) >= 7010 && Number(r.id.slice(5)) <= 9999);
      const { text } = truth.items[i].sentences![0];
      assert.deepEqual(r.captions, [{ start: 0, end: 3.2, text }]);
      const words = text.split(" ");
      for (const c of truth.items[i].concepts) {
        assert.ok(
          CONCEPTS[c].words.some((w) => words.includes(w)),
          `'${text}' names ${CONCEPTS[c].words[0]}`,
        );
      }
    }
    const info = await probe(refs[0].path);
    assert.equal(info.videoCodec, "h264");
    assert.equal(info.audioCodec, "aac");
    assert.ok(Math.abs(info.duration - truth.items[0].duration!) < 0.2);
  });

  it("skips malformed rows (file:line) and missing videos, keeps commas in sentences", async () => {
    const root = await fixtureDir({
      "MSRVTT_JSFUSION_test.csv": [
        "key,vid_key,video_id,sentence",
        "ret0,msr7010,video7010,a man cuts a tomato",
        "ret1,msr7011,video7011,",
        "ret2,msr7012,video7012,first the eggs, then the flour",
        "ret3,msr7013,video7013,nobody downloaded this one",
        'ret4,msr7014,"video7014,a broken quote',
        "",
      ].join("\n"),
      "videos/all/video7010.mp4": "",
      "videos/all/video7011.mp4": "",
      "videos/all/video7012.webm": "",
      "videos/all/video7014.mp4": "",
    });
    const skips = new SkipLog();
    const refs = await collect(msrvtt({ root, skips, windowSeconds: 2 }).refs(0));
    assert.deepEqual(
      refs.map((r) => [r.id, r.captions[0].text, r.path.slice(root.length), r.end]),
      [
        ["video7010", "a man cuts a tomato", "/videos/all/video7010.mp4", 2],
        ["video7012", "first the eggs, then the flour", "/videos/all/video7012.webm", 2],
      ],
    );
    assert.deepEqual(skips.byReason(), { "msrvtt:bad-row": 2, "msrvtt:missing-file": 1 });
    const messages = skips.lastEvents().map((e) => e.message);
    assert.match(
      messages[0],
      /MSRVTT_JSFUSION_test\.csv line 3: expected 4 columns with a video_id and a sentence/,
    );
    assert.match(messages[1], /line 5: no file for video7013 in .*videos\/all/);
    assert.match(messages[2], /line 6: /);
  });

  it("refuses a file that is not the 1k-A CSV", async () => {
    const root = await fixtureDir({ "MSRVTT_JSFUSION_test.csv": "id,caption\nx,y\n" });
    await assert.rejects(
      collect(msrvtt({ root, skips: new SkipLog() }).refs(0)),
      /line 1: expected the header key,vid_key,video_id,sentence/,
    );
  });
});
