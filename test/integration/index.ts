// Mocha entry run INSIDE the VS Code extension host (code-server's Node 24), named by the
// `extensionTestsPath` the runner (scripts/vscode-host/run-integration.mjs) passes.
// The extension host's stdout is invisible to the runner, so the report and a JSON summary go
// to files whose paths arrive through `extensionEnvironment`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type MochaType from 'mocha';

/** What the runner reads back to print the final `N passed, N failed` line. */
export interface IntegrationSummary {
  passed: number;
  failed: number;
  pending: number;
  failures: { title: string; error: string }[];
  durationMs: number;
}

/**
 * Mocha 12 is an ES module; required from CommonJS (Node >= 22.12) it comes back as a
 * namespace whose `default` is the Mocha class.
 */
function loadMocha(): typeof MochaType {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require('mocha') as typeof MochaType | { default: typeof MochaType };
  if (typeof mod === 'function') return mod;
  return mod.default;
}

function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

export function run(): Promise<void> {
  const reportFile = process.env.PRUNESCOPE_TEST_REPORT;
  const summaryFile = process.env.PRUNESCOPE_TEST_SUMMARY;
  if (!reportFile || !summaryFile) {
    return Promise.reject(new Error('PRUNESCOPE_TEST_REPORT and PRUNESCOPE_TEST_SUMMARY must name the report files (set by run-integration.mjs)'));
  }
  const started = Date.now();
  const lines: string[] = [];
  const flushReport = (): void => writeFileAtomic(reportFile, lines.join('\n') + '\n');
  const log = (line: string): void => {
    lines.push(line);
    flushReport();
  };
  const summary: IntegrationSummary = { passed: 0, failed: 0, pending: 0, failures: [], durationMs: 0 };
  const finish = (): void => {
    summary.durationMs = Date.now() - started;
    writeFileAtomic(summaryFile, JSON.stringify(summary, null, 2) + '\n');
  };
  // The runner watches for this file to know the extension host reached the tests.
  log(`mocha started in the extension host (Node ${process.version}, pid ${process.pid})`);

  return (async () => {
    const Mocha = loadMocha();
    const timeoutMs = Number(process.env.PRUNESCOPE_TEST_TIMEOUT_MS ?? '60000');
    const mocha = new Mocha({ ui: 'tdd', color: false, timeout: timeoutMs, reporter: 'base' });
    const grep = process.env.PRUNESCOPE_TEST_GREP;
    if (grep) mocha.grep(grep);
    // tsc never deletes outputs: a suite whose .ts was removed would still run from out/.
    // Compiled suites are checked against their sources when the source folder is present.
    const sourceDir = path.resolve(__dirname, '..', '..', '..', 'test', 'integration');
    const checkSources = fs.existsSync(sourceDir);
    const files: string[] = [];
    for (const f of fs.readdirSync(__dirname).filter((n) => n.endsWith('.test.js')).sort()) {
      if (checkSources && !fs.existsSync(path.join(sourceDir, f.replace(/\.js$/, '.ts')))) {
        log(`skipped ${f}: stale output, test/integration/${f.replace(/\.js$/, '.ts')} no longer exists`);
        continue;
      }
      files.push(path.join(__dirname, f));
    }
    if (files.length === 0) throw new Error(`no *.test.js files in ${__dirname}`);
    for (const f of files) mocha.addFile(f);
    log(`test files: ${files.map((f) => path.basename(f)).join(', ')}`);
    await mocha.loadFilesAsync();

    await new Promise<void>((resolve) => {
      const runner = mocha.run(() => resolve());
      let depth = 0;
      const indent = (): string => '  '.repeat(depth);
      runner.on('suite', (suite) => {
        if (suite.root) return;
        log(`${indent()}${suite.title}`);
        depth++;
      });
      runner.on('suite end', (suite) => {
        if (!suite.root) depth--;
      });
      runner.on('pass', (test) => {
        summary.passed++;
        log(`${indent()}ok   ${test.title} (${test.duration ?? 0} ms)`);
      });
      runner.on('pending', (test) => {
        summary.pending++;
        log(`${indent()}skip ${test.title}`);
      });
      runner.on('fail', (test, err: unknown) => {
        summary.failed++;
        const title = test.fullTitle();
        const error = errorText(err);
        summary.failures.push({ title, error });
        log(`${indent()}FAIL ${test.title}`);
        for (const l of error.split('\n')) log(`${indent()}     ${l}`);
      });
    });
    if (summary.passed + summary.failed === 0) {
      summary.failed++;
      summary.failures.push({ title: 'integration run', error: 'no test ran (check PRUNESCOPE_TEST_GREP and the suites)' });
    }
    log(`${summary.passed} passing, ${summary.failed} failing, ${summary.pending} pending (${Date.now() - started} ms)`);
    finish();
    if (summary.failed > 0) throw new Error(`${summary.failed} integration test(s) failed`);
  })().catch((err: unknown) => {
    // A failure before or outside the tests (loading a suite, mocha itself) still yields a
    // summary, so the runner can say what happened instead of timing out.
    if (summary.failed === 0) {
      summary.failed = 1;
      summary.failures.push({ title: 'integration run', error: errorText(err) });
      log(`FAIL integration run: ${errorText(err)}`);
      finish();
    }
    throw err;
  });
}
