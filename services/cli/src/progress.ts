import type { Writable } from 'node:stream';

export interface ProgressBar {
  update(done: number, detail: string): void;
  done(total: number): void;
}

/**
 * Progress on stderr: a bar redrawn in place on a terminal, a line every
 * few seconds otherwise (logs, CI), so stdout stays the command's result.
 */
export function progressBar(
  stream: Writable & { isTTY?: boolean },
  label: string,
  total: number,
): ProgressBar {
  const started = Date.now();
  let lastLine = started;
  let detail = '';
  const render = (done: number) => {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0)}% ${seconds}s ${detail}`;
  };
  return {
    update(done, text) {
      detail = text;
      if (stream.isTTY) stream.write(`\r${render(done)}`);
      else if (Date.now() - lastLine >= 5_000) {
        lastLine = Date.now();
        stream.write(`${render(done)}\n`);
      }
    },
    done(finished) {
      stream.write(stream.isTTY ? `\r${render(finished)}\n` : `${render(finished)}\n`);
    },
  };
}
