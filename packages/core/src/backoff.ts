/**
 * The wait before retry `attempt` (0 for the first): doubling from `baseMs`,
 * never more than `maxMs`. One formula for every retry loop, so that every
 * service backs off from a failing Redis or warehouse the same way.
 */
export function backoffMs(
  attempt: number,
  options: { readonly baseMs: number; readonly maxMs: number },
): number {
  // The exponent is capped so that a long outage cannot overflow to Infinity.
  return Math.min(options.baseMs * 2 ** Math.min(attempt, 30), options.maxMs);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
