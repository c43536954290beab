// Every command's positionals, options and rules, declared once (options.ts): the commands parse
// with these, and `--help` is generated from them. No engine imports: main.ts loads this file for
// the help, the commands load their engine code on first use. Flag names are a contract: add,
// never rename.

import { defineCommand } from './options.js';
import { COMPRESS_COMMON, ENGINE, FIELDS_INPUT, INPUT_NAMES, K_OPTION, MODEL_POSITIONAL, OUTPUT_KIND, RUNTIME, SAMPLE_PRUNING, shardingGroup } from './option-groups.js';

const TENSORS_HELP = "which tensors: 'all', 'embeddings', 'dense', or tensor names separated by commas";

export const ANALYZE = defineCommand({
  name: 'analyze',
  summary: 'analyse a TF.js or ONNX model: parameters, sparsity, heat, spectra, opportunities',
  positionals: [MODEL_POSITIONAL],
  options: {
    json: { kind: 'boolean', description: 'print the JSON report instead of the table' },
    out: { kind: 'path', valueName: 'report.json', description: 'also write the JSON report to this file' },
    epsilon: { kind: 'number', min: 0, max: 1e6, default: 1e-6, description: 'weights with |w| at or below this count as near-zero' },
    'no-spectrum': { kind: 'boolean', description: 'skip the singular-value spectra' },
    top: { kind: 'integer', min: 0, max: 1000, default: 3, description: 'opportunities listed' },
    tensors: { kind: 'boolean', description: 'list every tensor, not only the layers' },
    progress: { kind: 'boolean', description: 'show the progress bar even when stderr is not a terminal' },
    force: { kind: 'boolean', description: 'replace an existing --out file' },
  },
  groups: [
    shardingGroup({
      shard: 'analyse only shard I of N (tensors balanced by size) and write the shard report to --out; `prunescope merge` assembles the shards',
      distribute: 'split the analysis into N shards on the job queue at --redis; `prunescope worker` processes run them; the merged report is printed',
      files: 'the shard reports',
      outHint: 'a shard report: give --out SHARD.json',
    }),
  ],
  rules: [{ exclusive: ['shard', 'distribute'] }],
  examples: [
    'prunescope analyze model.onnx',
    'prunescope analyze model/model.json --json --out report.json',
    'prunescope analyze big.onnx --shard 2/8 --out big-2.shard.json',
    'prunescope analyze big.onnx --distribute 8 --redis redis://queue:6379 --json',
  ],
});

export const MERGE = defineCommand({
  name: 'merge',
  summary: 'assemble the shard reports of `analyze --shard I/N` into the report `analyze` prints (all shards, same model, checked)',
  positionals: [MODEL_POSITIONAL, { name: 'shard.json', description: 'the shard reports, every shard once', required: true, variadic: true }],
  options: {
    json: { kind: 'boolean', description: 'print the JSON report instead of the table' },
    out: { kind: 'path', valueName: 'report.json', description: 'also write the JSON report to this file' },
    force: { kind: 'boolean', description: 'replace an existing --out file' },
    top: { kind: 'integer', min: 0, max: 1000, default: 3, description: 'opportunities listed' },
    tensors: { kind: 'boolean', description: 'list every tensor, not only the layers' },
  },
  examples: ['prunescope merge big.onnx big-*.shard.json --out report.json'],
});

export const WORKER = defineCommand({
  name: 'worker',
  summary: 'process analysis and int8 quantization shards from the job queue at --redis (BullMQ) until stopped (Ctrl-C / SIGTERM finish the current job first)',
  options: {
    redis: { kind: 'string', valueName: 'redis://HOST:6379', required: true, description: 'the Redis server of the job queue' },
    concurrency: { kind: 'integer', min: 1, max: 64, default: 1, description: 'shards processed at once by this process' },
  },
  examples: ['prunescope worker --redis redis://queue:6379'],
});

