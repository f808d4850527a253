import { closeSync, createReadStream, openSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { createInterface } from 'node:readline';
import { HeaderError, type ImportFormat, importReadings, openWarehouse } from '@streamgauge/warehouse';
import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { progressBar } from '../progress.ts';

interface ImportCommandOptions {
  format?: string;
  json?: boolean;
}

export function importCommand(program: Command): void {
  program
    .command('import')
    .description(
      'load historical readings (CSV with DATA_MODEL columns, or NDJSON) straight into the warehouse',
    )
    .argument('<file>', 'a .csv file (header row first) or a .ndjson/.jsonl file (one reading per line)')
    .option('--format <format>', 'csv or ndjson (default: from the file extension)')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, options: ImportCommandOptions) => {
      const config = configFromEnv();
      const format = formatOf(file, options.format);
      let size: number;
      try {
        // Opened first, so a missing, unreadable or directory path is a clear error, not a stack trace.
        closeSync(openSync(file, 'r'));
        const stat = statSync(file);
        if (!stat.isFile()) throw new Error('not a file');
        size = stat.size;
      } catch (error) {
        throw new CommandError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
      }
      const warehouse = await openWarehouse(config).catch((error: Error) => {
        throw new CommandError(
          EXIT.failure,
          /lock/i.test(error.message)
            ? `${error.message}; stop \`streamgauge start\` or \`archive\` first`
            : error.message,
        );
      });
      const input = createReadStream(file);
      const bar = progressBar(process.stderr, 'import', size);
      try {
        const summary = await importReadings(
          createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }),
          warehouse,
          {
            format,
            source: basename(file),
            nowMs: Date.now(),
            maxFutureMs: config.ingest.maxFutureMs,
            onProgress: (s) =>
              bar.update(
                input.bytesRead,
                `${s.imported} imported, ${s.duplicates} duplicates, ${s.rejected} rejected`,
              ),
          },
        );
        bar.done(size);
        if (options.json) {
          console.log(JSON.stringify(summary));
          return;
        }
        console.log(
          `imported ${summary.imported}, duplicates ${summary.duplicates} (already in the warehouse or repeated in the file), rejected ${summary.rejected}, from ${summary.lines} lines of ${file}`,
        );
        for (const { reason, count } of summary.reasons) console.log(`  rejected ${count} × ${reason}`);
        for (const { line, error } of summary.examples) console.log(`  line ${line}: ${error}`);
      } catch (error) {
        bar.done(input.bytesRead);
        if (error instanceof HeaderError) throw new CommandError(EXIT.usage, `${file}: ${error.message}`);
        throw error;
      } finally {
        await warehouse.close();
      }
    });
}

function formatOf(file: string, given: string | undefined): ImportFormat {
  const format =
    given ?? { '.csv': 'csv', '.ndjson': 'ndjson', '.jsonl': 'ndjson' }[extname(file).toLowerCase()];
  if (format !== 'csv' && format !== 'ndjson') {
    throw new CommandError(
      EXIT.usage,
      given === undefined
        ? `cannot tell the format of ${file} from its extension: pass --format csv or --format ndjson`
        : `--format: expected csv or ndjson, got ${JSON.stringify(given)}`,
    );
  }
  return format;
}
