#!/usr/bin/env node
// The image's HEALTHCHECK: asks the service this container runs (PID 1's
// command, or the command given: probe.js ingest) for /readyz on the port that
// service listens on. Exit 0 when ready.
import { readFileSync } from 'node:fs';

const ports = {
  start: ['INGEST_PORT', 8080],
  ingest: ['INGEST_PORT', 8080],
  dashboard: ['DASHBOARD_PORT', 8090],
  aggregate: ['METRICS_PORT', 9464],
  archive: ['METRICS_PORT', 9465],
  backfill: ['METRICS_PORT', 9466],
};
const argv = process.argv[2] ? [process.argv[2]] : readFileSync('/proc/1/cmdline', 'utf8').split('\0');
const command = argv.find((arg) => Object.hasOwn(ports, arg));
if (command === undefined) {
  // A one-off command (gateways add, status, ...): nothing to probe.
  process.exit(0);
}
const [variable, fallback] = ports[command];
const port = Number(process.env[variable] || fallback);
try {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(3_000) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
