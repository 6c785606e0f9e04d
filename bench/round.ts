/** Rounds a figure for a bench report: `digits` decimals, as a number (JSON stays numeric). */
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
