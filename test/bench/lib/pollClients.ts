/**
 * The dashboard's polling clients, in a process of their own so that the
 * bench's own work (and garbage) never lands in their latencies:
 * `node pollClients.ts URL polling|saturated CLIENTS WARMUP_S SECONDS`
 * prints `{seconds, overview: {count, p50, p99}, nodes: {…}}`. Each client
 * asks for the overview, then the first page of nodes; `polling`: once a
 * second (phases spread over the first second), `saturated`: back to back.
 */
import { Pool } from 'undici';
import { LatencyRecorder } from './stats.ts';

const [url = '', mode = 'polling', clientsText = '100', warmupText = '3', secondsText = '5'] =
  process.argv.slice(2);
const clients = Number(clientsText);
const pool = new Pool(url, { connections: clients, pipelining: 1 });
const paths = { overview: '/api/v1/overview?range=24h', nodes: '/api/v1/nodes?range=24h&limit=50' };

async function get(path: string): Promise<number> {
  const started = performance.now();
  const response = await pool.request({ path, method: 'GET' });
  // Read to the last byte without gathering it: a body copied into an ArrayBuffer per
  // answer (35 KB for a page of nodes) cost this process collections of its own, 3–5 ms
  // every second or so, and they landed in the latencies measured.
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Buffer).length;
  if (response.statusCode !== 200 || bytes === 0)
    throw new Error(`${path}: ${response.statusCode}, ${bytes} B`);
  return performance.now() - started;
}

async function phase(record: boolean, seconds: number) {
  const latencies = { overview: new LatencyRecorder(), nodes: new LatencyRecorder() };
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      if (mode === 'polling') await new Promise((r) => setTimeout(r, (c * 1000) / clients));
      while (performance.now() < until) {
        const round = performance.now();
        for (const which of ['overview', 'nodes'] as const) {
          const ms = await get(paths[which]);
          if (record) latencies[which].add(ms);
        }
        if (mode === 'polling')
          await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - round))));
      }
    }),
  );
  return latencies;
}

await phase(false, Number(warmupText));
const started = performance.now();
const latencies = await phase(true, Number(secondsText));
const seconds = (performance.now() - started) / 1000;
const summary = (recorder: LatencyRecorder) => {
  const [p50, p99] = recorder.percentiles(50, 99);
  return { count: recorder.count, p50, p99 };
};
console.log(
  JSON.stringify({ seconds, overview: summary(latencies.overview), nodes: summary(latencies.nodes) }),
);
await pool.close();
