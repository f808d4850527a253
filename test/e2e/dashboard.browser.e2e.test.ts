import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startAggregator } from '@streamgauge/aggregator';
import { type Reading, readModelKeys } from '@streamgauge/core';
import { type RunningDashboard, startDashboard } from '@streamgauge/dashboard';
import { startIngest } from '@streamgauge/ingest';
import { freePort, generateDataset, waitForAggregator } from '@streamgauge/testkit';
import { pino } from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { type TestSystem, testSystem } from '../support/system.ts';

const CHROMIUM = '/usr/bin/chromium';
/** Each view's screenshot, written by every run (docs/dashboard.md shows them). */
const SCREENSHOTS = fileURLToPath(new URL('../../.artifacts/screenshots/', import.meta.url));

const silent = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];
let system: TestSystem;
let ingestUrl: string;
let dashboard: RunningDashboard;
let port: number;
let browser: Browser;
const now = Date.now();

const startOn = (p: number) =>
  startDashboard(system.config, silent, { host: '127.0.0.1', port: p, refreshMs: 50, pollMs: 200 });

describe.skipIf(!existsSync(CHROMIUM))('the dashboard page (Chromium)', () => {
  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    system = await testSystem('dashboard-page', {}, (step) => cleanup.push(step));
    const aggregator = await startAggregator(system.config, silent);
    cleanup.push(() => aggregator.stop());
    const ingest = await startIngest(system.config, silent);
    cleanup.push(() => ingest.close());
    ingestUrl = ingest.url;
    const data = generateDataset({ nodes: 12, days: 3, intervalMs: 20 * 60_000, now, seed: 3 });
    await postReadings(ingestUrl, data.sent);
    await waitForAggregator(system.redis, 1, 120_000);
    port = await freePort();
    dashboard = await startOn(port);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    cleanup.push(() => browser.close());
  }, 180_000);

  afterAll(async () => {
    await dashboard?.stop().catch(() => {});
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  /** A page that records every request it makes and every console error. */
  async function open(path: string) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${dashboard.url}${path}`);
    /** Nothing left the machine: every request went to the service itself. */
    const local = () => requests.filter((url) => !url.startsWith(dashboard.url));
    return { page, requests, errors, local };
  }

  /** A failed wait for a node, with what the service saw: a lost notice, a stuck view, or the page. */
  async function explain(error: Error, node: string): Promise<never> {
    const latest = await system.redis.hgetall(readModelKeys.nodeLatest(node));
    throw new Error(
      `${error.message}; view ${JSON.stringify({ ...dashboard.view.state(), version: dashboard.view.version, now: Date.now() })}, ${node} in view ${dashboard.view.nodes.has(node)}, hub clients ${dashboard.events.clients}, latest ${JSON.stringify(latest)}`,
    );
  }

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });

  it('lists every node the read model holds, and one ingested after the page loaded, without a reload', async () => {
    const { page, requests, errors, local } = await open('/#/nodes');
    const ids = await system.redis.lrange(readModelKeys.nodesAll, 0, -1);
    const rows = page.locator('#nodes-table tbody tr[data-node-id]');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(ids.length);
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-node-id')));
    expect([...shown].sort()).toEqual([...ids].sort());
    await shot(page, 'nodes');

    await postReadings(ingestUrl, [
      { node_id: 'NODEX1', timestamp: Date.now() - 500, flow_rate: 4.2, pressure: 3.3 },
    ]);
    await page
      .locator('#nodes-table tr[data-node-id="NODEX1"]')
      .waitFor({ timeout: 10_000 })
      .catch((error: Error) => explain(error, 'NODEX1'));
    expect(page.url()).toBe(`${dashboard.url}/#/nodes`);
    expect(requests.length).toBeGreaterThan(3);
    expect(local()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('shows the overview tiles with units', async () => {
    const { page, errors, local } = await open('/#/');
    const nodes = page.locator('[data-kpi="nodes"]');
    const total = await system.redis.llen(readModelKeys.nodesAll);
    await expect.poll(() => nodes.textContent(), { timeout: 10_000 }).toContain(String(total));
    await expect.poll(() => page.locator('[data-kpi="total-flow"]').textContent()).toContain('L/s');
    await expect.poll(() => page.locator('[data-kpi="mean-pressure"]').textContent()).toContain('bar');
    await shot(page, 'overview');
    expect(local()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('draws the node’s 7-day hourly series', async () => {
    const { page, errors, local } = await open('/#/nodes/NODE001');
    const canvas = page.locator('#node-chart canvas').first();
    await canvas.waitFor({ timeout: 10_000 });
    // Drawn: many distinct pixels, not a blank canvas.
    const inked = await canvas.evaluate((element) => {
      // The browser's canvas, typed here without the DOM library.
      const c = element as unknown as {
        width: number;
        height: number;
        getContext(kind: '2d'): { getImageData(...box: number[]): { data: Uint8ClampedArray } } | null;
      };
      const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
      let count = 0;
      for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) count++;
      return count;
    });
    expect(inked).toBeGreaterThan(1_000);
    await shot(page, 'node');
    expect(local()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('lists an anomaly opened by readings while the page is open, leading to its node', async () => {
    const { page, errors, local } = await open('/#/anomalies');
    await page.locator('table').first().waitFor({ timeout: 10_000 });
    const low: Reading[] = [60_000, 30_000].map((ago) => ({
      node_id: 'NODE005',
      timestamp: Date.now() - ago,
      pressure: 0.3,
      flow_rate: 2,
    }));
    await postReadings(ingestUrl, low);
    const row = page.locator('tr[data-anomaly-id^="NODE005:low_pressure"]').first();
    await row.waitFor({ timeout: 15_000 });
    expect(await row.textContent()).toContain('bar');
    await shot(page, 'anomalies');
    await row.locator('a[href="#/nodes/NODE005"]').first().click();
    await page.locator('#node-chart').waitFor({ timeout: 10_000 });
    expect(local()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('shows the pipeline', async () => {
    const { page, errors, local } = await open('/#/pipeline');
    await expect.poll(() => page.locator('main').textContent(), { timeout: 10_000 }).toContain('readings');
    // Labelled as an operator reads them, with units.
    await expect.poll(() => page.locator('#pipeline-cache').textContent()).toContain('Redis memory used');
    expect(await page.locator('#pipeline-groups').textContent()).toContain('Lag (entries)');
    await shot(page, 'pipeline');
    expect(local()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says when the connection is lost and recovers by itself when the service is back', async () => {
    const { page } = await open('/#/nodes');
    const banner = page.locator('#connection');
    await page.locator('#nodes-table tbody tr[data-node-id]').first().waitFor({ timeout: 10_000 });
    expect(await banner.isVisible()).toBe(false);
    await dashboard.stop();
    await banner.waitFor({ state: 'visible', timeout: 15_000 });
    expect(await banner.textContent()).toMatch(/connection lost/i);
    await shot(page, 'connection-lost');
    dashboard = await startOn(port);
    await banner.waitFor({ state: 'hidden', timeout: 20_000 });
    // Live again: a node sent now appears without a reload.
    await postReadings(ingestUrl, [
      { node_id: 'NODEX2', timestamp: Date.now() - 500, flow_rate: 1, pressure: 3 },
    ]);
    await page
      .locator('#nodes-table tr[data-node-id="NODEX2"]')
      .waitFor({ timeout: 15_000 })
      .catch((error: Error) => explain(error, 'NODEX2'));
    await page.close();
  }, 90_000);
});
