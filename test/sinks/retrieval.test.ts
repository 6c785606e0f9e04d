import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { retrievalFigures, trueMatchRanks } from "../../sinks/retrieval.js";

describe("retrieval", () => {
  it("ranks the true match by cosine similarity", () => {
    // Query i points most at candidate (i + 1) % 3 except query 0, which finds its own.
    const q = new Float32Array([1, 0, 0, 0, 0, 1, 1, 0, 0]);
    const c = new Float32Array([1, 0.1, 0, 0, 1, 0, 0, 0, 1]);
    // q0=[1,0,0]: c0 .995 best -> rank 1. q1=[0,0,1]: c2 best, c1 0 vs c0 0 -> rank 2 (tie counts against).
    // q2=[1,0,0]: c0 .995, c2 0, c1 0: own c2 ties c1 -> rank 3.
    assert.deepEqual(trueMatchRanks(q, c, 3, 3), [1, 3, 3]);
  });

  it("gives the worst rank, not the best, when all embeddings coincide", () => {
    const same = new Float32Array(4 * 2).fill(1);
    assert.deepEqual(trueMatchRanks(same, same, 4, 2), [4, 4, 4, 4]);
  });

  it("computes recall at k, the median rank and chance levels", () => {
    const f = retrievalFigures([1, 2, 6, 11, 20]);
    assert.equal(f["R@1"], 0.2);
    assert.equal(f["R@5"], 0.4);
    assert.equal(f["R@10"], 0.6);
    assert.equal(f.medianRank, 6);
    assert.deepEqual(f.chance, { "R@1": 0.2, "R@5": 1, "R@10": 1, medianRank: 3 });
    assert.equal(retrievalFigures([1, 2, 3, 4]).medianRank, 2.5);
  });

  it("refuses mismatched shapes", () => {
    assert.throws(() => trueMatchRanks(new Float32Array(4), new Float32Array(6), 2, 2), /needs 2x2/);
  });
});
