import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { SkipLog } from "../../core/skips.js";
import {
  classFolders,
  esc50,
  hmdb51,
  kinetics,
  kineticsStem,
  ucf101,
} from "../../datasets/classification.js";
import { collect, fixtureDir } from "./fixtures.js";

test("UCF101: train list with labels, test list labelled by folder; unknown classes and missing videos skipped", async () => {
  const root = await fixtureDir({
    "lists/classInd.txt": "1 ApplyEyeMakeup\n2 Archery\n",
    "lists/trainlist01.txt":
      "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi 2\nArchery/v_gone.avi 2\nX/v.avi 9\n",
    "lists/testlist01.txt": "Archery/v_Archery_g01_c01.avi\nNope/v.avi\n",
    "videos/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": "",
    "videos/Archery/v_Archery_g01_c01.avi": "",
  });
  const skips = new SkipLog();
  const train = ucf101({
    videos: join(root, "videos"),
    splitFile: join(root, "lists/trainlist01.txt"),
    skips,
  });
  assert.deepEqual(await train.classes(), ["ApplyEyeMakeup", "Archery"]);
  const refs = await collect(train.refs(0));
  assert.deepEqual(
    refs.map((r) => [r.source, r.id, r.labels, r.index, r.start, r.end]),
    [
      ["ucf101", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", [0], 0, 0, 3.2],
      ["ucf101", "Archery/v_Archery_g01_c01.avi", [1], 1, 0, 3.2],
    ],
  );
  assert.deepEqual(skips.byReason(), { "ucf101:bad-row": 1, "ucf101:missing-file": 1 });
  assert.match(
    skips.lastEvents()[0].message,
    /trainlist01\.txt line 3: no media file for Archery\/v_gone\.avi/,
  );
  assert.match(skips.lastEvents()[1].message, /trainlist01\.txt line 4: no known class for 'X\/v\.avi 9'/);
  const test_ = ucf101({
    videos: join(root, "videos"),
    splitFile: join(root, "lists/testlist01.txt"),
    skips,
  });
  assert.deepEqual(
    (await collect(test_.refs(0))).map((r) => r.labels),
    [[1]],
  );
});

test("HMDB51: per-class split files, train (1) or test (2) subset", async () => {
  const root = await fixtureDir({
    "splits/brush_hair_test_split1.txt": "a.avi 1\nb.avi 2\nc.avi 0\n",
    "splits/cartwheel_test_split1.txt": "d.avi 2\ne.avi 7\n",
    "splits/cartwheel_test_split2.txt": "d.avi 1\n",
    "videos/brush_hair/a.avi": "",
    "videos/brush_hair/b.avi": "",
    "videos/cartwheel/d.avi": "",
  });
  const skips = new SkipLog();
  const opts = { videos: join(root, "videos"), splits: join(root, "splits"), split: 1 as const, skips };
  const testSet = hmdb51({ ...opts, subset: "test" });
  assert.deepEqual(await testSet.classes(), ["brush_hair", "cartwheel"]);
  assert.deepEqual(
    (await collect(testSet.refs(0))).map((r) => [r.id, r.labels]),
    [
      ["brush_hair/b.avi", [0]],
      ["cartwheel/d.avi", [1]],
    ],
  );
  assert.match(
    skips.lastEvents()[0].message,
    /cartwheel_test_split1\.txt line 2: expected '<video> <0\|1\|2>'/,
  );
  assert.deepEqual(
    (await collect(hmdb51({ ...opts, subset: "train" }).refs(0))).map((r) => r.id),
    ["brush_hair/a.avi"],
  );
});

test("Kinetics CSV: sorted classes, clips in label folders or flat, split filter, bad rows skipped", async () => {
  const stem = kineticsStem("abc", 14, 24);
  assert.equal(stem, "abc_000014_000024");
  const root = await fixtureDir({
    "k.csv":
      "label,youtube_id,time_start,time_end,split\n" +
      "zumba,abc,14,24,train\n" +
      '"abseiling, rope",def,0,10,train\n' +
      "zumba,ghi,5,15,val\n" +
      "zumba,,1,2,train\n" + // line 5: no id
      "zumba,jkl,20,10,train\n" + // line 6: reversed
      "zumba,missing,0,10,train\n",
    [`videos/zumba/${stem}.mp4`]: "",
    "videos/def_000000_000010.webm": "",
    "videos/zumba/ghi_000005_000015.mp4": "",
  });
  const skips = new SkipLog();
  const source = kinetics({ csv: join(root, "k.csv"), videos: join(root, "videos"), split: "train", skips });
  assert.deepEqual(await source.classes(), ["abseiling, rope", "zumba"]);
  const refs = await collect(source.refs(0));
  assert.deepEqual(
    refs.map((r) => [r.id, r.path.slice(root.length), r.labels, r.duration]),
    [
      [stem, `/videos/zumba/${stem}.mp4`, [1], 10],
      ["def_000000_000010", "/videos/def_000000_000010.webm", [0], 10],
    ],
  );
  assert.deepEqual(skips.byReason(), { "kinetics:bad-row": 2, "kinetics:missing-file": 1 });
  assert.match(skips.lastEvents()[0].message, /k\.csv line 5: expected 5 columns with a youtube_id/);
});

test("ESC-50: label = target, fold filter, 5 s clips", async () => {
  const root = await fixtureDir({
    "meta/esc50.csv":
      "filename,fold,target,category,esc10,src_file,take\n" +
      "1-100032-A-0.wav,1,0,dog,True,100032,A\n" +
      "2-100038-A-14.wav,2,14,chirping_birds,False,100038,A\n" +
      "1-bad.wav,1,x,dog,True,1,A\n",
    "audio/1-100032-A-0.wav": "",
    "audio/2-100038-A-14.wav": "",
  });
  const skips = new SkipLog();
  const all = esc50({ root, skips });
  const refs = await collect(all.refs(0));
  assert.deepEqual(
    refs.map((r) => [r.id, r.labels, r.duration, r.end]),
    [
      ["1-100032-A-0.wav", [0], 5, 3.2],
      ["2-100038-A-14.wav", [14], 5, 3.2],
    ],
  );
  assert.equal((await all.classes())[14], "chirping_birds");
  assert.match(
    skips.lastEvents()[0].message,
    /esc50\.csv line 4: expected 7 columns with a filename and an integer/,
  );
  assert.deepEqual(
    (await collect(esc50({ root, folds: [2], skips }).refs(0))).map((r) => r.id),
    ["2-100038-A-14.wav"],
  );
});

test("class-per-folder: classes and files in sorted order, other files ignored", async () => {
  const root = await fixtureDir({
    "cats/b.mp4": "",
    "cats/a.MKV": "",
    "cats/notes.txt": "",
    "dogs/z.wav": "",
  });
  const source = classFolders({ root, skips: new SkipLog() });
  assert.deepEqual(await source.classes(), ["cats", "dogs"]);
  assert.deepEqual(
    (await collect(source.refs(0))).map((r) => [r.id, r.labels, r.index]),
    [
      ["cats/a.MKV", [0], 0],
      ["cats/b.mp4", [0], 1],
      ["dogs/z.wav", [1], 2],
    ],
  );
});
