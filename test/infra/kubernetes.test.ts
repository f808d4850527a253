/**
 * The Kubernetes manifests in infra/k8s (docs/kubernetes.md): every source
 * file and every object that kustomize renders (the base and each overlay)
 * is validated against the Kubernetes schema with kubernetes-models, unknown
 * fields included, and the properties the deployment depends on are checked
 * on the rendered output: probes on ports that exist, requests and limits,
 * non-root containers, Service selectors, references to ConfigMaps and
 * Secrets, the HPA and PDBs, one STREAM_SHARDS, and each service's effective
 * environment read by the services' own configuration loader. Redis' start
 * script, its rendered redis.conf and readiness probe run for real (a
 * redis-server on PATH), and docs/kubernetes.md's Prometheus scrape job is
 * applied to the rendered pods by promtool.
 *
 * Rendering needs `kubectl kustomize` (or `kustomize build`), the scrape job
 * `promtool` (Debian: prometheus). Without them those tests are skipped,
 * saying why, except under CI, where they fail.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { type Config, loadConfig, metricsPort } from '@streamgauge/core';
import { freePort, redisServerOnPath } from '@streamgauge/testkit';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const REPO = resolve(import.meta.dirname, '../..');
const K8S = join(REPO, 'infra/k8s');
const NAMESPACE = 'streamgauge';
const IMAGE = 'ghcr.io/example/streamgauge:0.1.0';
const TARGETS = ['base', 'overlays/standalone', 'overlays/gke'] as const;
type Target = (typeof TARGETS)[number];

// ---------------------------------------------------------------- objects

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

type Workload = (IDeployment | IStatefulSet) & K8sObject;

const id = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

function parseYaml(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${source}, document ${i + 1}: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as unknown;
    return value === null || value === undefined ? [] : [value as K8sObject];
  });
}

// ---------------------------------------------------------------- schema

type ModelClass = new (data: object) => { validate(): void };
interface SchemaError {
  instancePath: string;
  message?: string;
}

const models = new Map<string, Promise<ModelClass>>();

/** The kubernetes-models class of an apiVersion and kind; fails for a kind it does not know. */
function modelOf(apiVersion: string, kind: string): Promise<ModelClass> {
  const key = `${apiVersion}/${kind}`;
  let model = models.get(key);
  if (model === undefined) {
    if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z]+$/.test(kind)) {
      return Promise.reject(new Error(`not a Kubernetes apiVersion and kind: ${apiVersion} ${kind}`));
    }
    const specifier = `kubernetes-models/${apiVersion}/${kind}`;
    model = import(specifier).then(
      (module: Record<string, unknown>) => {
        const found = module[kind];
        if (typeof found !== 'function') throw new Error(`${specifier} exports no ${kind}`);
        return found as ModelClass;
      },
      () => {
        throw new Error(`unknown kind ${kind} (${apiVersion}): kubernetes-models has no schema for it`);
      },
    );
    models.set(key, model);
  }
  return model;
}

function schemaErrors(model: ModelClass, data: object): SchemaError[] {
  try {
    new model(data).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: SchemaError[] }).errors;
    if (!Array.isArray(errors)) throw error;
    return errors;
  }
}

const PROBE = Symbol('probe');
/** A JSON pointer, as the schema's errors spell paths. */
const pointer = (path: readonly (string | number)[]) =>
  path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Fields the schema does not know (the API server would drop or refuse
 * them: `livenessProb`, `resource`). kubernetes-models checks the fields it
 * knows only; so each field in turn is given a value no schema accepts, and
 * a field whose path then has no error is not in the schema. Keys starting
 * with `$` are patch directives.
 */
function unknownFields(model: ModelClass, data: Record<string, unknown>): string[] {
  const unknown: string[] = [];
  const visit = (value: unknown, path: (string | number)[]) => {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) visit(item, [...path, i]);
      return;
    }
    if (!isRecord(value)) return;
    for (const key of Object.keys(value)) {
      if (key.startsWith('$')) continue;
      const at = [...path, key];
      const original = value[key];
      value[key] = PROBE;
      const where = pointer(at);
      const known = schemaErrors(model, data).some(
        (e) => e.instancePath === where || e.instancePath.startsWith(`${where}/`),
      );
      value[key] = original;
      if (known) visit(original, at);
      else unknown.push(where);
    }
  };
  visit(data, []);
  return unknown;
}

/** Schema problems of a whole object: its kind, the schema's errors, unknown fields. */
async function schemaProblems(object: K8sObject, options: { partial?: boolean } = {}): Promise<string[]> {
  let model: ModelClass;
  try {
    model = await modelOf(object.apiVersion, object.kind);
  } catch (error) {
    return [`${id(object)}: ${(error as Error).message}`];
  }
  const copy = structuredClone(object) as Record<string, unknown>;
  // kustomize folds long base64 values of a Secret's data over lines; the API
  // server's decoder (Go's base64) skips the line breaks, the schema's does not.
  if (object.kind === 'Secret' && isRecord(copy.data)) {
    for (const [k, v] of Object.entries(copy.data))
      if (typeof v === 'string') copy.data[k] = v.replace(/[\r\n]/g, '');
  }
  const problems = options.partial
    ? []
    : schemaErrors(model, copy).map((e) => `${id(object)}: ${e.instancePath || '/'} ${e.message}`);
  for (const field of unknownFields(model, copy)) problems.push(`${id(object)}: unknown field ${field}`);
  return problems;
}

// ---------------------------------------------------------------- source files

