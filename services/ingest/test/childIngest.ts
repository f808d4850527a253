/**
 * The ingest service alone in a process, for tests that measure what it
 * holds (its memory) from outside. Configured by the environment, as in
 * production; prints `{"url": ...}` once it listens.
 */
import { loadConfig } from '@streamgauge/core';
import { pino } from 'pino';
import { startIngest } from '../src/index.ts';

const ingest = await startIngest(loadConfig(process.env), pino({ level: 'warn' }));
process.stdout.write(`${JSON.stringify({ url: ingest.url })}\n`);
process.once('SIGTERM', () => {
  void ingest.close().then(() => process.exit(0));
});
