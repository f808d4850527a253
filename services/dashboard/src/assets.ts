import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { build } from 'esbuild';

export interface Asset {
  readonly body: Buffer;
  readonly gzip: Buffer;
  readonly brotli: Buffer;
  readonly type: string;
  readonly etag: string;
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

const webDir = fileURLToPath(new URL('../web/', import.meta.url));
const packageDir = fileURLToPath(new URL('../', import.meta.url));

async function asset(body: Buffer, type: string): Promise<Asset> {
  const [gz, br] = await Promise.all([
    gzipAsync(body, { level: 9 }),
    brotliAsync(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    }),
  ]);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, gzip: gz, brotli: br, type, etag };
}

/**
 * The page's files by URL path ('/', '/assets/app.js', '/assets/app.css'),
 * built with esbuild from web/ (bundled, minified) and compressed once.
 * Built at startup rather than shipped prebuilt: the package runs from
 * source, and a build of this size takes well under a second.
 */
export async function buildAssets(): Promise<Map<string, Asset>> {
  const result = await build({
    absWorkingDir: packageDir,
    entryPoints: { app: `${webDir}main.ts` },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    write: false,
    outdir: `${packageDir}build/assets`,
    sourcemap: false,
    loader: { '.css': 'css' },
    charset: 'utf8',
    logLevel: 'silent',
  });
  let js: Buffer | undefined;
  let css: Buffer | undefined;
  for (const file of result.outputFiles) {
    if (file.path.endsWith('.js')) js = Buffer.from(file.contents);
    else if (file.path.endsWith('.css')) css = Buffer.from(file.contents);
  }
  if (js === undefined || css === undefined) {
    throw new Error(`dashboard assets: esbuild produced ${result.outputFiles.map((f) => f.path).join(', ')}`);
  }
  const html = await readFile(`${webDir}index.html`);
  const [page, script, styles] = await Promise.all([
    asset(html, 'text/html; charset=utf-8'),
    asset(js, 'text/javascript; charset=utf-8'),
    asset(css, 'text/css; charset=utf-8'),
  ]);
  return new Map([
    ['/', page],
    ['/assets/app.js', script],
    ['/assets/app.css', styles],
  ]);
}
