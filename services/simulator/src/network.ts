/**
 * A simulated water district: loggers with a diurnal demand curve, pressure
 * that falls as flow rises, noise, and a cumulative volume counter. Pure: the
 * random source is passed in, so runs are reproducible.
 */
export interface SimulatedNode {
  readonly id: string;
  readonly name: string;
  readonly type: 'distribution' | 'storage' | 'monitoring' | 'interconnection' | 'zone';
  /** Flow at full demand, L/s. */
  readonly peakFlow: number;
  /** Pressure with no flow, bar. */
  readonly staticPressure: number;
  /** Pressure lost per L/s of flow, bar. */
  readonly headLoss: number;
  readonly measuresFlow: boolean;
  volume: number;
}

export const DISTRICT = 'SELARGIUS';

const REFERENCE: readonly [string, SimulatedNode['type'], string][] = [
  ['215542', 'distribution', 'Via Roma'],
  ['281492', 'distribution', 'Via Trento'],
  ['287156', 'distribution', 'Piazza Martiri'],
  ['288399', 'distribution', 'Via Istria'],
  ['288400', 'monitoring', 'Su Planu'],
  ['294231', 'distribution', 'Via Bixio'],
  ['NODE01', 'distribution', 'Is Corrias'],
  ['NODE02', 'monitoring', 'Via Dante'],
  ['TANK01', 'storage', 'Serbatoio Nord'],
  ['TANK02', 'storage', 'Serbatoio Sud'],
  ['INTERCON03', 'interconnection', 'Interconnessione Quartu'],
  ['ZONE07', 'zone', 'Zona 7'],
];

export function simulatedNetwork(count: number, random: () => number): SimulatedNode[] {
  return Array.from({ length: count }, (_, i) => {
    const [id, type, name] = REFERENCE[i] ?? [
      `SIM${String(i + 1).padStart(4, '0')}`,
      'distribution',
      `Node ${i + 1}`,
    ];
    return {
      id,
      name: `${DISTRICT} ${name}`,
      type,
      peakFlow: type === 'storage' ? 40 + random() * 40 : 5 + random() * 30,
      staticPressure: 4 + random() * 2,
      headLoss: 0.02 + random() * 0.03,
      // Monitoring points measure pressure only.
      measuresFlow: type !== 'monitoring',
      volume: 10_000 + random() * 90_000,
    };
  });
}

/** Demand as a fraction of peak: a night minimum and morning and evening peaks. */
export function demandAt(ms: number): number {
  const hour = (ms / 3_600_000) % 24;
  const bump = (centre: number, width: number) => Math.exp(-(((hour - centre) / width) ** 2));
  return 0.3 + 0.55 * bump(7.5, 1.5) + 0.4 * bump(20, 2) + 0.15 * bump(13, 2.5);
}

export interface SimulatedReading {
  node_id: string;
  timestamp: string;
  flow_rate?: number;
  pressure: number;
  temperature: number;
  volume?: number;
  node_name: string;
  node_type: string;
  district_id: string;
}

/** One reading of a node at `ms`, after `elapsedMs` since its previous one. */
export function readingOf(
  node: SimulatedNode,
  ms: number,
  elapsedMs: number,
  random: () => number,
): SimulatedReading {
  const noise = () => (random() - 0.5) * 2;
  const flow = node.measuresFlow ? Math.max(0, node.peakFlow * demandAt(ms) * (1 + 0.05 * noise())) : 0;
  // Tanks fill in cycles: some of the time no flow passes the meter.
  const flowing = node.type === 'storage' && demandAt(ms) < 0.35 ? 0 : flow;
  node.volume += (flowing * elapsedMs) / 1_000_000;
  const reading: SimulatedReading = {
    node_id: node.id,
    timestamp: new Date(ms).toISOString(),
    pressure: round(node.staticPressure - node.headLoss * flowing + 0.03 * noise(), 4),
    temperature: round(14 + 3 * Math.sin((ms / 86_400_000) * 2 * Math.PI) + 0.2 * noise(), 3),
    node_name: node.name,
    node_type: node.type,
    district_id: DISTRICT,
  };
  if (node.measuresFlow) {
    reading.flow_rate = round(flowing, 4);
    reading.volume = round(node.volume, 3);
  }
  return reading;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