export const EVAL = defineCommand({
  name: 'eval',
  summary: 'evaluate a model on leave-one-out candidates: HR@K, NDCG@K (ties count against the positive), AUC, logloss, size, gzip size',
  positionals: [MODEL_POSITIONAL],
  groups: [INPUT_NAMES, FIELDS_INPUT, RUNTIME],
  options: {
    candidates: { kind: 'path', valueName: 'FILE.csv', description: 'leave-one-out candidates: per user one positive and its negatives' },
    data: { kind: 'path', valueName: 'FILE.csv', description: 'labelled interactions: AUC and logloss (RMSE and MAE for ratings)' },
    k: K_OPTION,
    'user-column': { kind: 'string', valueName: 'NAME', description: 'the CSV column of user ids', defaultText: 'user' },
    'item-column': { kind: 'string', valueName: 'NAME', description: 'the CSV column of item ids', defaultText: 'item' },
    'label-column': { kind: 'string', valueName: 'NAME', description: 'the CSV column of labels', defaultText: 'label' },
    latency: { kind: 'boolean', description: 'also measure inference latency' },
    json: { kind: 'boolean', description: 'print the result as JSON' },
  },
  rules: [{ anyOf: ['candidates', 'data'], message: 'give --candidates FILE.csv (and/or --data FILE.csv)' }],
  examples: ['prunescope eval model.onnx --candidates candidates.csv --k 10'],
});

export const BENCH = defineCommand({
  name: 'bench',
  summary: 'inference latency p50/p95 and throughput per batch size (ORT for ONNX, TF.js for model.json), size and gzip size',
  positionals: [MODEL_POSITIONAL],
  groups: [INPUT_NAMES, FIELDS_INPUT, RUNTIME],
  options: {
    batch: { kind: 'list', of: 'integer', min: 1, max: 1 << 22, repeatable: true, default: [1, 64, 1024], valueName: 'N[,N...]', description: 'batch sizes to time' },
    runs: { kind: 'integer', min: 1, max: 1e6, default: 30, description: 'timed runs per batch size' },
    warmup: { kind: 'integer', min: 0, max: 1e4, default: 3, description: 'untimed runs first' },
    json: { kind: 'boolean', description: 'print the result as JSON' },
  },
  examples: ['prunescope bench model.onnx --batch 1,256 --ep cpu'],
});

