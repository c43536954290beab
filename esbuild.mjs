// One build script for every bundle (the vscode-eslint habit): the extension host bundle, the
// job worker, the CLI, the benchmark runner (all Node/CJS) and the webview app (browser/IIFE).
// Native or optional modules stay external: onnxruntime-node ships .node binaries that must be
// loaded from node_modules; tfjs-node / webgpu are optional accelerators detected at run time.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const nodeExternal = [
  'vscode',
  'onnxruntime-node',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'webgpu',
  // the job queue of `prunescope worker` / `analyze --distribute` (ioredis, msgpackr): loaded from
  // node_modules where the CLI runs; the extension never loads it
  'bullmq',
];

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  legalComments: 'none',
};

// The CLI is three bundles: cli.js (main.ts: the dispatcher and --help, a few KB), analyze-command.js
// (420 KB: readers and analysis, no TF.js) and cli-commands.js (every other command). main.ts
// imports './<name>-command.js'; here those imports become requires of the sibling bundles, while
// the tsc output in out/ resolves them to the modules themselves. Compiling one 4 MB bundle cost
// ~0.16 s before `analyze` read the first byte of a model, a sixth of analysing a 540 MB one.
const cliCommands = readdirSync('src/cli').filter((f) => f.endsWith('-command.ts') && f !== 'analyze-command.ts');
const commandsExternal = {
  name: 'cli-commands-external',
  setup(build) {
    build.onResolve({ filter: /^\.\/[a-z-]+-command\.js$/ }, (args) => {
      if (!args.importer.endsWith(join('src', 'cli', 'main.ts'))) return undefined;
      return { path: args.path === './analyze-command.js' ? './analyze-command.js' : './cli-commands.js', external: true };
    });
  },
};

const nodeBundles = [
  { entryPoints: { extension: 'src/extension/extension.ts' } },
  { entryPoints: { worker: 'src/core/jobs/worker.ts' } },
  { entryPoints: { cli: 'src/cli/main.ts' }, plugins: [commandsExternal] },
  { entryPoints: { 'analyze-command': 'src/cli/analyze-command.ts' } },
  {
    stdin: { contents: cliCommands.map((f) => `export * from './src/cli/${f}';`).join('\n'), resolveDir: '.', loader: 'ts', sourcefile: 'cli-commands.ts' },
    outfile: 'dist/cli-commands.js',
  },
  { entryPoints: { bench: 'scripts/bench/main.ts' } },
].map((b) => ({
  ...common,
  ...(b.outfile ? {} : { outdir: 'dist' }),
  ...b,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: nodeExternal,
  // tfjs probes for optional node-fetch / util at run time; keep esbuild quiet about it
  mainFields: ['module', 'main'],
}));

const webviewBundle = {
  ...common,
  entryPoints: { webview: 'webview/main.ts' },
  outdir: 'dist',
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
};

/** The WASM backend loads its .wasm binaries from a folder at run time: ship them beside the bundles (runtime/tfjs-backend.ts looks there). */
function copyWasm() {
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  mkdirSync('dist', { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.wasm')) cpSync(join(dir, f), join('dist', f));
}

const configs = [...nodeBundles, webviewBundle];
if (watch) {
  for (const c of configs) await (await esbuild.context(c)).watch();
  copyWasm();
} else {
  await Promise.all(configs.map((c) => esbuild.build(c)));
  copyWasm();
}
