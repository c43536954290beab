// `prunescope`: the command line over the engine. Its command names, flags and JSON fields are a
// contract (scripts and CI pipelines call them): add, never rename.
//   exit 0  success
//   exit 1  the model or data could not be processed (one line on stderr: file + reason)
//   exit 2  usage error
//   exit 130 cancelled (Ctrl-C); nothing was written

import { UsageError } from './args.js';
import { COMMAND_SPECS } from './command-specs.js';
import { TOOL_VERSION } from '../core/version.js';

// The specs (options, help) are cheap; each command loads its module on first use: `analyze` must
// not pay for loading TF.js.
const RUNNERS: Record<string, (argv: string[]) => Promise<number>> = {
  analyze: async (argv) => (await import('./analyze-command.js')).analyzeCommand(argv),
  merge: async (argv) => (await import('./merge-command.js')).mergeCommand(argv),
  worker: async (argv) => (await import('./worker-command.js')).workerCommand(argv),
  eval: async (argv) => (await import('./eval-command.js')).evalCommand(argv),
  bench: async (argv) => (await import('./bench-command.js')).benchCommand(argv),
  prune: async (argv) => (await import('./prune-command.js')).pruneCommand(argv),
  quantize: async (argv) => (await import('./quantize-command.js')).quantizeCommand(argv),
  factorize: async (argv) => (await import('./factorize-command.js')).factorizeCommand(argv),
  distill: async (argv) => (await import('./distill-command.js')).distillCommand(argv),
  finetune: async (argv) => (await import('./finetune-command.js')).finetuneCommand(argv),
  compress: async (argv) => (await import('./compress-command.js')).compressCommand(argv),
  sensitivity: async (argv) => (await import('./sensitivity-command.js')).sensitivityCommand(argv),
  run: async (argv) => (await import('./run-command.js')).runRecipeCommand(argv),
  fields: async (argv) => (await import('./fields-command.js')).fieldsCommand(argv),
  trees: async (argv) => (await import('./trees-command.js')).treesCommand(argv),
  demo: async (argv) => (await import('./demo-command.js')).demoCommand(argv),
};

const EXIT_CODES = 'Exit codes: 0 success, 1 the model or data could not be processed, 2 usage error, 130 cancelled (nothing written).';

function help(): string {
  const lines = [`prunescope ${TOOL_VERSION}: analyse and compress recommender models (TF.js, ONNX)`, '', 'Commands:'];
  for (const c of COMMAND_SPECS) lines.push(`  ${c.name.padEnd(11)} ${c.summary}`);
  lines.push('', 'Usage:');
  for (const c of COMMAND_SPECS) lines.push(`  ${c.usage()}`);
  lines.push('', 'prunescope <command> --help lists every option of a command.', EXIT_CODES);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${TOOL_VERSION}\n`);
    return 0;
  }
  const cmd = COMMAND_SPECS.find((c) => c.name === name);
  const run = RUNNERS[name];
  if (!cmd || !run) {
    process.stderr.write(`prunescope: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.help()}\n\n${EXIT_CODES}\n`);
    return 0;
  }
  try {
    return await run(rest);
  } catch (e) {
    // by name too: the command bundles carry their own copy of the class (esbuild splits the CLI)
    // an output path that does not fit the input's format is a usage error too (output-files.ts)
    if (e instanceof UsageError || (e instanceof Error && (e.name === 'UsageError' || e.name === 'OutputPathError'))) {
      process.stderr.write(`prunescope ${name}: ${e.message}\nUsage: ${cmd.usage()}\n(prunescope ${name} --help lists every option)\n`);
      return 2;
    }
    // One line: the engine's errors already name the file and the reason.
    let msg = e instanceof Error ? e.message : String(e);
    // the engine's wording for a taken output, said in this command's terms
    if (Object.hasOwn(cmd.options, 'force')) msg = msg.replace(/; choose another output or allow replacing it$/m, '; --force replaces it');
    process.stderr.write(`prunescope ${name}: ${msg.split('\n')[0]}\n`);
    if (process.env.PRUNESCOPE_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`prunescope: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
