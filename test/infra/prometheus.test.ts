import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

// The Prometheus configuration of the compose site (infra/prometheus), checked
// with promtool (Debian's `prometheus` package), plus what promtool cannot
// know: every compose service that serves /metrics is scraped, and every
// alert's runbook exists in docs/operations.md.

const root = path.resolve(import.meta.dirname, '../..');
const dir = path.join(root, 'infra/prometheus');
const configFile = path.join(dir, 'prometheus.yml');
const rulesFile = path.join(dir, 'alerts.yml');
const rulesTestFile = path.join(dir, 'alerts.test.yml');

const promtoolFound = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error === undefined;
const MISSING = 'promtool is not installed (Debian: apt-get install prometheus)';
// Skipped without promtool on a developer's machine, saying why; CI must have it.
const skipPromtool = !promtoolFound && !process.env.CI;
if (skipPromtool) console.warn(`test/infra/prometheus.test.ts: skipping the promtool checks: ${MISSING}`);

interface Run {
  readonly code: number;
  readonly output: string;
}

function promtool(args: readonly string[], cwd = dir): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${MISSING}; CI must install it`));
        return;
      }
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  expr: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

interface RuleFile {
  readonly groups: { readonly name: string; readonly rules: Rule[] }[];
}

interface RuleTest {
  readonly alert_rule_test?: { readonly alertname: string; readonly exp_alerts?: unknown[] }[];
}

interface RulesTestFile {
  readonly rule_files: string[];
  readonly tests: RuleTest[];
}

const rules = parse(readFileSync(rulesFile, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((group) => group.rules).filter((rule) => rule.alert !== undefined);
const alertNames = [...new Set(alerts.map((rule) => rule.alert as string))];
const rulesTests = parse(readFileSync(rulesTestFile, 'utf8')) as RulesTestFile;

const scratch = mkdtempSync(path.join(tmpdir(), 'streamgauge-prometheus-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('promtool', () => {
  it('is installed, or the checks say why they are skipped', () => {
    if (!promtoolFound && process.env.CI) throw new Error(`${MISSING}: CI must install it`);
    expect(promtoolFound || skipPromtool).toBe(true);
  });

  it.skipIf(skipPromtool)('check config: prometheus.yml and the rule files it names are valid', async () => {
    const run = await promtool(['check', 'config', configFile]);
    expect(run.output).toContain('SUCCESS');
    expect(run.code, run.output).toBe(0);
  });

  it.skipIf(skipPromtool)('check rules: alerts.yml is valid', async () => {
    const run = await promtool(['check', 'rules', rulesFile]);
    expect(run.code, run.output).toBe(0);
  });

  it.skipIf(skipPromtool)(
    'test rules: every alert fires where it should and not on a healthy series',
    async () => {
      const run = await promtool(['test', 'rules', rulesTestFile]);
      expect(run.code, run.output).toBe(0);
    },
  );

  // The unit tests could pass by never asserting anything: break each alert in
  // turn (its expression never fires) and the tests about it must fail.
  it.skipIf(skipPromtool)(
    'test rules fail when any alert is broken',
    async () => {
      const runs = await Promise.all(
        alertNames.map(async (name) => {
          const work = mkdtempSync(path.join(scratch, `${name}-`));
          const broken = structuredClone(rules);
          for (const group of broken.groups)
            for (const rule of group.rules) if (rule.alert === name) rule.expr = 'vector(1) == 2';
          writeFileSync(path.join(work, 'alerts.yml'), stringify(broken));
          // Only the tests that name this alert (the reconcile ones evaluate a day).
          const mine = rulesTests.tests.filter((test) =>
            test.alert_rule_test?.some((t) => t.alertname === name),
          );
          writeFileSync(
            path.join(work, 'alerts.test.yml'),
            stringify({ ...rulesTests, rule_files: ['alerts.yml'], tests: mine }),
          );
          writeFileSync(path.join(work, 'intact.yml'), readFileSync(rulesFile, 'utf8'));
          writeFileSync(
            path.join(work, 'intact.test.yml'),
            stringify({ ...rulesTests, rule_files: ['intact.yml'], tests: mine }),
          );
          const [intact, breakage] = await Promise.all([
            promtool(['test', 'rules', 'intact.test.yml'], work),
            promtool(['test', 'rules', 'alerts.test.yml'], work),
          ]);
          return { name, intact, breakage };
        }),
      );
      for (const { name, intact, breakage } of runs) {
        expect(intact.code, `${name}, intact:\n${intact.output}`).toBe(0);
        expect(breakage.code, `${name} broken, yet its tests pass:\n${breakage.output}`).not.toBe(0);
        expect(breakage.output).toContain(`alertname: ${name}`);
      }
    },
    180_000,
  );
});

describe('alerts.test.yml', () => {
  it('tests every alert firing, and quiet (healthy or not yet firing)', () => {
    const asserted = rulesTests.tests.flatMap((test) => test.alert_rule_test ?? []);
    for (const name of alertNames) {
      const mine = asserted.filter((t) => t.alertname === name);
      expect(
        mine.some((t) => (t.exp_alerts ?? []).length > 0),
        `${name}: no test where it fires`,
      ).toBe(true);
      expect(
        mine.some((t) => (t.exp_alerts ?? []).length === 0),
        `${name}: no test where it stays quiet`,
      ).toBe(true);
    }
  });
});

describe('alerts.yml', () => {
  const anchors = markdownAnchors(readFileSync(path.join(root, 'docs/operations.md'), 'utf8'));

  it('has the alerts the site needs', () => {
    expect(alertNames).toEqual(
      expect.arrayContaining([
        'StreamgaugeConsumerLagHigh',
        'StreamgaugeConsumerGroupDown',
        'StreamgaugePendingEntryStuck',
        'StreamgaugeDeadLetters',
        'StreamgaugeDeadLettersGrowing',
        'StreamgaugeReconcileDrift',
        'StreamgaugeReconcileStale',
        'StreamgaugeReconcileFailing',
        'StreamgaugeIngestErrors',
        'StreamgaugeRedisMemoryHigh',
        'StreamgaugeTargetDown',
        'StreamgaugeFreshnessLow',
      ]),
    );
  });

  it.each(alerts.map((rule, i) => [`${rule.alert} #${i}`, rule] as const))(
    '%s has a severity, a summary, a description and a runbook in docs/operations.md',
    (_name, rule) => {
      expect(['critical', 'warning', 'info']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
      const url = rule.annotations?.runbook_url ?? '';
      const match = /^docs\/operations\.md#([a-z0-9_-]+)$/.exec(url);
      expect(match, `runbook_url ${JSON.stringify(url)}`).not.toBeNull();
      expect(anchors).toContain(match?.[1]);
    },
  );

  it('the links within docs/operations.md resolve', () => {
    const text = readFileSync(path.join(root, 'docs/operations.md'), 'utf8');
    for (const [, anchor] of text.matchAll(/\]\(#([^)]+)\)/g)) expect(anchors).toContain(anchor);
  });

  it('reads the anchors of headings as GitHub does', () => {
    const doc = [
      '# Running a site',
      '## Deploying with `docker compose`',
      '```sh',
      '# not a heading',
      '```',
      '### StreamgaugeTargetDown',
      '## Deploying with docker compose',
    ].join('\n');
    expect(markdownAnchors(doc)).toEqual([
      'running-a-site',
      'deploying-with-docker-compose',
      'streamgaugetargetdown',
      'deploying-with-docker-compose-1',
    ]);
  });
});