export const PRUNE = defineCommand({
  name: 'prune',
  summary: 'magnitude pruning (global or per layer), or structured: embedding rows, embedding dims, MLP neurons; optional fine-tuning',
  positionals: [MODEL_POSITIONAL],
  groups: [COMPRESS_COMMON, OUTPUT_KIND],
  options: {
    sparsity: { kind: 'number', min: 0, max: 1, required: '--sparsity is required (a fraction in [0, 1], e.g. 0.9)', valueName: 'S', description: 'the fraction removed (weights, rows, dims or neurons)' },
    scope: { kind: 'choice', choices: ['global', 'layer'], default: 'global', description: "magnitude: one threshold over all tensors ('global') or each tensor to the sparsity ('layer')" },
    structure: { kind: 'choice', choices: ['none', 'rows', 'dims', 'neurons'], default: 'none', description: "what is removed: single weights ('none'), embedding rows, embedding dims or MLP neurons" },
    granularity: { kind: 'choice', choices: ['element', 'column'], default: 'element', description: "magnitude: single weights or whole embedding columns" },
    'per-layer': { kind: 'string', valueName: 'NAME=S,...', description: 'magnitude with --scope layer: a sparsity per tensor or layer' },
    tensors: { kind: 'list', valueName: 'NAME,...', description: 'magnitude: prune only these tensors', defaultText: 'embedding tables and dense kernels' },
    table: { kind: 'string', valueName: 'NAME', description: 'rows / dims: only this table', defaultText: 'every table' },
    importance: { kind: 'choice', choices: ['l2', 'l2xnext'], defaultText: 'l2', description: "neurons: the norm of a neuron's incoming weights ('l2'), times that of its outgoing ones ('l2xnext')" },
    finetune: { kind: 'path', valueName: 'INTERACTIONS.csv', description: 'fine-tune on these interactions after (or while) pruning' },
    epochs: { kind: 'integer', min: 1, max: 1000, default: 2, description: 'fine-tuning epochs' },
    lr: { kind: 'number', min: 0, minExclusive: true, max: 10, default: 0.001, description: 'fine-tuning learning rate' },
    'batch-size': { kind: 'integer', min: 1, max: 1 << 20, default: 1024, description: 'fine-tuning rows per batch' },
    steps: { kind: 'integer', min: 1, max: 100, default: 1, description: 'magnitude: reach the sparsity in N cuts along a cubic schedule, fine-tuned between cuts' },
    'ramp-epochs': { kind: 'integer', min: 0, description: 'magnitude: prune during training, the targets ramping up over the first N epochs (at most --epochs)' },
    'regrow-epochs': {
      kind: 'integer',
      min: 0,
      defaultText: '--epochs - 1 for one element-wise cut fine-tuned 2+ epochs, else 0',
      description: 'magnitude: the masks are chosen again during the first N fine-tuning epochs (pruned weights may come back), then fixed',
    },
    frequency: { kind: 'integer', min: 1, default: 100, description: 'optimizer steps between two mask updates (with --ramp-epochs or --regrow-epochs)' },
    'no-teacher': { kind: 'boolean', description: "fine-tune on the labels alone (by default the unpruned model's scores are soft targets too)" },
  },
  rules: [
    { requires: 'finetune', when: ['epochs'] },
    { requires: 'finetune', when: ['no-teacher'], message: '--no-teacher goes with --finetune INTERACTIONS.csv' },
    { requires: 'finetune', when: ['output-kind'], message: '--output-kind needs --finetune INTERACTIONS.csv (it picks the training loss)' },
    { requires: 'finetune', when: ['ramp-epochs'], message: '--ramp-epochs needs --finetune INTERACTIONS.csv (the pruning happens during training)' },
    { requires: 'finetune', when: ['regrow-epochs'], message: '--regrow-epochs needs --finetune INTERACTIONS.csv (the masks change during training)' },
    { exclusive: ['steps', 'ramp-epochs'], message: 'give --steps (separate prune / fine-tune rounds) or --ramp-epochs (pruning during one training run), not both' },
    { exclusive: ['ramp-epochs', 'regrow-epochs'], message: 'give --ramp-epochs (gradual pruning) or --regrow-epochs (dynamic pruning), not both' },
  ],
  notes: [
    '--per-layer needs --scope layer; --granularity, --per-layer, --tensors, --steps > 1, --ramp-epochs and --regrow-epochs apply to magnitude pruning (--structure none)',
    '--frequency goes with --ramp-epochs or --regrow-epochs; --regrow-epochs > 0 and --steps do not go together',
  ],
  examples: [
    'prunescope prune model.onnx --sparsity 0.9 --out pruned.onnx',
    'prunescope prune model.onnx --sparsity 0.5 --structure rows --finetune train.csv --epochs 2 --candidates candidates.csv',
  ],
});

