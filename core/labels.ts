/** Class indices -> a multi-hot vector of `numClasses`. An index outside the range is an error in the dataset. */
export function multiHot(labels: readonly number[], numClasses: number): Float32Array {
  const out = new Float32Array(numClasses);
  for (const label of labels) {
    if (!(Number.isInteger(label) && label >= 0 && label < numClasses)) {
      throw new RangeError(
        `label ${label} is outside the ${numClasses} classes [0, ${numClasses}): is numClasses right for this dataset?`,
      );
    }
    out[label] = 1;
  }
  return out;
}
