export type { Evaluation, KindScore } from './evaluate.ts';
export { evaluate } from './evaluate.ts';
export type { InjectedEvent, InjectedKind, LabelledData, LabelledOptions } from './labelled.ts';
export { INJECTED_KINDS, labelledReadings } from './labelled.ts';
export type { SimulatedNode, SimulatedReading } from './network.ts';
export { DISTRICT, demandAt, readingOf, simulatedNetwork } from './network.ts';
export type { SimulatorOptions, SimulatorStats } from './simulator.ts';
export { GatewaySimulator } from './simulator.ts';