interface Kustomization {
  kind?: string;
  apiVersion?: string;
  resources?: string[];
  components?: string[];
  patches?: { path?: string; patch?: string }[];
  configMapGenerator?: { files?: string[]; envs?: string[] }[];
  secretGenerator?: { files?: string[]; envs?: string[] }[];
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const sourceFiles = walk(K8S);
const kustomizationFiles = sourceFiles.filter((f) => /(^|\/)kustomization\.ya?ml$/.test(f));

function readKustomization(file: string): Kustomization {
  return parseYaml(readFileSync(file, 'utf8'), file)[0] as unknown as Kustomization;
}

/** What each kustomization refers to, by role. */
function references(file: string) {
  const k = readKustomization(file);
  const dir = dirname(file);
  const local = (paths: string[] | undefined) => (paths ?? []).map((p) => resolve(dir, p));
  const generated = [...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])].flatMap((g) => [
    ...local(g.files?.map((f) => f.replace(/^[^=]+=/, ''))),
    ...local(g.envs),
  ]);
  return {
    kustomization: k,
    resources: local(k.resources),
    components: local(k.components),
    patches: local((k.patches ?? []).flatMap((p) => (p.path ? [p.path] : []))),
    generated,
  };
}

// ---------------------------------------------------------------- rendering

interface Renderer {
  readonly describe: string;
  render(dir: string): string;
}

/** KUBECTL names a kubectl binary to use instead of the one on PATH. */
const KUBECTL = process.env.KUBECTL || 'kubectl';

function findRenderer(): Renderer | string {
  const tried: string[] = [];
  try {
    const out = execFileSync(KUBECTL, ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
    const version = JSON.parse(out) as { kustomizeVersion?: string; clientVersion?: { gitVersion?: string } };
    if (version.kustomizeVersion) {
      return {
        describe: `kubectl ${version.clientVersion?.gitVersion} (kustomize ${version.kustomizeVersion})`,
        render: (dir) => execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' }),
      };
    }
    tried.push('kubectl has no kustomize');
  } catch (error) {
    tried.push(`${KUBECTL}: ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    const version = execFileSync('kustomize', ['version'], { encoding: 'utf8' }).trim();
    return {
      describe: `kustomize ${version}`,
      render: (dir) => execFileSync('kustomize', ['build', dir], { encoding: 'utf8' }),
    };
  } catch (error) {
    tried.push(`kustomize: ${(error as Error).message.split('\n')[0]}`);
  }
  return tried.join('; ');
}

const renderer = findRenderer();
const rendered = new Map<Target, K8sObject[]>();

function renderDir(dir: string): K8sObject[] {
  if (typeof renderer === 'string') {
    throw new Error(`cannot render ${dir}: no kubectl with kustomize, nor kustomize (${renderer})`);
  }
  return parseYaml(renderer.render(dir), `kustomize output of ${dir}`);
}

function render(target: Target): K8sObject[] {
  if (typeof renderer === 'string') {
    throw new Error(
      `cannot render infra/k8s/${target}: no kubectl with kustomize, nor kustomize (${renderer})`,
    );
  }
  let objects = rendered.get(target);
  if (objects === undefined) {
    objects = parseYaml(renderer.render(join(K8S, target)), `kustomize output of ${target}`);
    rendered.set(target, objects);
  }
  return objects;
}

const skipRendering = typeof renderer === 'string' && !process.env.CI;
if (skipRendering) {
  process.stderr.write(
    `test/infra/kubernetes.test.ts: the kustomize output is not rendered nor checked: ${renderer}. ` +
      'Install kubectl (it bundles kustomize) or kustomize; under CI this fails instead.\n',
  );
}

// ---------------------------------------------------------------- helpers on rendered objects

const ofKind = <T>(objects: K8sObject[], kind: string) =>
  objects.filter((o) => o.kind === kind) as unknown as (T & K8sObject)[];

function named<T>(objects: K8sObject[], kind: string, name: string): T & K8sObject {
  const found = ofKind<T>(objects, kind).find((o) => o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind}/${name} in the output`);
  return found;
}

const workloads = (objects: K8sObject[]) =>
  objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet') as unknown as Workload[];

function template(workload: Workload): IPodTemplateSpec {
  const t = workload.spec?.template;
  if (t === undefined) throw new Error(`${id(workload)} has no pod template`);
  return t;
}

const containersOf = (workload: Workload): IContainer[] => template(workload).spec?.containers ?? [];

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** A Kubernetes quantity in base units (cores, bytes). */
function quantity(value: string | number | undefined): number {
  if (value === undefined) return Number.NaN;
  if (typeof value === 'number') return value;
  const match = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(value);
  if (!match) return Number.NaN;
  const units: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(match[1]) * (match[2] ? (units[match[2]] ?? Number.NaN) : 1);
}

/** Redis' memory units (`9gb` is 9 × 1024³ bytes; `9g` is 9 × 10⁹). */
function redisBytes(value: string): number {
  const match = /^([0-9]+)(k|kb|m|mb|g|gb)?$/i.exec(value);
  if (!match) return Number.NaN;
  const units: Record<string, number> = { k: 1e3, kb: 2 ** 10, m: 1e6, mb: 2 ** 20, g: 1e9, gb: 2 ** 30 };
  return Number(match[1]) * (match[2] ? (units[match[2].toLowerCase()] ?? Number.NaN) : 1);
}

function redisDirectives(text: string): Map<string, string> {
  const directives = new Map<string, string>();
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [name, ...value] = trimmed.split(/\s+/);
    if (name) directives.set(name.toLowerCase(), value.join(' '));
  }
  return directives;
}

function secretValue(secret: ISecret, key: string): string | undefined {
  if (secret.stringData?.[key] !== undefined) return secret.stringData[key];
  const data = secret.data?.[key];
  return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
}

/** The ports a container's probe may name: `name` or the number. */
function probePortOk(container: IContainer, probe: IProbe): string | undefined {
  if (probe.exec) return probe.exec.command?.length ? undefined : 'an exec probe with no command';
  const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
  if (port === undefined) return 'a probe with no handler';
  const declared = container.ports ?? [];
  const found =
    typeof port === 'number'
      ? declared.some((p) => p.containerPort === port)
      : declared.some((p) => p.name === port);
  return found ? undefined : `a probe on port ${port}, which the container does not declare`;
}

function containerPort(container: IContainer, name: string): number {
  const port = container.ports?.find((p) => p.name === name)?.containerPort;
  if (port === undefined) throw new Error(`container ${container.name} has no port named ${name}`);
  return port;
}

/** A sample pod name of a workload, for fieldRef metadata.name. */
const podName = (workload: Workload) =>
  workload.kind === 'StatefulSet'
    ? `${workload.metadata.name}-0`
    : `${workload.metadata.name}-7d9f8b6c5d-x2x7k`;

/**
 * The environment a container starts with: envFrom, then env (values,
 * $(VAR) references to earlier variables, ConfigMap and Secret keys, the
 * pod's name). Fails on a reference to something that is not rendered.
 */
function effectiveEnv(
  objects: K8sObject[],
  workload: Workload,
  container: IContainer,
): Record<string, string> {
  const env: Record<string, string> = {};
  const where = `${id(workload)} container ${container.name}`;
  const configMap = (name: string) => {
    const found = ofKind<IConfigMap>(objects, 'ConfigMap').find((c) => c.metadata.name === name);
    if (!found) throw new Error(`${where}: ConfigMap ${name} is not in the output`);
    return found;
  };
  const secret = (name: string) => {
    const found = ofKind<ISecret>(objects, 'Secret').find((s) => s.metadata.name === name);
    if (!found) throw new Error(`${where}: Secret ${name} is not in the output`);
    return found;
  };
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    if (source.configMapRef) {
      for (const [k, v] of Object.entries(configMap(source.configMapRef.name ?? '').data ?? {}))
        env[prefix + k] = v;
    }
    if (source.secretRef) {
      const s = secret(source.secretRef.name ?? '');
      for (const k of [...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]) {
        env[prefix + k] = secretValue(s, k) ?? '';
      }
    }
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (variable.value !== undefined) {
      env[variable.name] = variable.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) =>
        name in env ? (env[name] as string) : all,
      );
    } else if (from?.configMapKeyRef) {
      const value = configMap(from.configMapKeyRef.name ?? '').data?.[from.configMapKeyRef.key];
      if (value === undefined) {
        throw new Error(
          `${where}: ${variable.name} names key ${from.configMapKeyRef.key}, not in the ConfigMap`,
        );
      }
      env[variable.name] = value;
    } else if (from?.secretKeyRef) {
      const value = secretValue(secret(from.secretKeyRef.name ?? ''), from.secretKeyRef.key);
      if (value === undefined) {
        throw new Error(`${where}: ${variable.name} names key ${from.secretKeyRef.key}, not in the Secret`);
      }
      env[variable.name] = value;
    } else if (from?.fieldRef?.fieldPath === 'metadata.name') {
      env[variable.name] = podName(workload);
    } else if (from?.fieldRef) {
      env[variable.name] = `<${from.fieldRef.fieldPath}>`;
    } else {
      throw new Error(`${where}: ${variable.name} has neither a value nor a source`);
    }
  }
  return env;
}