export const QUANTIZE = defineCommand({
  name: 'quantize',
  summary: 'int8 (per-row tables, per-channel kernels), int4/int3/int2 (ONNX embedding tables, scales per row, a byte per row or per column), or float16; uint8/uint16 TF.js manifest quantization; checked against the float model',
  positionals: [MODEL_POSITIONAL],
  options: {
    dtype: {
      kind: 'choice',
      choices: ['int8', 'int4', 'int3', 'int2', 'float16', 'uint8', 'uint16'],
      required: '--dtype must be int8, int4, int3, int2 (ONNX embedding tables), float16, uint8 or uint16',
      invalidMessage: '--dtype must be int8, int4, int3, int2 (ONNX embedding tables), float16, uint8 or uint16',
      description: 'the stored type (int4 / int3 / int2: ONNX embedding tables)',
    },
    tensors: { kind: 'string', valueName: 'all|embeddings|dense|NAME,...', defaultText: 'all', description: TENSORS_HELP },
    dense: { kind: 'choice', choices: ['weights-only', 'dynamic'], defaultText: 'weights-only', description: "ONNX int8 dense kernels: dequantized for the float MatMul ('weights-only') or an integer MatMul ('dynamic')" },
    lookup: { kind: 'choice', choices: ['compact', 'fast'], defaultText: 'compact', description: "ONNX int8 tables: float16 row scales ('compact') or float32 scales and one DequantizeLinear ('fast')" },
    scales: { kind: 'choice', choices: ['row', 'byte', 'column'], defaultText: 'row', description: "int4 / int3 / int2 tables: a float16 scale and uint8 zero point per row; one byte per row (its zero point and one of the table's 16/32/64 shared scale levels: 2 bytes less per row, about the same total error, coarser steps for rows of small norm); or one scale and zero point per column for the whole table (3 bytes less per row; tables under 8 wide are always per column)" },
    'full-range': { kind: 'boolean', description: 'with --dense dynamic: all 8 bits for the integer MatMul (by default 7, so that x64 CPUs without VNNI cannot overflow; weights-only kernels are 8-bit already)' },
    'from-shards': { kind: 'path', repeatable: true, valueName: 'FILE|DIR', description: 'ONNX int8: take the tables from these shard files (a folder: every *.qshard in it), all N of one split; the model equals a one-process run, byte for byte' },
    rounding: {
      kind: 'choice',
      choices: ['nearest', 'output-aware'],
      defaultText: 'nearest',
      description: "int4 / int3 / int2 tables: each value to its nearest code, or each row's codes chosen with error feedback so that the score moves least ('output-aware': the same size)",
    },
    calibration: {
      kind: 'path',
      valueName: 'PAIRS.csv',
      defaultText: 'random user x item pairs',
      description: "output-aware rounding: the user,item[,fields] pairs on which the score's sensitivity to each table is measured (models with a fields input need it)",
    },
    finetune: { kind: 'path', valueName: 'INTERACTIONS.csv', description: 'int4 / int3 / int2: first fine-tune on these interactions quantization-aware (the tables train through the rounding they will be stored in), then quantize' },
    epochs: { kind: 'integer', min: 1, max: 1000, default: 2, description: 'quantization-aware fine-tuning epochs' },
    lr: { kind: 'number', min: 0, minExclusive: true, max: 10, default: 0.001, description: 'fine-tuning learning rate' },
    'batch-size': { kind: 'integer', min: 1, max: 1 << 20, default: 1024, description: 'fine-tuning rows per batch' },
    'no-teacher': { kind: 'boolean', description: "fine-tune on the labels alone (by default the unquantized model's scores are soft targets too)" },
  },
  groups: [
    COMPRESS_COMMON,
    OUTPUT_KIND,
    shardingGroup({
      shard: 'ONNX int8: compute only shard I of N of the embedding tables (balanced by size) into the shard file --out; --from-shards assembles the model',
      distribute: 'ONNX int8: N table shards on the job queue at --redis, run by `prunescope worker` processes, then assembled here',
      files: 'the shard files',
      outHint: 'a shard file: give --out SHARD.qshard',
    }),
  ],
  rules: [
    { exclusive: ['shard', 'from-shards', 'distribute'] },
    // after the rule above, only --finetune with one of the three can break this one
    { exclusive: ['finetune', 'shard', 'from-shards', 'distribute'], message: '--finetune trains the whole model: it does not go with --shard, --from-shards or --distribute' },
    { requires: 'finetune', when: ['epochs', 'lr', 'batch-size'] },
    { requires: 'rounding', when: ['calibration'], message: "--calibration goes with --rounding output-aware" },
    { requires: 'finetune', when: ['no-teacher'], message: '--no-teacher goes with --finetune INTERACTIONS.csv' },
    { requires: 'finetune', when: ['output-kind'], message: '--output-kind needs --finetune INTERACTIONS.csv (it picks the training loss)' },
    { requires: 'dense', when: ['full-range'], message: '--full-range goes with --dense dynamic (weights-only kernels are 8-bit already)' },
  ],
  examples: [
    'prunescope quantize model.onnx --dtype int8 --out model-int8.onnx',
    'prunescope quantize model.onnx --dtype int4 --scales column --finetune train.csv --epochs 2 --candidates candidates.csv --out model-int4.onnx',
    'prunescope quantize model.onnx --dtype int3 --rounding output-aware --out model-int3.onnx',
    'prunescope quantize big.onnx --dtype int8 --shard 2/8 --out big-2.qshard',
    'prunescope quantize big.onnx --dtype int8 --from-shards shards/ --out big-int8.onnx',
    'prunescope quantize big.onnx --dtype int8 --distribute 8 --redis redis://queue:6379 --out big-int8.onnx',
  ],
});

