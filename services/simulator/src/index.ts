export type { SimulatedNode, SimulatedReading } from './network.ts';
export { DISTRICT, demandAt, readingOf, simulatedNetwork } from './network.ts';
export type { SimulatorOptions, SimulatorStats } from './simulator.ts';
export { GatewaySimulator } from './simulator.ts';
