import assert from "node:assert/strict";
import { test } from "node:test";
import { RetiredFiles, retireAtOnce } from "../../core/retired.js";

/** One pass: each [file, ok] is one window's outcome, in order. */
function pass(files: RetiredFiles, p: number, outcomes: [string, boolean][]) {
  const newly = files.beginPass(p);
  for (const [file, ok] of outcomes) {
    if (files.has(file, p)) continue; // dropped before decoding, as the pipeline does
    if (ok) files.succeeded(file, p);
    else files.failed(file, p, "invalid", `${file}: not a video`);
  }
  return newly;
}

test("a file that fails every window for `after` passes in a row is retired from the next pass", () => {
  const files = new RetiredFiles({ after: 3 });
  assert.deepEqual(
    pass(files, 0, [
      ["bad", false],
      ["good", true],
    ]),
    [],
  );
  assert.deepEqual(
    pass(files, 1, [
      ["bad", false],
      ["good", true],
    ]),
    [],
  );
  assert.deepEqual(
    files.suspectFiles().map((s) => [s.file, s.passes]),
    [["bad", [0]]],
    "pass 1 is judged when pass 2 begins",
  );
  assert.deepEqual(pass(files, 2, [["bad", false]]), []);
  assert.equal(files.has("bad"), false, "pass 2 is not judged before it is over");
  const newly = pass(files, 3, [
    ["bad", false],
    ["good", true],
  ]);
  assert.deepEqual(
    newly.map((e) => [e.file, e.passes, e.fromPass, e.rule]),
    [["bad", [0, 1, 2], 3, "passes"]],
  );
  assert.equal(files.has("bad", 2), false, "pass 2 and earlier keep their clips");
  assert.equal(files.has("bad", 3), true);
  assert.equal(files.has("good"), false);
  assert.deepEqual(files.suspectFiles(), []);
});

test("one window that decodes in a pass clears the row; a pass without the file does not", () => {
  const files = new RetiredFiles({ after: 2 });
  pass(files, 0, [["half", false]]);
  pass(files, 1, [
    ["half", false],
    ["half", true],
  ]); // fails once, decodes once: not a failed pass
  pass(files, 2, [
    ["half", true],
    ["half", false],
  ]); // the order within the pass does not matter
  pass(files, 3, [["half", false]]);
  assert.deepEqual(files.suspectFiles(), [], "passes 1 and 2 each had a window that decoded");
  pass(files, 4, []); // not asked for in pass 4 (e.g. another shard's pass)
  assert.deepEqual(
    files.suspectFiles().map((s) => s.passes),
    [[3]],
  );
  assert.deepEqual(
    pass(files, 5, [["half", false]]).map((e) => e.file),
    [],
  );
  assert.deepEqual(
    pass(files, 6, []).map((e) => [e.file, e.passes]),
    [["half", [3, 5]]],
  );
});

test("after 0 never retires; a reason can retire at once, its remaining windows of the pass dropped", () => {
  const never = new RetiredFiles({ after: 0 });
  for (let p = 0; p < 10; p++) pass(never, p, [["bad", false]]);
  assert.deepEqual(never.entries(), []);

  assert.equal(retireAtOnce("crashed-decoder"), true);
  assert.equal(retireAtOnce("invalid"), false);
  const files = new RetiredFiles({ after: 3, atOnce: retireAtOnce });
  files.beginPass(0);
  assert.equal(files.failed("x.mp4", 0, "invalid", "bad"), undefined);
  const entry = files.failed("crash.mp4", 0, "crashed-decoder", "the decoder crashed on crash.mp4");
  assert.deepEqual(entry && [entry.file, entry.reason, entry.passes, entry.fromPass, entry.rule], [
    "crash.mp4",
    "crashed-decoder",
    [0],
    0,
    "at-once",
  ]);
  assert.equal(files.has("crash.mp4", 0), true, "its later windows of this pass are dropped too");
  // Explicitly, e.g. from a caller that knows better than the rule.
  const manual = files.retire("other.mp4", "crashed-decoder", "crashed");
  assert.equal(manual.fromPass, 0);
  assert.deepEqual(
    files.entries().map((e) => e.file),
    ["crash.mp4", "other.mp4"],
  );
});

test("the state round-trips through JSON, the pass in progress included, and judges that pass the same", () => {
  const play = (files: RetiredFiles, from: number) => {
    const script: [string, boolean][][] = [
      [
        ["a", false],
        ["b", false],
        ["c", true],
      ],
      [
        ["a", false],
        ["b", true],
        ["c", true],
      ],
      [
        ["b", false],
        ["a", false],
        ["c", false],
      ],
      [
        ["a", true],
        ["b", false],
        ["c", false],
      ],
    ];
    for (let p = from; p < script.length; p++) pass(files, p, script[p]);
    files.beginPass(script.length);
    return files;
  };
  const straight = play(new RetiredFiles({ after: 2 }), 0);
  // Stop in the middle of pass 2 (after its first outcome), save, restore, replay pass 2 whole and go on.
  const first = new RetiredFiles({ after: 2 });
  pass(first, 0, [
    ["a", false],
    ["b", false],
    ["c", true],
  ]);
  pass(first, 1, [
    ["a", false],
    ["b", true],
    ["c", true],
  ]);
  first.beginPass(2);
  first.failed("b", 2, "invalid", "b: not a video");
  const saved = JSON.parse(JSON.stringify(first.toJSON()));
  const resumed = new RetiredFiles({ after: 2 }).restore(saved);
  assert.equal(resumed.openPass, 2);
  play(resumed, 2);
  assert.deepEqual(resumed.toJSON(), straight.toJSON());
  assert.deepEqual(
    straight.entries().map((e) => [e.file, e.passes, e.fromPass]),
    [
      ["a", [0, 1], 2],
      ["b", [2, 3], 4],
      ["c", [2, 3], 4],
    ],
  );
  assert.deepEqual(straight.suspectFiles(), []);
});

test("a person's list wins for what is retired; a malformed state is a clear error", () => {
  const files = new RetiredFiles({ after: 1 });
  pass(files, 0, [
    ["a", false],
    ["b", false],
  ]);
  files.beginPass(1);
  const books = files.toJSON();
  const edited = { ...files.toJSON(false), retired: files.entries().filter((e) => e.file !== "a") };
  const restored = new RetiredFiles({ after: 1 }).restore(books, edited);
  assert.equal(restored.has("a"), false, "removed from the list: another chance");
  assert.equal(restored.has("b", 1), true);
  assert.throws(() => new RetiredFiles().restore({ retired: "nope" }), /not a version 1/);
  assert.throws(
    () => new RetiredFiles().restore({ version: 1, retired: [{ file: "a" }], suspects: [] }),
    /not a version 1/,
  );
  assert.throws(() => new RetiredFiles({ after: -1 }), /integer >= 0/);
});