export const FACTORIZE = defineCommand({
  name: 'factorize',
  summary: 'low-rank factorization (truncated SVD) of dense kernels and embedding tables',
  positionals: [MODEL_POSITIONAL],
  groups: [COMPRESS_COMMON],
  options: {
    rank: { kind: 'integer', min: 1, max: 1 << 20, valueName: 'R', description: 'the rank of every factorized tensor' },
    energy: { kind: 'number', min: 0, minExclusive: true, max: 1, valueName: 'E', description: "the smallest rank whose σ² sum reaches this share of the total" },
    tensors: { kind: 'string', valueName: 'all|embeddings|dense|NAME,...', defaultText: 'all', description: TENSORS_HELP },
    'min-saving': { kind: 'number', min: -10, max: 1, defaultText: '0.1', description: 'factorize a tensor only when the factors save this share of its parameters' },
    'no-fold': { kind: 'boolean', description: "keep each table's projection as an op of its own (default: folded into the dense layers that read the table through concatenation only)" },
  },
  rules: [{ anyOf: ['rank', 'energy'], message: 'give --rank R or --energy E (e.g. 0.95)' }, { exclusive: ['rank', 'energy'], message: 'give --rank R or --energy E, not both' }],
  examples: ['prunescope factorize model.onnx --energy 0.9 --tensors embeddings'],
});

export const DISTILL = defineCommand({
  name: 'distill',
  summary: 'knowledge distillation into a smaller student of the same kind (soft targets + true labels)',
  positionals: [{ name: 'teacher', description: 'the model to distill: a TF.js model.json or an .onnx file', required: true }],
  groups: [COMPRESS_COMMON, SAMPLE_PRUNING, OUTPUT_KIND, ENGINE],
  options: {
    data: { kind: 'path', valueName: 'INTERACTIONS.csv', required: '--data INTERACTIONS.csv is required (the student learns from it and from the teacher)', description: 'the interactions the student trains on' },
    'student-dim': { kind: 'integer', min: 1, max: 4096, valueName: 'D', description: 'embedding width of the student (instead of --ratio)' },
    ratio: { kind: 'number', min: 1, max: 1e6, defaultText: '8', description: 'teacher parameters / student parameters, at least (ignored with --student-dim)' },
    hidden: { kind: 'list', of: 'integer', min: 1, valueName: 'N,N', defaultText: "the teacher's, scaled", description: 'hidden layer widths of the student' },
    epochs: { kind: 'integer', min: 1, max: 10000, defaultText: '8', description: 'training epochs' },
    lr: { kind: 'number', min: 0, minExclusive: true, max: 10, defaultText: '0.005', description: 'learning rate (Adam)' },
    'batch-size': { kind: 'integer', min: 1, max: 1 << 20, defaultText: '512', description: 'rows per batch' },
    negatives: { kind: 'integer', min: 0, max: 1000, defaultText: '4', description: 'sampled negatives per positive when the data has only positives' },
    seed: { kind: 'integer', min: 0, max: 2 ** 31 - 1, defaultText: '7', description: 'seed of the sampling and initialisation' },
    alpha: { kind: 'number', min: 0, max: 1, defaultText: '0.7', description: "weight of the teacher's soft targets" },
    temperature: { kind: 'number', min: 0.01, max: 100, valueName: 'T', defaultText: '1', description: "softening temperature of the teacher's scores" },
  },
  examples: ['prunescope distill model.onnx --data train.csv --ratio 8 --epochs 4 --candidates candidates.csv'],
});

