/**
 * Every CSV and split-file layout, all fed the same bytes: the record reader (datasets/csv.ts, one-line and
 * multi-line), HowTo100M's video list, AudioSet's class indices and segments (datasets/audioset.ts), Kinetics,
 * ESC-50, UCF-101 split and class index files, HMDB-51 split files (datasets/classification.ts).
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { SkipLog } from "../../../core/skips.js";
import { audioSet, readClassLabels } from "../../../datasets/audioset.js";
import {
  type ClassificationSource,
  esc50,
  hmdb51,
  kinetics,
  ucf101,
} from "../../../datasets/classification.js";
import { readCsvRecords } from "../../../datasets/csv.js";
import { readHowToVideoIds } from "../../../datasets/howto100m.js";
import {
  collect,
  expectClearOutcome,
  expectSkipsSayWhere,
  expectThat,
  type FuzzInput,
  type FuzzTarget,
} from "../harness.js";

const text = (s: string): FuzzInput => ({ ext: "csv", bytes: new Uint8Array(Buffer.from(s)) });

const SEEDS = [
  // AudioSet segments (comment lines, comma + space, quoted label list)
  '# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=22160\n# YTID, start_seconds, end_seconds, positive_labels\n--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n',
  // AudioSet class indices
  'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/012xff,"Male speech, man speaking"\n2,/t/dd00088,Gush\n',
  // Kinetics
  'label,youtube_id,time_start,time_end,split\nabseiling,--07WQ2iBlw,1,11,train\n"air drumming",--33Lscn6sk,4,14,train\nabseiling,-0x3JKIRl3k,0,10,val\n',
  // ESC-50
  "filename,fold,target,category,esc10,src_file,take\n1-100032-A-0.wav,1,0,dog,True,100032,A\n1-100038-A-14.wav,1,14,chirping_birds,False,100038,A\n",
  // HowTo100M video list
  "video_id,category_1,category_2,rank,task_id\nnVbIUDjzWY4,Cars & Other Vehicles,Motorcycles,27,52907\nCTPAZ2euJ2Q,Cars & Other Vehicles,Motorcycles,35,109057\n",
  // UCF-101 class index and split lines, HMDB-51 split lines
  "1 ApplyEyeMakeup\n2 ApplyLipstick\n3 Archery\n",
  "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi 3\nApplyLipstick/v_ApplyLipstick_g01_c02.avi\n",
  "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \nAtlantis_brush_hair_u_nm_np1_fr_goo_0.avi 2 \nbrush_my_hair_without_wearing_the_glasses_brush_hair_u_nm_np2_le_goo_0.avi 0 \n",
];

const CELLS = [
  "",
  " ",
  '"',
  '""',
  '"a,b"',
  "x",
  "-1",
  "0",
  "1",
  "1e308",
  "1e309",
  "4294967295",
  "4294967296",
  "9007199254740993",
  "1e21",
  "NaN",
  "Infinity",
  "0x10",
  "1.5",
  " 10.000",
  "/m/09x0r",
  "abseiling",
  "train",
  "dog",
  "\t",
  "#",
  "\u00e9",
  "\ud83c\udf89",
  "\ufeff",
  "index",
  "label",
  "youtube_id",
  "time_start",
  "time_end",
  "target",
];

/** Class indices the AudioSet segment runs are checked against. */
const CLASS_LABELS =
  "index,mid,display_name\n0,/m/09x0r,Speech\n1,/m/012xff,Male speech\n2,/t/dd00088,Gush\n";
const CLASS_INDEX = "1 ApplyEyeMakeup\n2 ApplyLipstick\n3 Archery\n";
const SPLIT_LIST = "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi\n";

/** Labels within the class list; the class list itself bounded by the rows (no class count a number claims). */
async function expectSoundClasses(
  label: string,
  source: ClassificationSource,
  names: readonly string[],
  rows: number,
  ms: number,
) {
  const classes = await expectClearOutcome(`${label} classes`, names, ms, () => source.classes());
  if (classes === undefined) return;
  expectThat(
    label,
    classes.length <= 65_536,
    `${classes.length} classes from a file of ${rows} lines: the class count follows a number in the file`,
  );
  const refs = await expectClearOutcome(`${label} refs`, names, ms, () => collect(source.refs(0)));
  for (const r of refs ?? []) {
    expectThat(
      label,
      r.labels.every((l) => Number.isInteger(l) && l >= 0 && l < classes.length),
      `ref ${r.id} has labels ${r.labels} outside the ${classes.length} classes`,
    );
  }
}

