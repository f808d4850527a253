#!/usr/bin/env node
// The runtime closure of the `streamgauge` command: the workspace packages it
// depends on (their sources, no tests) and their production dependencies,
// installed from the lockfile into OUT. The Dockerfile copies exactly this
// directory; CI builds the same closure without Docker and runs the CLI from
// it (test/infra/image.test.ts).
//
// Why not `pnpm deploy`: it copies workspace packages into node_modules, and
// Node refuses to strip types from files under node_modules
// (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING). Here they stay workspace
// packages, linked from node_modules, so their .ts sources run as they do in
// the repository.
//
//   node infra/image/build-runtime.mjs OUT
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const ENTRY = '@streamgauge/cli';
/** What a package holds that is not needed to run it. */
const LEFT_OUT = new Set(['test', 'build', 'node_modules', 'tsconfig.json', 'tsconfig.tsbuildinfo']);

const out = process.argv[2];
if (!out) {
  console.error('usage: node infra/image/build-runtime.mjs OUT');
  process.exit(2);
}
const target = resolve(out);

/** Every workspace package: name → { dir, manifest }. */
function workspacePackages() {
  const packages = new Map();
  for (const parent of ['packages', 'services']) {
    for (const name of readdirSync(join(ROOT, parent))) {
      const file = join(ROOT, parent, name, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, 'utf8'));
      packages.set(manifest.name, { dir: `${parent}/${name}`, manifest });
    }
  }
  return packages;
}

/** The workspace packages `entry` needs at run time (production dependencies only). */
function closure(packages, entry) {
  const needed = new Set();
  const visit = (name) => {
    if (needed.has(name)) return;
    const found = packages.get(name);
    if (!found) throw new Error(`${name}: not a workspace package`);
    needed.add(name);
    for (const [dependency, range] of Object.entries(found.manifest.dependencies ?? {})) {
      if (String(range).startsWith('workspace:')) visit(dependency);
    }
  };
  visit(entry);
  return [...needed].map((name) => packages.get(name));
}

const packages = closure(workspacePackages(), ENTRY);
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });

const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
writeFileSync(
  join(target, 'package.json'),
  `${JSON.stringify(
    {
      name: root.name,
      private: true,
      type: root.type,
      packageManager: root.packageManager,
      engines: root.engines,
      // Not installed (--prod), but the lockfile is checked against them.
      devDependencies: root.devDependencies,
    },
    null,
    2,
  )}\n`,
);
cpSync(join(ROOT, 'pnpm-lock.yaml'), join(target, 'pnpm-lock.yaml'));
writeFileSync(
  join(target, 'pnpm-workspace.yaml'),
  readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8').replace(/^packages:\n(?:\s+- .*\n)+/m, () =>
    ['packages:', ...packages.map((p) => `  - ${p.dir}`), ''].join('\n'),
  ),
);
for (const { dir } of packages) {
  cpSync(join(ROOT, dir), join(target, dir), {
    recursive: true,
    filter: (source) => {
      const relative = source.slice(join(ROOT, dir).length + 1);
      const first = relative.split('/')[0];
      return !LEFT_OUT.has(first) && !relative.endsWith('.test.ts');
    },
  });
}

// Production dependencies of the closure only, exactly as locked.
execFileSync(
  'pnpm',
  [
    'install',
    '--prod',
    '--frozen-lockfile',
    '--prefer-offline',
    '--reporter=silent',
    '--filter',
    `${ENTRY}...`,
  ],
  { cwd: target, stdio: 'inherit', env: { ...process.env, CI: 'true' } },
);
console.log(`runtime closure of ${ENTRY} in ${target}: ${packages.map((p) => p.dir).join(', ')}`);