export const FINETUNE = defineCommand({
  name: 'finetune',
  summary: 'fine-tune a model on interactions (pruned zeros stay zero); ONNX models train through a TF.js translation',
  positionals: [MODEL_POSITIONAL],
  groups: [COMPRESS_COMMON, SAMPLE_PRUNING, OUTPUT_KIND, ENGINE],
  options: {
    data: { kind: 'path', valueName: 'INTERACTIONS.csv', required: '--data INTERACTIONS.csv is required', description: 'the interactions to train on' },
    epochs: { kind: 'integer', min: 1, max: 10000, default: 2, description: 'training epochs' },
    lr: { kind: 'number', min: 0, minExclusive: true, max: 10, default: 0.001, description: 'learning rate (Adam)' },
    'batch-size': { kind: 'integer', min: 1, max: 1 << 20, default: 1024, description: 'rows per batch' },
    masks: { kind: 'choice', choices: ['keep-zeros', 'none'], defaultText: 'keep-zeros when the model has exact zeros', description: "'keep-zeros': pruned weights stay zero; 'none': all weights train" },
    negatives: { kind: 'integer', min: 0, max: 1000, defaultText: '4', description: 'sampled negatives per positive when the data has only positives' },
    teacher: { kind: 'path', valueName: 'MODEL', description: 'a model (usually the original) whose scores are soft targets, as in distillation' },
    alpha: { kind: 'number', min: 0, max: 1, defaultText: '0.7', description: "weight of the teacher's soft targets" },
    temperature: { kind: 'number', min: 0.01, max: 100, valueName: 'T', defaultText: '1', description: "softening temperature of the teacher's scores" },
    'quant-aware': {
      kind: 'choice',
      choices: ['int4', 'int3', 'int2'],
      description: 'ONNX: train the embedding tables through the rounding of this dtype (fake quantization, straight-through gradient), so that `quantize --dtype` of the same dtype afterwards loses less',
    },
    'quant-scales': { kind: 'choice', choices: ['row', 'column'], defaultText: 'row', description: "with --quant-aware: the layout `quantize --scales` will store (tables under 8 wide are per column either way)" },
  },
  rules: [
    { requires: 'teacher', when: ['alpha', 'temperature'], message: "--alpha and --temperature weigh a teacher's soft targets: give --teacher MODEL" },
    { requires: 'quant-aware', when: ['quant-scales'], message: '--quant-scales goes with --quant-aware int4|int3|int2' },
  ],
  examples: [
    'prunescope finetune pruned.onnx --data train.csv --epochs 2 --teacher model.onnx',
    'prunescope finetune student.onnx --data train.csv --teacher model.onnx --quant-aware int4 --quant-scales column --out student-qat.onnx',
  ],
});

export const COMPRESS = defineCommand({
  name: 'compress',
  summary: 'compress to a target: search methods per table (int8/int4/int3/int2 rows, low rank, rows, dims, fine-tuning, distillation), print the Pareto front, write the smallest model within the budget',
  positionals: [MODEL_POSITIONAL],
  options: {
    candidates: { kind: 'path', valueName: 'VAL.csv', required: '--candidates VAL.csv is required (per user one positive and its negatives)', description: 'validation candidates: per user one positive and its negatives' },
    out: { kind: 'path', required: '--out PATH is required (the chosen model is written there)', description: "where the chosen model goes (the input's format); the front's recipes go beside it" },
    'max-drop': { kind: 'number', min: 0, max: 0.99, default: 0.01, description: 'the budget: the largest relative drop of the metric; the smallest model within it wins' },
    'target-ratio': { kind: 'number', min: 1, minExclusive: true, max: 1e6, valueName: 'R', description: 'the budget instead: at least R times smaller; the most accurate such model wins' },
    metric: { kind: 'choice', choices: ['ndcg', 'hr', 'auc'], default: 'ndcg', description: 'the metric the budget is on' },
    k: K_OPTION,
    'max-latency-ratio': { kind: 'number', min: 0.01, max: 100, description: 'also keep p50 latency within this multiple of the original' },
    'latency-batch': { kind: 'integer', min: 1, max: 1 << 20, default: 256, description: 'batch size of the latency measurements' },
    data: { kind: 'path', valueName: 'TRAIN.csv', description: 'training interactions: adds fine-tuned and distilled candidates, ranks DeepFM fields' },
    'finetune-epochs': { kind: 'integer', min: 1, max: 100, default: 2, description: 'epochs of each fine-tuned candidate (with --data)' },
    'finetune-count': { kind: 'integer', min: 0, max: 50, default: 6, description: 'candidates fine-tuned (with --data)' },
    'no-distill': { kind: 'boolean', description: 'no distilled students (with --data)' },
    'budget-minutes': { kind: 'number', min: 0.1, max: 24 * 60, default: 10, description: 'time for the search' },
    holdout: { kind: 'number', min: 0, max: 0.9, defaultText: '0', description: 'share of the candidate users kept out of the choice and used to report on it' },
    test: { kind: 'path', valueName: 'TEST.csv', description: 'separate candidates to report on (instead of --holdout)' },
    confidence: { kind: 'number', min: 0, max: 5, default: 0, description: 'require the metric within budget by this many standard errors' },
    'choose-by': { kind: 'choice', choices: ['expected', 'measured'], default: 'expected', description: "'expected': NDCG/HR averaged over which candidate item is the positive (low noise); 'measured': the metric as it is" },
    rounding: {
      kind: 'choice',
      choices: ['nearest', 'output-aware'],
      default: 'nearest',
      description: "low-bit tables: each value to its nearest code, or each row's codes chosen so that the score moves least where the compiled engine runs the model ('output-aware': the same size, a closer copy of the original's ranking)",
    },
    seed: { kind: 'integer', min: 0, max: 2 ** 31 - 1, default: 1, description: 'seed of the holdout split and the training' },
    force: { kind: 'boolean', description: "replace --out and an earlier search's recipes" },
    json: { kind: 'boolean', description: 'print {chosen, front, evaluated, seconds, ...} as JSON' },
    progress: { kind: 'boolean', description: 'show the progress bar even when stderr is not a terminal' },
  },
  rules: [
    { exclusive: ['max-drop', 'target-ratio'] },
    { requires: 'data', when: ['finetune-epochs', 'finetune-count', 'no-distill'], message: '--finetune-epochs / --finetune-count / --no-distill shape the training candidates: they need --data TRAIN.csv' },
  ],
  notes: ["--out keeps the input's format: a .onnx file, or a TF.js model's folder (or its model.json) of its own"],
  examples: ['prunescope compress model.onnx --candidates val.csv --out small.onnx --max-drop 0.02 --data train.csv'],
});

