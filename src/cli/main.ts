// `prunescope`: the command line over the engine. Its command names, flags and JSON fields are a
// contract (scripts and CI pipelines call them): add, never rename.
//   exit 0  success
//   exit 1  the model or data could not be processed (one line on stderr: file + reason)
//   exit 2  usage error

import { UsageError } from './args.js';
import { TOOL_VERSION } from '../core/version.js';

// Commands load their modules on first use: `analyze` must not pay for loading TF.js.
interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  analyze: {
    summary: 'analyse a TF.js or ONNX model: parameters, sparsity, heat, spectra, opportunities',
    usage: 'prunescope analyze <model.json|model.onnx> [--json] [--out report.json] [--epsilon 1e-6] [--no-spectrum] [--top 3] [--tensors]',
    run: async (argv) => (await import('./analyze-command.js')).analyzeCommand(argv),
  },
  eval: {
    summary: 'evaluate a model on leave-one-out candidates: HR@K, NDCG@K (ties count against the positive), AUC, logloss, size, gzip size',
    usage:
      'prunescope eval <model.json|model.onnx> --candidates FILE.csv [--k 10] [--data FILE.csv] [--user-input NAME] [--item-input NAME] [--fields-input NAME] [--user-column NAME] [--item-column NAME] [--label-column NAME] [--latency] [--backend auto|wasm|cpu] [--json]',
    run: async (argv) => (await import('./eval-command.js')).evalCommand(argv),
  },
  bench: {
    summary: 'inference latency p50/p95 and throughput per batch size (ORT for ONNX, TF.js for model.json), size and gzip size',
    usage:
      'prunescope bench <model.json|model.onnx> [--batch 1024] [--batch 1,64,1024] [--runs 30] [--warmup 3] [--user-input NAME] [--item-input NAME] [--fields-input NAME] [--backend auto|wasm|cpu] [--json]',
    run: async (argv) => (await import('./bench-command.js')).benchCommand(argv),
  },
  demo: {
    summary: 'build a sample NeuMF recommender (TF.js + ONNX), train it briefly, analyse it, print the report',
    usage: 'prunescope demo [--dir prunescope-demo] [--model neumf|two-tower|deepfm] [--json]',
    run: async (argv) => (await import('./demo-command.js')).demoCommand(argv),
  },
};

function help(): string {
  const lines = [`prunescope ${TOOL_VERSION}: analyse and compress recommender models (TF.js, ONNX)`, '', 'Commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Usage:');
  for (const c of Object.values(COMMANDS)) lines.push(`  ${c.usage}`);
  lines.push('', 'Exit codes: 0 success, 1 the model or data could not be processed, 2 usage error.');
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
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`prunescope: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.summary}\n\nUsage: ${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`prunescope ${name}: ${e.message}\nUsage: ${cmd.usage}\n`);
      return 2;
    }
    // One line: the engine's errors already name the file and the reason.
    const msg = e instanceof Error ? e.message : String(e);
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