describe('prometheus.yml', () => {
  const config = parse(readFileSync(configFile, 'utf8')) as {
    rule_files: string[];
    scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
  };
  const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), {
    merge: true,
  }) as Compose;

  it('loads alerts.yml', () => {
    expect(config.rule_files).toEqual(['alerts.yml']);
  });

  it('scrapes every /metrics of the compose services, and nothing else of streamgauge', () => {
    expect(metricsEndpoints(compose).length).toBeGreaterThanOrEqual(4);
    expect(scrapeProblems(compose, config.scrape_configs)).toEqual([]);
  });

  it('the target check catches a service left out, or a target no service serves', () => {
    const without = config.scrape_configs.map((job) => ({
      ...job,
      static_configs: job.static_configs.map((s) => ({
        targets: s.targets.filter((t) => t !== 'aggregator-2:9464'),
      })),
    }));
    expect(scrapeProblems(compose, without)).toEqual([
      'aggregator-2:9464 serves /metrics and is not scraped',
    ]);
    const stale = [
      ...config.scrape_configs,
      { job_name: 'streamgauge-backfill', static_configs: [{ targets: ['backfill:9466'] }] },
    ];
    expect(scrapeProblems(compose, stale)).toEqual([
      'backfill:9466 is scraped, and no compose service serves it',
    ]);
  });

  it('is the configuration the prometheus service runs, with its rules beside it', () => {
    const prometheus = compose.services.prometheus;
    if (prometheus === undefined) throw new Error('no prometheus service');
    expect(prometheus.volumes).toContain('./infra/prometheus:/etc/prometheus:ro');
    expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(prometheus.ports).toEqual(['127.0.0.1:9090:9090']);
  });
});

interface ComposeService {
  readonly command?: string[];
  readonly environment?: Record<string, string>;
  readonly volumes?: string[];
  readonly ports?: string[];
}

interface Compose {
  readonly services: Record<string, ComposeService>;
}

/** Where each compose service serves /metrics (`service:port`), from its command and settings. */
function metricsEndpoints(compose: Compose): string[] {
  const defaults: Record<string, [string, number]> = {
    ingest: ['INGEST_PORT', 8080],
    aggregate: ['METRICS_PORT', 9464],
    archive: ['METRICS_PORT', 9465],
    backfill: ['METRICS_PORT', 9466],
  };
  const endpoints: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    const known = defaults[service.command?.[0] ?? ''];
    if (known === undefined) continue;
    const [variable, port] = known;
    const set = service.environment?.[variable];
    if (set === 'off') continue;
    endpoints.push(`${name}:${set ?? port}`);
  }
  return endpoints;
}

function scrapeProblems(
  compose: Compose,
  jobs: readonly { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[],
): string[] {
  const streamgaugeJobs = jobs.filter((job) => job.job_name.startsWith('streamgauge-'));
  const scraped = new Set(streamgaugeJobs.flatMap((job) => job.static_configs.flatMap((s) => s.targets)));
  const served = metricsEndpoints(compose);
  const problems = [
    ...served.filter((e) => !scraped.has(e)).map((e) => `${e} serves /metrics and is not scraped`),
    ...[...scraped]
      .filter((t) => !served.includes(t))
      .map((t) => `${t} is scraped, and no compose service serves it`),
  ];
  for (const job of streamgaugeJobs)
    if ((job.metrics_path ?? '/metrics') !== '/metrics') problems.push(`${job.job_name}: not /metrics`);
  return problems;
}

/** The anchors GitHub gives a document's headings (outside code fences), in order. */
function markdownAnchors(markdown: string): string[] {
  const seen = new Map<string, number>();
  const anchors: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = (heading[1] ?? '')
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.push(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}