export const SENSITIVITY = defineCommand({
  name: 'sensitivity',
  summary: 'prune each layer alone at several sparsities, evaluate, and propose per-layer targets within a metric-drop budget',
  positionals: [MODEL_POSITIONAL],
  groups: [INPUT_NAMES],
  options: {
    candidates: { kind: 'path', valueName: 'FILE.csv', required: '--candidates FILE.csv is required: the metric is measured on it', description: 'leave-one-out candidates the metric is measured on' },
    k: K_OPTION,
    budget: { kind: 'number', min: 0, max: 1, default: 0.01, description: 'the largest relative metric drop of the proposal' },
    metric: { kind: 'choice', choices: ['ndcg', 'hr'], default: 'ndcg', description: 'the metric the budget is on' },
    sparsities: { kind: 'list', of: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, defaultText: '0.5,0.7,0.8,0.9,0.95', description: 'sparsities each layer is tried at' },
    recipe: { kind: 'path', valueName: 'OUT.json', description: 'write the proposal as a recipe (prunescope run replays it)' },
    force: { kind: 'boolean', description: 'replace an existing --recipe file' },
    json: { kind: 'boolean', description: 'print the result as JSON' },
    progress: { kind: 'boolean', description: 'show the progress bar even when stderr is not a terminal' },
  },
  examples: ['prunescope sensitivity model.onnx --candidates candidates.csv --budget 0.02 --recipe prune.recipe.json'],
});

export const RUN = defineCommand({
  name: 'run',
  summary: 'replay a recipe (JSON: the compression steps in order) on its model, or on the model given',
  positionals: [
    { name: 'recipe.json', description: 'the recipe; its relative paths are relative to its folder', required: true },
    { name: 'model', description: "the model to apply it to, instead of the recipe's" },
  ],
  groups: [COMPRESS_COMMON],
  examples: ['prunescope run small.front/01-8.0x-chosen.recipe.json --out again.onnx'],
});

