#!/usr/bin/env node
// The `streamgauge` command. Plain JavaScript, so that an older Node can read
// it and say what is wrong: the CLI runs its TypeScript sources directly,
// which needs Node 24 (type stripping).
const MINIMUM = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < MINIMUM) {
  process.stderr.write(
    `streamgauge needs Node.js ${MINIMUM} or newer; this is Node.js ${process.version} (${process.execPath}).\n` +
      `From the repository, ./dev start fetches Node ${MINIMUM} and pnpm into .tools and runs it;\n` +
      `or put a Node ${MINIMUM} first on PATH (the registry's node@${MINIMUM}: npm i --prefix .tools node@${MINIMUM} pnpm@10).\n`,
  );
  process.exit(1);
}
await import('../src/main.ts');