export const csvTarget: FuzzTarget = {
  name: "csv",
  readers:
    "readCsvRecords, readHowToVideoIds, readClassLabels, audioSet, kinetics, esc50, ucf101 (split + classInd), hmdb51",
  async seeds() {
    return SEEDS.map(text);
  },
  generate: fc
    .array(
      fc.array(fc.oneof(fc.constantFrom(...CELLS), fc.string({ maxLength: 8 })), {
        minLength: 1,
        maxLength: 8,
      }),
      { maxLength: 8 },
    )
    .chain((rows) =>
      fc.constantFrom(", ", ",", " ").map((sep) => text(rows.map((r) => r.join(sep)).join("\n"))),
    ),
  dictionary: [
    ",",
    ", ",
    '"',
    "\n",
    "\r\n",
    "\r",
    "#",
    " ",
    "\t",
    "\ufeff",
    "-1",
    "1e309",
    "4294967295",
    "99999999999",
    "NaN",
    '"/m/09x0r,/m/012xff"',
    "\u00e9",
    "\ud800",
    "0",
    "1.5",
  ],
  quickRuns: 80,
  caseTimeoutMs: 10_000,
  async run(input, dir) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, "meta"), { recursive: true });
    await mkdir(join(dir, "splits"), { recursive: true });
    const file = join(dir, "index.csv");
    const bytes = input.bytes;
    const lines = Buffer.from(bytes).toString("utf8").split("\n").length;
    await writeFile(file, bytes);
    const names = [file];
    const ms = 3000;

    for (const multiline of [false, true]) {
      await expectClearOutcome("readCsvRecords", names, ms, async () => {
        for await (const rec of readCsvRecords(file, { multiline })) {
          expectThat("readCsvRecords", Number.isInteger(rec.line) && rec.line >= 1, `line ${rec.line}`);
        }
      });
    }

    const howSkips = new SkipLog(1000);
    await expectClearOutcome("readHowToVideoIds", names, ms, () => readHowToVideoIds(file, howSkips));
    expectSkipsSayWhere("readHowToVideoIds", howSkips, names);

    const classSkips = new SkipLog(1000);
    const classes = await expectClearOutcome("readClassLabels", names, ms, () =>
      readClassLabels(file, classSkips),
    );
    expectSkipsSayWhere("readClassLabels", classSkips, names);
    if (classes) {
      expectThat(
        "readClassLabels",
        classes.mids.length === classes.indexOf.size && classes.names.length === classes.mids.length,
        `${classes.mids.length} mids, ${classes.names.length} names, ${classes.indexOf.size} distinct: the class list has holes`,
      );
      for (const [mid, i] of classes.indexOf) {
        expectThat(
          "readClassLabels",
          Number.isInteger(i) && i >= 0 && i < classes.mids.length && classes.mids[i] === mid,
          `mid ${mid} has index ${i} outside 0..${classes.mids.length - 1}`,
        );
      }
    }

    const labels = join(dir, "class_labels_indices.csv");
    await writeFile(labels, CLASS_LABELS);
    const audioSkips = new SkipLog(1000);
    const segments = await expectClearOutcome("audioSet", names, ms, () =>
      collect(
        audioSet({
          root: dir,
          segments: file,
          classLabels: labels,
          clips: dir,
          seed: 1,
          skips: audioSkips,
        }).refs(0),
      ),
    );
    expectSkipsSayWhere("audioSet", audioSkips, [...names, dir]);
    expectThat("audioSet", (segments ?? []).length === 0, "refs without clip files");

    const skips = new SkipLog(1000);
    await expectSoundClasses("kinetics", kinetics({ csv: file, videos: dir, skips }), names, lines, ms);
    await writeFile(join(dir, "meta", "esc50.csv"), bytes);
    await expectSoundClasses(
      "esc50",
      esc50({ root: dir, skips }),
      [join(dir, "meta", "esc50.csv")],
      lines,
      ms,
    );
    const classInd = join(dir, "classInd.txt");
    await writeFile(classInd, CLASS_INDEX);
    await expectSoundClasses(
      "ucf101 split",
      ucf101({ videos: dir, splitFile: file, classIndex: classInd, skips }),
      names,
      lines,
      ms,
    );
    const split = join(dir, "trainlist01.txt");
    await writeFile(split, SPLIT_LIST);
    await expectSoundClasses(
      "ucf101 classInd",
      ucf101({ videos: dir, splitFile: split, classIndex: file, skips }),
      names,
      lines,
      ms,
    );
    const hmdbSplit = join(dir, "splits", "brush_hair_test_split1.txt");
    await writeFile(hmdbSplit, bytes);
    await expectSoundClasses(
      "hmdb51",
      hmdb51({ videos: dir, splits: join(dir, "splits"), split: 1, subset: "train", skips }),
      [hmdbSplit],
      lines,
      ms,
    );
    expectSkipsSayWhere("classification", skips, [dir]);
  },
};
