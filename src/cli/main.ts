// `prunescope`: the command line over the engine. Its command names, flags and JSON fields are a
// contract (scripts and CI pipelines call them): add, never rename.
//   exit 0  success
//   exit 1  the model or data could not be processed (one line on stderr: file + reason)
//   exit 2  usage error
//   exit 130 cancelled (Ctrl-C); nothing was written

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
      'prunescope eval <model.json|model.onnx> --candidates FILE.csv [--k 10] [--data FILE.csv] [--user-input NAME] [--item-input NAME] [--fields-input NAME] [--user-column NAME] [--item-column NAME] [--label-column NAME] [--latency] [--backend auto|tfjs-node|webgpu|wasm|cpu] [--ep cpu|webgpu|cuda|auto] [--json]',
    run: async (argv) => (await import('./eval-command.js')).evalCommand(argv),
  },
  bench: {
    summary: 'inference latency p50/p95 and throughput per batch size (ORT for ONNX, TF.js for model.json), size and gzip size',
    usage:
      'prunescope bench <model.json|model.onnx> [--batch 1024] [--batch 1,64,1024] [--runs 30] [--warmup 3] [--user-input NAME] [--item-input NAME] [--fields-input NAME] [--backend auto|tfjs-node|webgpu|wasm|cpu] [--ep cpu|webgpu|cuda|auto] [--json]',
    run: async (argv) => (await import('./bench-command.js')).benchCommand(argv),
  },
  prune: {
    summary: 'magnitude pruning (global or per layer), or structured: embedding rows, embedding dims, MLP neurons; optional fine-tuning',
    usage:
      'prunescope prune <model> --sparsity 0.9 [--scope global|layer] [--granularity element|column] [--per-layer NAME=S,...] [--structure none|rows|dims|neurons] [--table NAME] [--finetune INTERACTIONS.csv --epochs N [--lr 0.001] [--batch-size 1024] [--output-kind auto|probability|logit|rating]] [--steps N | --ramp-epochs N | --regrow-epochs N] [--frequency 100] [--candidates FILE.csv] [--out PATH] [--force] [--json]',
    run: async (argv) => (await import('./prune-command.js')).pruneCommand(argv),
  },
  quantize: {
    summary: 'int8 (per-row tables, per-channel kernels), int4/int2 (ONNX embedding tables, per row), or float16; uint8/uint16 TF.js manifest quantization; checked against the float model',
    usage: 'prunescope quantize <model> --dtype int8|int4|int2|float16|uint8|uint16 [--tensors all|embeddings|dense] [--dense weights-only|dynamic] [--lookup compact|fast] [--candidates FILE.csv] [--out PATH] [--force] [--json]',
    run: async (argv) => (await import('./quantize-command.js')).quantizeCommand(argv),
  },
  factorize: {
    summary: 'low-rank factorization (truncated SVD) of dense kernels and embedding tables',
    usage: 'prunescope factorize <model> (--rank R | --energy 0.95) [--tensors all|embeddings|dense] [--min-saving 0.1] [--candidates FILE.csv] [--out PATH] [--force] [--json]',
    run: async (argv) => (await import('./factorize-command.js')).factorizeCommand(argv),
  },
  distill: {
    summary: 'knowledge distillation into a smaller student of the same kind (soft targets + true labels)',
    usage: 'prunescope distill <teacher> --data INTERACTIONS.csv (--student-dim D | --ratio 8) [--hidden 32,16] [--epochs N] [--lr 0.005] [--batch-size 512] [--negatives 4] [--seed N] [--alpha 0.7] [--temperature T] [--output-kind auto|probability|logit|rating] [--engine auto|compiled|tape] [--sample-keep 0.5 [--sample-by loss|gradnorm] [--sample-warmup 1]] [--candidates FILE.csv] [--out PATH] [--force] [--json]',
    run: async (argv) => (await import('./distill-command.js')).distillCommand(argv),
  },
  finetune: {
    summary: 'fine-tune a model on interactions (pruned zeros stay zero); ONNX models train through a TF.js translation',
    usage: 'prunescope finetune <model> --data INTERACTIONS.csv [--epochs N] [--lr 0.001] [--masks keep-zeros|none] [--teacher ORIGINAL [--alpha 0.7] [--temperature 1]] [--output-kind auto|probability|logit|rating] [--engine auto|compiled|tape] [--sample-keep 0.5 [--sample-by loss|gradnorm] [--sample-warmup 1]] [--candidates FILE.csv] [--out PATH] [--force] [--json]',
    run: async (argv) => (await import('./finetune-command.js')).finetuneCommand(argv),
  },
  compress: {
    summary: 'compress to a target: search methods per table (int8/int4/int2 rows, low rank, rows, dims, fine-tuning, distillation), print the Pareto front, write the smallest model within the budget',
    usage:
      'prunescope compress <model> --candidates VAL.csv --out PATH [--max-drop 0.01 | --target-ratio R] [--metric ndcg|hr|auc] [--k 10] [--max-latency-ratio 1.0] [--latency-batch 256] [--data TRAIN.csv [--finetune-epochs 2] [--finetune-count 6] [--no-distill]] [--budget-minutes 10] [--holdout 0.5 | --test TEST.csv] [--confidence 0] [--seed 1] [--force] [--json]',
    run: async (argv) => (await import('./compress-command.js')).compressCommand(argv),
  },
  sensitivity: {
    summary: 'prune each layer alone at several sparsities, evaluate, and propose per-layer targets within a metric-drop budget',
    usage: 'prunescope sensitivity <model> --candidates FILE.csv [--budget 0.01] [--metric ndcg|hr] [--sparsities 0.5,0.7,0.9] [--recipe OUT.json] [--json]',
    run: async (argv) => (await import('./sensitivity-command.js')).sensitivityCommand(argv),
  },
  run: {
    summary: 'replay a recipe (JSON: the compression steps in order) on its model, or on the model given',
    usage: 'prunescope run <recipe.json> [model] [--candidates FILE.csv] [--out PATH] [--force] [--json]',
    run: async (argv) => (await import('./run-command.js')).runRecipeCommand(argv),
  },
  fields: {
    summary: 'feature-field importance of a DeepFM-style model (shuffle one field, see the AUC/logloss drop), and removal of the weakest fields',
    usage:
      'prunescope fields <model.json|model.onnx> --data VALID.csv [--metric auc|logloss] [--repeats 3] [--seed 1] [--json] | (--drop 0.3 --data VALID.csv | --remove noise_a,noise_b [--data VALID.csv]) --out PATH [--no-compensate] [--force] [--json]',
    run: async (argv) => (await import('./fields-command.js')).fieldsCommand(argv),
  },
  trees: {
    summary: 'analyse an ONNX-ML tree ensemble (trees, depth/leaf histograms, feature importance, unused features) or prune it: depth, min cover, post-pruning, tree removal, feature removal',
    usage:
      'prunescope trees <model.onnx> [--node NAME] [--data VALID.csv] [--json] | --prune depth=N|cover=N|post|drop=F|features=F [--data VALID.csv] [--tolerance T] --out PATH [--force] [--json]',
    run: async (argv) => (await import('./trees-command.js')).treesCommand(argv),
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
  lines.push('', 'Exit codes: 0 success, 1 the model or data could not be processed, 2 usage error, 130 cancelled (nothing written).');
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
    // by name too: the command bundles carry their own copy of the class (esbuild splits the CLI)
    if (e instanceof UsageError || (e instanceof Error && e.name === 'UsageError')) {
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
