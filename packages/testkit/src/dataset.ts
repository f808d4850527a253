import { type Reading, seededRandom } from '@streamgauge/core';

export interface DatasetOptions {
  readonly nodes: number;
  /** Span of event time, ending `endAgoMs` before `now`. */
  readonly days: number;
  readonly intervalMs: number;
  readonly now: number;
  readonly seed: number;
  readonly endAgoMs?: number;
}

export interface Dataset {
  /** Readings in the order they are sent: mostly by time, some late, some resent. */
  readonly sent: Reading[];
  /** What the pipeline should hold: the first copy of each identity, in send order. */
  readonly unique: Reading[];
  /** Readings deliberately older than the live horizon when sent. */
  readonly tooLate: number;
  readonly duplicates: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * A network like the reference deployment, with what makes streaming hard:
 * out-of-order and late arrivals (buffered resends after outages, hours to
 * days late), exact and altered duplicates, gaps, readings missing some
 * measurements, pressure-only nodes, zero flow, metadata on some readings,
 * and a few readings older than the 30-day horizon.
 */
export function generateDataset(options: DatasetOptions): Dataset {
  const rand = seededRandom(options.seed);
  const end = options.now - (options.endAgoMs ?? 60_000);
  // Stay two hours inside the horizon so the test's own duration cannot move readings out of it.
  const start = Math.max(end - options.days * DAY, options.now - 30 * DAY + 2 * HOUR);
  const timeline: Reading[] = [];
  for (let n = 0; n < options.nodes; n++) {
    const id = `NODE${String(n + 1).padStart(3, '0')}`;
    const pressureOnly = n % 5 === 4;
    const withTemperature = n % 3 === 0;
    const withVolume = n % 4 === 0;
    const phase = rand() * 2 * Math.PI;
    let volume = 1000 + rand() * 1000;
    let gapUntil = 0;
    for (let t = start + Math.floor(rand() * options.intervalMs); t <= end; t += options.intervalMs) {
      if (t < gapUntil) continue;
      if (rand() < 0.002) gapUntil = t + rand() * 12 * HOUR; // an outage with no readings
      const timestamp = t + Math.floor(rand() * 1000);
      const hourOfDay = (timestamp % DAY) / HOUR;
      const demand = 0.5 + 0.5 * Math.sin((hourOfDay / 24) * 2 * Math.PI + phase);
      const flow = rand() < 0.05 ? 0 : Math.round((5 + 40 * demand + rand() * 3) * 1000) / 1000;
      const reading: Reading = { node_id: id, timestamp };
      if (!pressureOnly && rand() > 0.05) reading.flow_rate = flow;
      if (rand() > 0.05 || reading.flow_rate === undefined)
        reading.pressure = 4.5 - 1.5 * demand + rand() * 0.2;
      if (withTemperature && rand() > 0.1) reading.temperature = 12 + 6 * demand + rand();
      if (withVolume && reading.flow_rate !== undefined) {
        volume += (flow * options.intervalMs) / 1000 / 1000;
        reading.volume = volume;
      }
      if (rand() < 0.02) {
        reading.node_name = `Node ${n + 1}${rand() < 0.5 ? '' : ' (renamed)'}`;
        reading.node_type = ['distribution', 'storage', 'monitoring'][n % 3] as string;
        reading.district_id = 'SELARGIUS';
      }
      timeline.push(reading);
    }
  }
  timeline.sort((a, b) => a.timestamp - b.timestamp);

  // Arrival order: 10% of readings arrive late (moved forward by up to 3 days
  // of sending), then 4% are resent (half with altered values: still duplicates).
  const arrival = timeline.map((reading, i) => ({
    reading,
    order: rand() < 0.1 ? i + rand() * (timeline.length * (3 / Math.max(options.days, 3))) : i,
  }));
  arrival.sort((a, b) => a.order - b.order);
  const sent: Reading[] = [];
  let duplicates = 0;
  for (const { reading } of arrival) {
    sent.push(reading);
    if (rand() < 0.04) {
      const copy = rand() < 0.5 ? { ...reading } : { ...reading, pressure: 99 };
      sent.splice(Math.max(0, sent.length - 1 - Math.floor(rand() * 500)), 0, copy);
      duplicates++;
    }
  }
  // Readings a day older than the horizon, for nodes that also have recent ones.
  let tooLate = 0;
  for (let i = 0; i < Math.min(options.nodes, 5); i++) {
    sent.push({
      node_id: `NODE${String(i + 1).padStart(3, '0')}`,
      timestamp: options.now - 31 * DAY,
      flow_rate: 7,
    });
    tooLate++;
  }

  const seen = new Set<string>();
  const unique: Reading[] = [];
  for (const reading of sent) {
    const identity = `${reading.node_id}\u0000${reading.timestamp}`;
    if (seen.has(identity)) continue;
    seen.add(identity);
    unique.push(reading);
  }
  return { sent, unique, tooLate, duplicates };
}