export const FIELDS = defineCommand({
  name: 'fields',
  summary: 'feature-field importance of a DeepFM-style model (shuffle one field, see the AUC/logloss drop), and removal of the weakest fields',
  positionals: [MODEL_POSITIONAL],
  options: {
    data: { kind: 'path', valueName: 'VALID.csv', description: 'labelled rows with the field columns (importance, --drop, and the before/after check)' },
    metric: { kind: 'choice', choices: ['auc', 'logloss'], default: 'auc', description: 'metric of the permutation importance' },
    repeats: { kind: 'integer', min: 1, max: 100, default: 3, description: 'shuffles per field' },
    seed: { kind: 'integer', min: 0, max: 2 ** 31 - 1, default: 1, description: 'seed of the shuffles' },
    drop: { kind: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, valueName: 'FRACTION', description: 'remove this share of the fields, the least important first' },
    remove: { kind: 'list', valueName: 'FIELD,FIELD', invalidMessage: '--remove needs field names, e.g. --remove noise_a,noise_b', description: 'remove these fields' },
    out: { kind: 'path', description: 'where the model without the fields goes (with --drop or --remove)' },
    'no-compensate': { kind: 'boolean', description: "do not fold the removed fields' mean embedding into the next bias" },
    force: { kind: 'boolean', description: 'replace --out if it exists' },
    json: { kind: 'boolean', description: 'print the result as JSON' },
    progress: { kind: 'boolean', description: 'show the progress bar even when stderr is not a terminal' },
  },
  rules: [{ exclusive: ['drop', 'remove'] }, { requires: 'data', when: ['drop'], message: '--drop needs --data VALID.csv to rank the fields' }],
  notes: ['without --drop or --remove: the importance report, which needs --data; with either: --out is required'],
  examples: ['prunescope fields deepfm.onnx --data valid.csv', 'prunescope fields deepfm.onnx --drop 0.3 --data valid.csv --out smaller.onnx'],
});

export const TREES = defineCommand({
  name: 'trees',
  summary: 'analyse an ONNX-ML tree ensemble (trees, depth/leaf histograms, feature importance, unused features) or prune it: depth, min cover, post-pruning, tree removal, feature removal',
  positionals: [{ name: 'model.onnx', description: 'an ONNX model with a TreeEnsemble node (ai.onnx.ml)', required: true }],
  options: {
    node: { kind: 'string', valueName: 'NAME', description: 'the tree ensemble node, when the graph has several', defaultText: 'the first' },
    data: { kind: 'path', valueName: 'VALID.csv', description: 'validation rows f0,...,label: permutation importance; post and drop choose on a seeded half of it' },
    prune: {
      kind: 'string',
      valueName: 'depth=N|cover=N|post|drop=F|features=F',
      description: 'write a pruned copy: collapse splits at depth N, or with a child cover below N; reduced-error post-pruning; drop a fraction F of the trees; remove a fraction F of the features',
    },
    test: { kind: 'path', valueName: 'TEST.csv', description: 'held-out rows to report on: post / drop then choose on all of --data; depth, cover and features report on it too' },
    tolerance: { kind: 'number', min: 0, valueName: 'T', defaultText: '0 for post, 0.005 for drop', description: 'post / drop: the metric may fall this much (post collapses beyond the splits that cost neither metric nor log-loss)' },
    out: { kind: 'path', description: 'where the pruned model goes' },
    force: { kind: 'boolean', description: 'replace --out if it exists' },
    json: { kind: 'boolean', description: 'print the result as JSON' },
  },
  rules: [
    { requires: 'prune', when: ['out', 'tolerance', 'test'], message: '--out, --tolerance and --test go with --prune' },
    { requires: 'out', when: ['prune'], message: '--prune needs --out PATH' },
  ],
  notes: ['--prune post and drop need --data; --tolerance goes with post or drop; --test with --data'],
  examples: ['prunescope trees gbdt.onnx --data valid.csv', 'prunescope trees gbdt.onnx --prune drop=0.3 --data valid.csv --out smaller.onnx'],
});

export const DEMO = defineCommand({
  name: 'demo',
  summary: 'build a sample NeuMF recommender (TF.js + ONNX), train it briefly, analyse it, print the report',
  options: {
    dir: { kind: 'path', default: 'prunescope-demo', description: 'the folder the sample model and data go to' },
    model: { kind: 'choice', choices: ['neumf', 'two-tower', 'deepfm'], default: 'neumf', invalidMessage: '--model must be one of neumf, two-tower, deepfm', description: 'which sample recommender' },
    json: { kind: 'boolean', description: 'print the reports as JSON (the log goes to stderr)' },
  },
  examples: ['prunescope demo --dir /tmp/demo'],
});

/** Every command, in the order of the global help. */
export const COMMAND_SPECS = [ANALYZE, MERGE, WORKER, EVAL, BENCH, PRUNE, QUANTIZE, FACTORIZE, DISTILL, FINETUNE, COMPRESS, SENSITIVITY, RUN, FIELDS, TREES, DEMO] as const;
