/**
 * Retrieval figures from embeddings: for each query, the rank of its true match among all candidates by cosine
 * similarity. Each figure is reported beside its chance level, so a reader sees at once whether it means anything.
 */

export interface RetrievalFigures {
  queries: number;
  "R@1": number;
  "R@5": number;
  "R@10": number;
  medianRank: number;
  chance: { "R@1": number; "R@5": number; "R@10": number; medianRank: number };
}

function normalisedRows(x: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let k = 0; k < d; k++) norm += x[i * d + k] ** 2;
    const inv = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let k = 0; k < d; k++) out[i * d + k] = x[i * d + k] * inv;
  }
  return out;
}

/**
 * 1-based rank of candidate i for query i. Ties count against the query (a candidate scoring equal to the true one
 * ranks ahead of it), so a model whose embeddings all coincide gets the worst rank, not the best.
 */
export function trueMatchRanks(
  queries: Float32Array,
  candidates: Float32Array,
  n: number,
  d: number,
): number[] {
  if (queries.length !== n * d || candidates.length !== n * d) {
    throw new RangeError(
      `retrieval needs ${n}x${d} queries and candidates, got ${queries.length} and ${candidates.length}`,
    );
  }
  const q = normalisedRows(queries, n, d);
  const c = normalisedRows(candidates, n, d);
  const ranks: number[] = [];
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += q[i * d + k] * c[j * d + k];
      scores[j] = s;
    }
    let rank = 1;
    for (let j = 0; j < n; j++) if (j !== i && scores[j] >= scores[i]) rank++;
    ranks.push(rank);
  }
  return ranks;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** R@k, median rank and their chance levels (k / n; (n + 1) / 2) from ranks. */
export function retrievalFigures(ranks: number[]): RetrievalFigures {
  const n = ranks.length;
  const recall = (k: number) => ranks.filter((r) => r <= k).length / n;
  return {
    queries: n,
    "R@1": recall(1),
    "R@5": recall(5),
    "R@10": recall(10),
    medianRank: median(ranks),
    chance: {
      "R@1": Math.min(1, 1 / n),
      "R@5": Math.min(1, 5 / n),
      "R@10": Math.min(1, 10 / n),
      medianRank: (n + 1) / 2,
    },
  };
}
