import type { Clock } from '@streamgauge/core';
import { defer, map, type Observable, repeat, timer } from 'rxjs';

/**
 * Emits the clock's time just after each boundary of the finest pane (every
 * minute), when some window has slid and must be re-evaluated.
 */
export function paneBoundaries(clock: Clock, paneMs = 60_000): Observable<number> {
  return defer(() => {
    const now = clock.now();
    return timer(paneMs - (now % paneMs) + 5);
  }).pipe(
    map(() => clock.now()),
    repeat(),
  );
}
