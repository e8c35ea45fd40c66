/** Timeouts from the environment: Node's timers hold at most 2^31 − 1 ms, and a longer one fires after 1 ms. */
export const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** What a timeout variable must be, for its error message. */
export const TIMEOUT_RULE = `a positive number of seconds, at most ${MAX_TIMEOUT_SECONDS} (about 24 days)`;

/** A timeout variable's value in milliseconds, or undefined when it is not TIMEOUT_RULE. */
export function timeoutMs(text: string): number | undefined {
  const seconds = Number(text);
  return Number.isFinite(seconds) && seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS ? seconds * 1000 : undefined;
}