/** The streamgauge command a container runs (`ingest`, `aggregate`, …), or undefined for another image. */
function command(container: IContainer): string | undefined {
  if (!container.image?.includes('streamgauge')) return undefined;
  return container.args?.[0];
}

interface ServiceContainer {
  workload: Workload;
  container: IContainer;
  command: string;
  env: Record<string, string>;
  config: Config;
}

function streamgaugeContainers(objects: K8sObject[]): ServiceContainer[] {
  return workloads(objects).flatMap((workload) =>
    containersOf(workload).flatMap((container) => {
      const cmd = command(container);
      if (cmd === undefined) return [];
      const env = effectiveEnv(objects, workload, container);
      let config: Config;
      try {
        config = loadConfig(env);
      } catch (error) {
        throw new Error(`${id(workload)}: the service refuses its environment: ${(error as Error).message}`);
      }
      return [{ workload, container, command: cmd, env, config }];
    }),
  );
}

/** The port each command serves its probes and /metrics on, as its own config reads it. */
const SERVICE_PORTS: Record<string, { portName: string; port: (config: Config) => number | undefined }> = {
  ingest: { portName: 'http', port: (c) => c.ingest.port },
  aggregate: { portName: 'metrics', port: (c) => metricsPort(c, 'aggregator') },
  archive: { portName: 'metrics', port: (c) => metricsPort(c, 'archiver') },
  backfill: { portName: 'metrics', port: (c) => metricsPort(c, 'backfill') },
  dashboard: { portName: 'http', port: (c) => c.dashboard.port },
};

// ================================================================ tests

