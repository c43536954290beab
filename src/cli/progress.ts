// A progress bar on stderr, only when stderr is a terminal or --progress asks for it (pipes and CI
// logs get no control characters otherwise). Redraws at most every 100 ms so that progress never
// costs measurable time.

export interface ProgressBar {
  update(fraction: number, label?: string): void;
  done(): void;
}

export function createProgressBar(title: string, stream: NodeJS.WriteStream = process.stderr, force = false): ProgressBar {
  const enabled = force || stream.isTTY === true;
  let last = 0;
  let drawn = false;
  const start = Date.now();
  return {
    update(fraction: number, label = '') {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100 && fraction < 1) return;
      last = now;
      const f = Math.max(0, Math.min(1, fraction));
      const width = 28;
      const full = Math.round(f * width);
      const elapsed = (now - start) / 1000;
      const eta = f > 0.02 ? ` eta ${Math.max(0, (elapsed / f) * (1 - f)).toFixed(0)}s` : '';
      const cols = stream.columns || 100;
      const line = `${title} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(f * 100).toFixed(0).padStart(3)}%${eta} ${label}`;
      stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 2))}`);
      drawn = true;
    },
    done() {
      if (!enabled || !drawn) return;
      drawn = false;
      // a terminal clears the bar's line; a log (--progress into a pipe or a file) ends it, so
      // that what follows (an error, the report) starts on a line of its own
      stream.write(stream.isTTY === true ? '\r\x1b[K' : '\n');
    },
  };
}
