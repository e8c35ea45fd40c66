/** "Did you mean": the known name nearest a mistyped one, for config keys and command-line words alike. */

/** Levenshtein distance, one row at a time. */
export function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The name of `known` nearest `word` (a difference in case alone counts as none), when within `maxDistance`. */
export function closest(word: string, known: string[], maxDistance: number): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const score = k.toLowerCase() === word.toLowerCase() ? 0 : distance(k, word);
    if (score < bestScore) [best, bestScore] = [k, score];
  }
  return best !== undefined && bestScore <= maxDistance ? best : undefined;
}

/** " (did you mean 'x'?)" for a mistyped command, option or subcommand, else nothing. */
/** The name a typo of `word` most likely meant, within a third of its length (at least 2 edits). */
export const nearest = (word: string, names: readonly string[]): string | undefined => closest(word, [...names], Math.max(2, Math.floor(word.length / 3)));

export function didYouMean(word: string, names: string[]): string {
  const best = nearest(word, names);
  return best !== undefined ? ` (did you mean '${best}'?)` : "";
}
