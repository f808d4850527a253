import { type AnomalyEvent, type AnomalySettings, type AnomalyType, runDetectors } from '@streamgauge/core';
import { INJECTED_KINDS, type InjectedKind, type LabelledData } from './labelled.ts';

export interface KindScore {
  readonly kind: InjectedKind;
  readonly expected: AnomalyType;
  readonly injected: number;
  readonly detected: number;
  /** Injected events of the kind whose expected type opened on their node while they lasted (or within `graceMs`). */
  readonly recall: number;
  /** Opens of the expected type that matched an injected event of the kind. */
  readonly precision: number;
  /** When the open event was raised (the confirming reading) minus the event's start, minutes. */
  readonly delayMedianMin: number;
  readonly delayMaxMin: number;
}

export interface Evaluation {
  readonly kinds: KindScore[];
  /** Opens matching no injected event, in total and per node and day. */
  readonly falsePositives: number;
  readonly falsePositivesPerNodeDay: number;
  readonly falsePositiveTypes: Partial<Record<AnomalyType, number>>;
  readonly opens: number;
}

/**
 * Runs the detectors over labelled data and scores them per injected kind.
 * An open counts for an event when it is of the event's expected type, on
 * its node, between its start and its end plus `graceMs`.
 */
export function evaluate(
  data: LabelledData,
  settings: AnomalySettings,
  options: { nodes: number; days: number; graceMs?: number; tickMs?: number },
): Evaluation {
  const grace = options.graceMs ?? 2 * 3_600_000;
  const { events } = runDetectors(data.readings, settings, options.tickMs);
  const opens = events
    .filter((e): e is AnomalyEvent & { event: 'open' } => e.event === 'open')
    .map((e) => e.anomaly);
  const matched = new Set<string>();
  const kinds: KindScore[] = [];
  for (const kind of Object.keys(INJECTED_KINDS) as InjectedKind[]) {
    const injected = data.events.filter((e) => e.kind === kind);
    if (injected.length === 0) continue;
    const delays: number[] = [];
    for (const event of injected) {
      const hit = opens.find(
        (o) =>
          o.node_id === event.nodeId &&
          o.type === event.expected &&
          o.opened_at >= event.start &&
          o.opened_at <= event.end + grace,
      );
      if (hit === undefined) continue;
      // From the event's start to the open event (last_at: the reading that confirmed it).
      delays.push((hit.last_at - event.start) / 60_000);
      for (const o of opens) {
        if (o.node_id === event.nodeId && o.opened_at >= event.start && o.opened_at <= event.end + grace)
          matched.add(o.id);
      }
    }
    const ofType = opens.filter((o) => o.type === INJECTED_KINDS[kind]);
    delays.sort((a, b) => a - b);
    kinds.push({
      kind,
      expected: INJECTED_KINDS[kind],
      injected: injected.length,
      detected: delays.length,
      recall: delays.length / injected.length,
      precision: ofType.length === 0 ? 1 : ofType.filter((o) => matched.has(o.id)).length / ofType.length,
      delayMedianMin: delays[Math.floor(delays.length / 2)] ?? Number.NaN,
      delayMaxMin: delays[delays.length - 1] ?? Number.NaN,
    });
  }
  const unmatched = opens.filter((o) => !matched.has(o.id));
  const falsePositiveTypes: Partial<Record<AnomalyType, number>> = {};
  for (const o of unmatched) falsePositiveTypes[o.type] = (falsePositiveTypes[o.type] ?? 0) + 1;
  return {
    kinds,
    falsePositives: unmatched.length,
    falsePositivesPerNodeDay: unmatched.length / (options.nodes * options.days),
    falsePositiveTypes,
    opens: opens.length,
  };
}