describe('infra/k8s source files', () => {
  it('are all parsed, and referenced by a kustomization (no file left behind)', () => {
    const referenced = new Set<string>(kustomizationFiles);
    for (const file of kustomizationFiles) {
      const refs = references(file);
      for (const path of [...refs.resources, ...refs.components]) {
        const target = statSync(path, { throwIfNoEntry: false });
        expect(
          target,
          `${relative(REPO, file)} refers to ${relative(REPO, path)}, which is missing`,
        ).toBeDefined();
        if (target?.isFile()) referenced.add(path);
      }
      for (const path of [...refs.patches, ...refs.generated]) {
        expect(statSync(path, { throwIfNoEntry: false }), `${relative(REPO, path)} is missing`).toBeDefined();
        referenced.add(path);
      }
    }
    for (const file of sourceFiles) {
      if (/\.ya?ml$/.test(file)) expect(() => parseYaml(readFileSync(file, 'utf8'), file)).not.toThrow();
    }
    expect(sourceFiles.filter((f) => !referenced.has(f)).map((f) => relative(REPO, f))).toEqual([]);
  });

  it('declare what they are: kustomizations and components', () => {
    for (const file of kustomizationFiles) {
      const k = readKustomization(file);
      const isComponent = file.includes('/components/');
      expect([k.apiVersion, k.kind], relative(REPO, file)).toEqual(
        isComponent
          ? ['kustomize.config.k8s.io/v1alpha1', 'Component']
          : ['kustomize.config.k8s.io/v1beta1', 'Kustomization'],
      );
    }
  });

  it('hold objects that validate against the Kubernetes schema; patches have no unknown field', async () => {
    const problems: string[] = [];
    let objects = 0;
    for (const file of kustomizationFiles) {
      const refs = references(file);
      const files = [
        ...refs.resources.filter((p) => statSync(p).isFile()).map((p) => ({ path: p, partial: false })),
        ...refs.patches.map((p) => ({ path: p, partial: true })),
      ];
      for (const { path, partial } of files) {
        for (const object of parseYaml(readFileSync(path, 'utf8'), path)) {
          objects++;
          const where = relative(REPO, path);
          if (!object.metadata?.name) problems.push(`${where}: an object without metadata.name`);
          for (const p of await schemaProblems(object, { partial })) problems.push(`${where}: ${p}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(objects).toBeGreaterThan(15);
  });

  it("keep Redis' settings in step with infra/redis.conf", () => {
    const compose = redisDirectives(readFileSync(join(REPO, 'infra/redis.conf'), 'utf8'));
    const k8s = redisDirectives(readFileSync(join(K8S, 'components/redis/redis.conf'), 'utf8'));
    expect(compose.get('appendonly')).toBe('yes');
    expect(compose.get('appendfsync')).toBe('always');
    for (const [name, value] of compose) expect(k8s.get(name), `redis.conf: ${name}`).toBe(value);
  });
});

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error === undefined;
if (!promtool && !process.env.CI) {
  process.stderr.write(
    "test/infra/kubernetes.test.ts: docs/kubernetes.md's scrape job is not checked: promtool is not installed " +
      '(Debian: apt-get install prometheus); under CI this fails instead.\n',
  );
}

describe.skipIf(skipRendering)('kustomize output', () => {
  if (typeof renderer !== 'string') process.stderr.write(`rendering with ${renderer.describe}\n`);

  describe.each(TARGETS)('%s', (target) => {
    it('validates against the Kubernetes schema, every object of a known kind, no unknown field', async () => {
      const objects = render(target);
      const problems = (await Promise.all(objects.map((o) => schemaProblems(o)))).flat();
      expect(problems).toEqual([]);
      const names = objects.map((o) => `${o.metadata.namespace ?? ''}/${id(o)}`);
      expect(
        names.filter((n, i) => names.indexOf(n) !== i),
        'names used twice',
      ).toEqual([]);
    });

    it(`puts every namespaced object in the namespace ${NAMESPACE} (overlays)`, () => {
      if (target === 'base') return;
      const objects = render(target);
      expect(named(objects, 'Namespace', NAMESPACE)).toBeDefined();
      for (const o of objects.filter((o) => o.kind !== 'Namespace')) {
        expect(o.metadata.namespace, id(o)).toBe(NAMESPACE);
      }
    });

    it('runs every container with probes on its ports, requests and limits, not as root, read-only', () => {
      const objects = render(target);
      const claims = new Set(ofKind(objects, 'PersistentVolumeClaim').map((o) => o.metadata.name));
      expect(workloads(objects).length).toBeGreaterThanOrEqual(4);
      for (const workload of workloads(objects)) {
        const t = template(workload);
        const pod = t.spec;
        const where = id(workload);
        expect(matches(workload.spec?.selector.matchLabels, t.metadata?.labels), `${where}: selector`).toBe(
          true,
        );
        expect(t.metadata?.labels?.['app.kubernetes.io/part-of'], `${where}: part-of label`).toBe(
          'streamgauge',
        );
        const claimTemplates = new Set(
          ((workload as IStatefulSet).spec?.volumeClaimTemplates ?? []).map((c) => c.metadata?.name),
        );
        const volumes = new Map((pod?.volumes ?? []).map((v: IVolume) => [v.name, v]));
        for (const volume of volumes.values()) {
          const sources = Object.keys(volume).filter((k) => k !== 'name');
          expect(sources, `${where}: volume ${volume.name} has one source`).toHaveLength(1);
          if (volume.persistentVolumeClaim) {
            expect(claims.has(volume.persistentVolumeClaim.claimName), `${where}: claim`).toBe(true);
          }
        }
        if (pod?.serviceAccountName)
          named<IServiceAccount>(objects, 'ServiceAccount', pod.serviceAccountName);
        for (const container of pod?.containers ?? []) {
          const at = `${where} container ${container.name}`;
          for (const probe of ['livenessProbe', 'readinessProbe'] as const) {
            const p = container[probe];
            expect(p, `${at}: ${probe}`).toBeDefined();
            if (p) expect(probePortOk(container, p), `${at}: ${probe}`).toBeUndefined();
          }
          const { requests, limits } = container.resources ?? {};
          for (const resource of ['cpu', 'memory']) {
            const request = quantity(requests?.[resource]);
            const limit = quantity(limits?.[resource]);
            expect(request, `${at}: ${resource} request`).toBeGreaterThan(0);
            expect(limit, `${at}: ${resource} limit`).toBeGreaterThanOrEqual(request);
          }
          const security = container.securityContext;
          expect(security?.runAsNonRoot ?? pod?.securityContext?.runAsNonRoot, `${at}: runAsNonRoot`).toBe(
            true,
          );
          expect(security?.runAsUser ?? pod?.securityContext?.runAsUser, `${at}: runAsUser`).toBeGreaterThan(
            0,
          );
          expect(security?.allowPrivilegeEscalation, `${at}: allowPrivilegeEscalation`).toBe(false);
          expect(security?.readOnlyRootFilesystem, `${at}: readOnlyRootFilesystem`).toBe(true);
          expect(security?.capabilities?.drop, `${at}: capabilities`).toEqual(['ALL']);
          for (const mount of container.volumeMounts ?? []) {
            expect(
              volumes.has(mount.name) || claimTemplates.has(mount.name),
              `${at}: mount ${mount.name}`,
            ).toBe(true);
          }
          if (command(container) === undefined) {
            expect(container.image, `${at}: a tagged image`).toMatch(/^[^:]+:[\w.-]+$/);
          } else {
            // The base names the image; each overlay's images entry sets registry and tag.
            expect(container.image, `${at}: image`).toBe(target === 'base' ? 'streamgauge' : IMAGE);
            const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
            expect(tmp && volumes.get(tmp.name)?.emptyDir, `${at}: a writable /tmp`).toBeDefined();
          }
        }
      }
    });

    it('resolves every Secret and ConfigMap reference, and the services accept their environment', () => {
      const objects = render(target);
      const containers = streamgaugeContainers(objects);
      for (const workload of workloads(objects)) {
        for (const container of containersOf(workload)) effectiveEnv(objects, workload, container);
        for (const volume of template(workload).spec?.volumes ?? []) {
          if (volume.configMap) named(objects, 'ConfigMap', volume.configMap.name ?? '');
          if (volume.secret) named(objects, 'Secret', volume.secret.secretName ?? '');
        }
      }
      const commands = containers.map((c) => c.command).sort();
      const expected = ['aggregate', 'archive', 'dashboard', 'ingest'];
      expect(commands).toEqual(target === 'overlays/gke' ? [...expected, 'backfill'].sort() : expected);
    });

    it('serves each service on the port its probes, Service and scrape annotation use', () => {
      const objects = render(target);
      for (const { workload, container, command: cmd, config } of streamgaugeContainers(objects)) {
        const expected = SERVICE_PORTS[cmd];
        expect(expected, `${id(workload)}: a known command`).toBeDefined();
        if (!expected) continue;
        const port = containerPort(container, expected.portName);
        expect(expected.port(config), `${id(workload)}: the port the service listens on`).toBe(port);
        expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
        expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
        const annotations = template(workload).metadata?.annotations ?? {};
        if (annotations['prometheus.io/scrape'] === 'true') {
          expect(annotations['prometheus.io/port']).toBe(String(port));
          expect(annotations['prometheus.io/path']).toBe('/metrics');
        }
      }
    });

    it('uses one STREAM_SHARDS everywhere; the aggregator has replicas over the shards and a PDB', () => {
      const objects = render(target);
      const containers = streamgaugeContainers(objects);
      const shards = new Set(containers.map((c) => c.env.STREAM_SHARDS));
      expect([...shards]).toHaveLength(1);
      const shardCount = containers[0]?.config.stream.shards ?? 0;
      expect(shardCount).toBeGreaterThanOrEqual(2);

      const aggregator = containers.find((c) => c.command === 'aggregate');
      if (!aggregator) throw new Error('no aggregator');
      const replicas = aggregator.workload.spec?.replicas ?? 1;
      expect(replicas).toBeGreaterThanOrEqual(2);
      expect(replicas).toBeLessThanOrEqual(shardCount);
      for (const [cmd, variable] of [
        ['aggregate', 'AGGREGATOR_CONSUMER'],
        ['archive', 'ARCHIVER_CONSUMER'],
      ] as const) {
        const c = containers.find((x) => x.command === cmd);
        const source = c?.container.env?.find((e) => e.name === variable)?.valueFrom?.fieldRef?.fieldPath;
        expect(source, `${cmd}: ${variable} is the pod's name`).toBe('metadata.name');
      }
      const pdbs = ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget').filter((p) =>
        matches(p.spec?.selector?.matchLabels, template(aggregator.workload).metadata?.labels),
      );
      expect(pdbs).toHaveLength(1);
      const minAvailable = pdbs[0]?.spec?.minAvailable;
      expect(typeof minAvailable === 'number' && minAvailable >= 1 && minAvailable < replicas).toBe(true);
      for (const pdb of ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget')) {
        const selected = workloads(objects).filter((w) =>
          matches(pdb.spec?.selector?.matchLabels, template(w).metadata?.labels),
        );
        expect(selected, `${id(pdb)} selects a workload`).toHaveLength(1);
      }
    });

    it('scales ingest on CPU with an HPA that owns its replica count', () => {
      const objects = render(target);
      const hpas = ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');
      expect(hpas).toHaveLength(1);
      const hpa = hpas[0] as IHorizontalPodAutoscaler & K8sObject;
      const ref = hpa.spec?.scaleTargetRef;
      expect(ref?.kind).toBe('Deployment');
      const ingest = named<IDeployment>(objects, 'Deployment', ref?.name ?? '');
      expect(containersOf(ingest).map(command)).toEqual(['ingest']);
      expect(ingest.spec?.replicas, 'no fixed replica count beside the HPA').toBeUndefined();
      expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
      expect(hpa.spec?.maxReplicas).toBeGreaterThan(hpa.spec?.minReplicas ?? 0);
      const cpu = hpa.spec?.metrics?.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu');
      expect(cpu?.resource?.target.type).toBe('Utilization');
      expect(cpu?.resource?.target.averageUtilization).toBeGreaterThan(0);
    });

    it('has Services whose selectors match pods and whose ports those pods declare', () => {
      const objects = render(target);
      for (const service of ofKind<IService>(objects, 'Service')) {
        const pods = workloads(objects).filter((w) =>
          matches(service.spec?.selector, template(w).metadata?.labels),
        );
        expect(pods.length, `${id(service)} selects pods`).toBeGreaterThan(0);
        for (const port of service.spec?.ports ?? []) {
          for (const pod of pods) {
            const target = port.targetPort ?? port.port;
            const declared = containersOf(pod).flatMap((c) => c.ports ?? []);
            const found = declared.some((p) =>
              typeof target === 'number' ? p.containerPort === target : p.name === target,
            );
            expect(found, `${id(service)} port ${port.name}: ${id(pod)} declares ${target}`).toBe(true);
          }
        }
      }
      expect(ofKind(objects, 'Service').map((s) => s.metadata.name)).toEqual(
        expect.arrayContaining(['ingest', 'dashboard']),
      );
    });

    it('sizes the services for 10,000 nodes from the measured figures (docs/kubernetes.md)', () => {
      const objects = render(target);
      const containers = streamgaugeContainers(objects);
      const memory = (cmd: string, which: 'requests' | 'limits') =>
        quantity(containers.find((c) => c.command === cmd)?.container.resources?.[which]?.memory);
      const NODES = 10_000;
      // docs/scale-out.md: 61-64 KB of live state a node, resident about twice that;
      // docs/benchmarks.md: an idle aggregator process 184 MB.
      const aggregatorAll = 184e6 + NODES * 2 * 64e3;
      expect(memory('aggregate', 'limits')).toBeGreaterThanOrEqual(aggregatorAll);
      const replicas = containers.find((c) => c.command === 'aggregate')?.workload.spec?.replicas ?? 1;
      expect(memory('aggregate', 'requests')).toBeGreaterThanOrEqual(184e6 + (NODES / replicas) * 2 * 64e3);
      // docs/warehouse.md: a backfill run holds ~190 KB a node while it builds the offer; every
      // process with a backfill scheduler (`backfill`, or `archive` without --no-backfill) may hold the run.
      const schedulers = containers.filter(
        (c) =>
          c.command === 'backfill' ||
          (c.command === 'archive' && !(c.container.args ?? []).includes('--no-backfill')),
      );
      expect(schedulers.length).toBeGreaterThanOrEqual(1);
      for (const { container } of schedulers) {
        expect(quantity(container.resources?.limits?.memory), container.name).toBeGreaterThanOrEqual(
          200e6 + NODES * 190e3,
        );
      }
      // docs/dashboard.md: 419 MiB resident at 10,000 nodes under load.
      expect(memory('dashboard', 'limits')).toBeGreaterThanOrEqual(419 * 2 ** 20);
    });
  });

  describe('overlays/standalone', () => {
    const target = 'overlays/standalone';

    it('runs Redis as a StatefulSet with its append-only file fsynced always, on a volume, with a password', () => {
      const objects = render(target);
      const redis = named<IStatefulSet>(objects, 'StatefulSet', 'redis');
      expect(redis.spec?.replicas).toBe(1);
      const container = containersOf(redis)[0];
      if (!container) throw new Error('no redis container');
      expect(container.image).toMatch(/^redis:7\./);
      const data = container.volumeMounts?.find((m) => m.mountPath === '/data');
      expect(redis.spec?.volumeClaimTemplates?.map((c) => c.metadata?.name)).toContain(data?.name);

      const configVolume = template(redis).spec?.volumes?.find((v) =>
        container.volumeMounts?.some((m) => m.name === v.name && m.mountPath === '/etc/redis'),
      );
      const conf = named<IConfigMap>(objects, 'ConfigMap', configVolume?.configMap?.name ?? '');
      const directives = redisDirectives(conf.data?.['redis.conf'] ?? '');
      expect(directives.get('appendonly')).toBe('yes');
      expect(directives.get('appendfsync')).toBe('always');
      expect(directives.get('maxmemory-policy')).toBe('noeviction');
      expect(directives.get('dir')).toBe('/data');
      const maxmemory = redisBytes(directives.get('maxmemory') ?? '');
      // docs/kubernetes.md: 7.7 GB at 10,000 nodes reading once a minute.
      expect(maxmemory).toBeGreaterThanOrEqual(7.7e9);
      expect(maxmemory).toBeLessThan(quantity(container.resources?.limits?.memory) * 0.8);

      const script = container.command?.join(' ') ?? '';
      expect(script).toContain('redis-server /etc/redis/redis.conf --requirepass "$REDIS_PASSWORD"');
      const env = effectiveEnv(objects, redis, container);
      const secrets = ofKind<ISecret>(objects, 'Secret');
      expect(secrets).toHaveLength(1);
      const url = new URL(secretValue(secrets[0] as ISecret, 'REDIS_URL') ?? '');
      expect(decodeURIComponent(url.password), 'REDIS_URL carries the Redis password').toBe(
        env.REDIS_PASSWORD,
      );
      expect(script, 'the placeholder password is refused').toContain(`= ${env.REDIS_PASSWORD} ]`);

      const headless = named<IService>(objects, 'Service', redis.spec?.serviceName ?? '');
      expect(headless.spec?.clusterIP).toBe('None');
      expect(url.hostname).toBe(headless.metadata.name);
      expect(Number(url.port)).toBe(headless.spec?.ports?.[0]?.port);
      expect(matches(headless.spec?.selector, template(redis).metadata?.labels)).toBe(true);
    });

    it("starts Redis only with a password of the operator's, passing it to redis-server", () => {
      const redis = named<IStatefulSet>(render(target), 'StatefulSet', 'redis');
      const [shell, flag, script] = containersOf(redis)[0]?.command ?? [];
      expect([shell, flag]).toEqual(['sh', '-c']);
      const bin = mkdtempSync(join(tmpdir(), 'k8s-redis-bin-'));
      try {
        // A stand-in redis-server that prints what it was started with.
        writeFileSync(join(bin, 'redis-server'), '#!/bin/sh\necho "$@"\n');
        chmodSync(join(bin, 'redis-server'), 0o755);
        const run = (password: string) =>
          spawnSync('sh', ['-c', script ?? ''], {
            encoding: 'utf8',
            env: { PATH: `${bin}:/usr/bin:/bin`, REDIS_PASSWORD: password },
          });
        const placeholder = run('REPLACE_ME');
        expect(placeholder.status).toBe(1);
        expect(placeholder.stderr).toContain('placeholder');
        const own = run('s3cret with spaces');
        expect(own.status).toBe(0);
        expect(own.stdout.trim()).toBe('/etc/redis/redis.conf --requirepass s3cret with spaces');
      } finally {
        rmSync(bin, { recursive: true, force: true });
      }
    });

    it.runIf(redisServerOnPath())(
      'has a redis.conf and a readiness probe that Redis 7 takes (redis-server on PATH)',
      async () => {
        const objects = render(target);
        const redis = named<IStatefulSet>(objects, 'StatefulSet', 'redis');
        const container = containersOf(redis)[0] as IContainer;
        const configName = template(redis).spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name;
        const conf = named<IConfigMap>(objects, 'ConfigMap', configName ?? '').data?.['redis.conf'] ?? '';
        const probe = container.readinessProbe?.exec?.command ?? [];
        const dir = mkdtempSync(join(tmpdir(), 'k8s-redis-'));
        const port = await freePort();
        // The rendered file; only where Redis keeps its files (`dir`, which Redis
        // enters as it reads the line) and where it listens differ here.
        expect(conf).toMatch(/^dir \/data$/m);
        writeFileSync(join(dir, 'redis.conf'), conf.replace(/^dir \/data$/m, `dir ${dir}`));
        const server = spawn(
          'redis-server',
          [join(dir, 'redis.conf'), '--bind', '127.0.0.1', '--port', String(port)].concat([
            '--requirepass',
            'pw',
          ]),
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let output = '';
        server.stdout.on('data', (chunk) => {
          output += chunk;
        });
        server.stderr.on('data', (chunk) => {
          output += chunk;
        });
        const ready = (auth: string) =>
          spawnSync(
            probe[0] ?? 'sh',
            [...probe.slice(1, -1), (probe.at(-1) ?? '').replace('6379', String(port))],
            {
              env: { PATH: process.env.PATH, REDISCLI_AUTH: auth },
            },
          ).status === 0;
        try {
          const deadline = Date.now() + 10_000;
          while (!ready('pw')) {
            if (server.exitCode !== null || Date.now() > deadline) {
              throw new Error(`redis-server did not become ready with the rendered redis.conf:\n${output}`);
            }
            await new Promise((r) => setTimeout(r, 100));
          }
          expect(ready('wrong'), 'the probe fails without the password').toBe(false);
          const get = (name: string) =>
            execFileSync('redis-cli', ['-p', String(port), 'config', 'get', name], {
              encoding: 'utf8',
              env: { ...process.env, REDISCLI_AUTH: 'pw' },
            })
              .trim()
              .split('\n')[1];
          expect(get('appendonly')).toBe('yes');
          expect(get('appendfsync')).toBe('always');
          expect(get('maxmemory-policy')).toBe('noeviction');
          expect(Number(get('maxmemory'))).toBe(redisBytes('9gb'));
        } finally {
          server.kill('SIGKILL');
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );

    it('takes the Secret from an overlay of the operator as docs/kubernetes.md shows', () => {
      const site = mkdtempSync(join(tmpdir(), 'k8s-site-'));
      try {
        const password = 'a1b2c3d4e5f6';
        writeFileSync(
          join(site, 'secrets.env'),
          `REDIS_PASSWORD=${password}\nREDIS_URL=redis://:${password}@redis:6379/0\n`,
        );
        writeFileSync(
          join(site, 'kustomization.yaml'),
          [
            'apiVersion: kustomize.config.k8s.io/v1beta1',
            'kind: Kustomization',
            'resources:',
            `  - ${relative(site, join(K8S, target))}`,
            'secretGenerator:',
            '  - name: streamgauge-secrets',
            '    namespace: streamgauge',
            '    behavior: replace',
            '    envs: [secrets.env]',
            'images:',
            '  - name: ghcr.io/example/streamgauge',
            '    newName: registry.example.org/streamgauge',
            '    newTag: 1.2.3',
            '',
          ].join('\n'),
        );
        const objects = renderDir(site);
        const secrets = ofKind<ISecret>(objects, 'Secret');
        expect(secrets).toHaveLength(1);
        const secret = secrets[0] as ISecret & K8sObject;
        expect(secretValue(secret, 'REDIS_PASSWORD')).toBe(password);
        for (const w of workloads(objects)) {
          for (const c of containersOf(w)) {
            for (const e of c.env ?? []) {
              const ref = e.valueFrom?.secretKeyRef;
              if (ref) expect(ref.name, `${id(w)}: ${e.name}`).toBe(secret.metadata.name);
            }
            if (command(c) !== undefined) expect(c.image).toBe('registry.example.org/streamgauge:1.2.3');
          }
        }
        for (const c of streamgaugeContainers(objects)) {
          expect(new URL(c.env.REDIS_URL ?? '').password).toBe(password);
        }
      } finally {
        rmSync(site, { recursive: true, force: true });
      }
    });

    it.skipIf(!promtool && !process.env.CI)(
      "gives each pod the job name the alerts use, with docs/kubernetes.md's scrape job (promtool)",
      () => {
        const objects = render(target);
        const docs = readFileSync(join(REPO, 'docs/kubernetes.md'), 'utf8');
        const block = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)]
          .map((m) => m[1] ?? '')
          .find((b) => b.includes('kubernetes_sd_configs'));
        if (block === undefined)
          throw new Error('no scrape job with kubernetes_sd_configs in docs/kubernetes.md');
        const config = parseYaml(block, 'docs/kubernetes.md')[0] as unknown as {
          scrape_configs: { job_name: string; kubernetes_sd_configs?: unknown; static_configs?: unknown }[];
        };
        const job = config.scrape_configs[0];
        if (!job) throw new Error('no scrape job');
        // What Kubernetes service discovery would find (role: pod, one target
        // per container port), as static targets: Debian's promtool has no
        // Kubernetes discovery, but it does apply the relabelling.
        const meta = (prefix: string, map: Record<string, string> | undefined) =>
          Object.fromEntries(
            Object.entries(map ?? {}).map(([k, v]) => [`${prefix}${k.replace(/[^a-zA-Z0-9_]/g, '_')}`, v]),
          );
        const pods = workloads(objects);
        delete job.kubernetes_sd_configs;
        job.static_configs = pods.flatMap((w, i) =>
          containersOf(w).flatMap((c) =>
            (c.ports ?? []).map((port) => ({
              targets: [`10.0.0.${i + 1}:${port.containerPort}`],
              labels: {
                ...meta('__meta_kubernetes_pod_annotation_', template(w).metadata?.annotations),
                ...meta('__meta_kubernetes_pod_label_', template(w).metadata?.labels),
                __meta_kubernetes_pod_name: podName(w),
              },
            })),
          ),
        );
        const dir = mkdtempSync(join(tmpdir(), 'k8s-prometheus-'));
        try {
          const file = join(dir, 'prometheus.yml');
          writeFileSync(file, JSON.stringify(config));
          const run = (args: string[]) => {
            const result = spawnSync('promtool', args, { encoding: 'utf8' });
            expect(result.error, 'promtool (Debian: apt-get install prometheus)').toBeUndefined();
            expect(result.status, `promtool ${args[1]}: ${result.stdout}${result.stderr}`).toBe(0);
            return result.stdout;
          };
          run(['check', 'config', file]);
          const out = run(['check', 'service-discovery', '--timeout=2s', file, job.job_name]);
          const targets = JSON.parse(out.slice(out.indexOf('['))) as { labels: Record<string, string> }[];
          const scraped = targets.filter((t) => Object.keys(t.labels).length > 0).map((t) => t.labels);
          const byJob = (a: { job?: string }, b: { job?: string }) =>
            String(a.job).localeCompare(String(b.job));
          const expected = pods
            .filter((w) => template(w).metadata?.annotations?.['prometheus.io/scrape'] === 'true')
            .map((w) => ({
              job: `streamgauge-${template(w).metadata?.labels?.['app.kubernetes.io/component']}`,
              instance: podName(w),
              address: `10.0.0.${pods.indexOf(w) + 1}:${template(w).metadata?.annotations?.['prometheus.io/port']}`,
            }));
          const found = scraped.map((l) => ({ job: l.job, instance: l.instance, address: l.__address__ }));
          expect(found.sort(byJob)).toEqual(expected.sort(byJob));
          // The names infra/prometheus/alerts.yml selects on.
          const alerts = readFileSync(join(REPO, 'infra/prometheus/alerts.yml'), 'utf8');
          expect(alerts).toContain('job="streamgauge-ingest"');
          expect(scraped.map((l) => l.job).sort()).toEqual([
            'streamgauge-aggregator',
            'streamgauge-archiver',
            'streamgauge-ingest',
          ]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );

    it('lets only streamgauge pods reach Redis', () => {
      const objects = render(target);
      const redis = named<IStatefulSet>(objects, 'StatefulSet', 'redis');
      const policy = named<INetworkPolicy>(objects, 'NetworkPolicy', 'redis');
      expect(matches(policy.spec?.podSelector?.matchLabels, template(redis).metadata?.labels)).toBe(true);
      const from = policy.spec?.ingress?.[0]?.from?.[0]?.podSelector?.matchLabels;
      for (const w of workloads(objects))
        expect(matches(from, template(w).metadata?.labels), id(w)).toBe(true);
      expect(policy.spec?.ingress?.[0]?.ports?.[0]?.port).toBe('redis');
    });

    it('keeps the DuckDB warehouse on a volume, one archiver at a time', () => {
      const objects = render(target);
      const archiver = streamgaugeContainers(objects).find((c) => c.command === 'archive');
      if (!archiver) throw new Error('no archiver');
      const deployment = archiver.workload as IDeployment;
      expect(deployment.spec?.replicas).toBe(1);
      expect(deployment.spec?.strategy?.type).toBe('Recreate');
      expect(archiver.config.bigquery).toBeUndefined();
      const mount = archiver.container.volumeMounts?.find((m) => m.mountPath === archiver.config.dataDir);
      const volume = template(archiver.workload).spec?.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.persistentVolumeClaim?.claimName).toBe('warehouse');
      expect(template(archiver.workload).spec?.securityContext?.fsGroup).toBe(1000);
    });
  });

  describe('overlays/gke', () => {
    const target = 'overlays/gke';

    it('writes BigQuery, pulls from Pub/Sub, and has no Redis nor DuckDB volume of its own', () => {
      const objects = render(target);
      expect(ofKind(objects, 'StatefulSet')).toEqual([]);
      expect(ofKind(objects, 'PersistentVolumeClaim')).toEqual([]);
      const containers = streamgaugeContainers(objects);
      for (const cmd of ['archive', 'backfill']) {
        const c = containers.find((x) => x.command === cmd);
        expect(c?.config.bigquery, `${cmd}: BIGQUERY_PROJECT selects BigQuery`).toMatchObject({
          dataset: expect.any(String),
          table: expect.any(String),
        });
      }
      const ingest = containers.find((c) => c.command === 'ingest');
      expect(ingest?.config.ingest.pubsub?.subscription).toBeTruthy();
      expect(ingest?.config.ingest.pubsub?.deadLetterTopic).toBeTruthy();
      expect(ingest?.env.GOOGLE_CLOUD_PROJECT).toBe(ingest?.config.bigquery?.project);
      const redisHost = new URL(ingest?.env.REDIS_URL ?? '').hostname;
      expect(ofKind(objects, 'Service').map((s) => s.metadata.name)).not.toContain(redisHost);

      const backfill = containers.find((c) => c.command === 'backfill');
      expect(backfill?.workload.spec?.replicas).toBe(1);
      const archiver = containers.find((c) => c.command === 'archive');
      const data = template(archiver?.workload as Workload).spec?.volumes?.find((v) => v.name === 'data');
      expect(data?.emptyDir).toBeDefined();
    });

    it('binds every pod to the Workload Identity service account of the same project', () => {
      const objects = render(target);
      const account = named<IServiceAccount>(objects, 'ServiceAccount', 'streamgauge');
      const project = streamgaugeContainers(objects)[0]?.config.bigquery?.project;
      expect(account.metadata.annotations?.['iam.gke.io/gcp-service-account']).toMatch(
        new RegExp(`^[a-z][a-z0-9-]+@${project}\\.iam\\.gserviceaccount\\.com$`),
      );
      for (const w of workloads(objects))
        expect(template(w).spec?.serviceAccountName, id(w)).toBe('streamgauge');
    });
  });
});
