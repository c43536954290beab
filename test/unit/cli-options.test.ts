// The command line's one source (src/cli/options.ts, command-specs.ts): every option a command's
// parser accepts appears in its --help and the other way round (checked from the specs and from
// the printed help of the built CLI), every command parses with its spec, and the spec-level
// checks (types, ranges, choices, exclusive / requires / anyOf rules) give exact messages and
// exit code 2.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { COMMAND_SPECS } from '../../src/cli/command-specs.js';
import { defineCommand, defineGroup, type Command, type OptionSpec } from '../../src/cli/options.js';
import { UsageError } from '../../src/cli/args.js';
import { ORT_EP_PREFERENCES } from '../../src/core/runtime/ort-providers.js';
import { SAMPLE_KINDS } from '../../src/core/samples/sample-models.js';

const CLI_DIR = join(__dirname, '..', '..', 'src', 'cli');
const CLI = join(CLI_DIR, 'main.js');
const COMMAND_NAMES = ['analyze', 'merge', 'worker', 'eval', 'bench', 'prune', 'quantize', 'factorize', 'distill', 'finetune', 'compress', 'sensitivity', 'run', 'fields', 'trees', 'demo'];

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The flags a help text lists in its Options section (the first word of each entry). */
function printedFlags(help: string): string[] {
  const section = help.split('\nOptions:\n')[1]?.split('\n\n')[0] ?? '';
  return section.split('\n').flatMap((l) => /^ {2}(--[a-z0-9-]+)/.exec(l)?.[1] ?? []);
}

function flagsOf(cmd: Command<unknown>): string[] {
  return Object.keys(cmd.options).map((n) => `--${n}`);
}

/** A value the spec accepts (the range's inner side). */
function sampleValue(o: OptionSpec): string | undefined {
  if (o.kind === 'boolean') return undefined;
  if (o.kind === 'choice') return o.choices![0];
  if (o.kind === 'number' || o.kind === 'integer' || (o.kind === 'list' && o.of && o.of !== 'string')) {
    const lo = o.min ?? 0;
    const hi = o.max ?? lo + 2;
    return String(o.kind === 'number' || o.of === 'number' ? (lo + hi) / 2 : Math.ceil((lo + hi) / 2));
  }
  return 'x.csv';
}

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsageError, `not a UsageError: ${String(e)}`);
    return e.message;
  }
  return '';
}

test('every command has a spec, in the order of the global help', () => {
  assert.deepEqual(
    COMMAND_SPECS.map((c) => c.name),
    COMMAND_NAMES,
  );
  const help = run('--help');
  assert.equal(help.code, 0, help.stderr);
  for (const c of COMMAND_SPECS) {
    assert.ok(help.stdout.includes(`  ${c.name.padEnd(11)} ${c.summary}`), c.name);
    assert.ok(help.stdout.includes(`  ${c.usage()}\n`), c.name);
  }
});

test('drift, from the specs: every option the parser accepts is in the help, and the help lists nothing else', () => {
  for (const cmd of COMMAND_SPECS) {
    assert.deepEqual(printedFlags(cmd.help()), flagsOf(cmd), cmd.name);
    for (const [name, o] of Object.entries(cmd.options)) {
      const v = sampleValue(o);
      const msg = usageError(() => cmd.parse([...cmd.positionals.filter((p) => p.required).map(() => 'm.onnx'), `--${name}`, ...(v === undefined ? [] : [v])]));
      assert.doesNotMatch(msg, new RegExp(`^(Unknown option|Option '--${name}|--${name} must be)`), `${cmd.name} --${name} ${v ?? ''}: ${msg}`);
    }
    assert.match(usageError(() => cmd.parse(['m.onnx', '--no-such-flag'])), /Unknown option '--no-such-flag'/, cmd.name);
  }
});

test('drift, from the built CLI: `prunescope <cmd> --help` prints exactly the flags the spec parses', () => {
  for (const cmd of COMMAND_SPECS) {
    const r = run(cmd.name, '--help');
    assert.equal(r.code, 0, `${cmd.name}: ${r.stderr}`);
    assert.equal(r.stdout, `${cmd.help()}\n\nExit codes: 0 success, 1 the model or data could not be processed, 2 usage error, 130 cancelled (nothing written).\n`);
    assert.deepEqual(printedFlags(r.stdout).sort(), flagsOf(cmd).sort(), cmd.name);
  }
});

test('the flags scripts used before the specs are all still accepted (the CLI is a contract: add, never rename)', () => {
  const before: Record<string, string> = {
    analyze: 'json out epsilon no-spectrum top tensors progress',
    merge: 'json out force top tensors',
    worker: 'redis concurrency',
    eval: 'candidates data k user-input item-input fields-input user-column item-column label-column latency backend ep json',
    bench: 'batch runs warmup user-input item-input fields-input backend ep json',
    prune: 'out force json candidates k no-latency progress sparsity scope structure table tensors importance finetune epochs lr batch-size steps ramp-epochs frequency granularity per-layer regrow-epochs output-kind',
    quantize: 'out force json candidates k no-latency progress dtype tensors dense lookup full-range',
    factorize: 'out force json candidates k no-latency progress rank energy tensors min-saving',
    distill: 'out force json candidates k no-latency progress sample-keep sample-by sample-warmup output-kind engine data student-dim ratio hidden epochs alpha temperature lr seed negatives batch-size',
    finetune: 'out force json candidates k no-latency progress sample-keep sample-by sample-warmup output-kind engine data epochs lr batch-size masks negatives teacher alpha temperature quant-aware quant-scales',
    compress: 'candidates max-drop metric k target-ratio max-latency-ratio latency-batch data budget-minutes holdout test seed finetune-epochs finetune-count no-distill confidence out force json',
    sensitivity: 'candidates k budget metric sparsities recipe json progress user-input item-input',
    run: 'out force json candidates k no-latency progress',
    fields: 'data metric repeats seed drop remove out no-compensate force json progress',
    trees: 'json node data test prune tolerance out force',
    demo: 'dir model json',
  };
  // every flag of before is still there (new ones may be added)
  for (const cmd of COMMAND_SPECS) {
    const now = new Set(Object.keys(cmd.options));
    assert.deepEqual(before[cmd.name].split(' ').filter((f) => !now.has(f)), [], cmd.name);
  }
});

test('every command parses with its spec (no hand-written parseArgs tables left)', () => {
  const files = readdirSync(join(__dirname, '..', '..', '..', 'src', 'cli')).filter((f) => f.endsWith('-command.ts'));
  assert.equal(files.length, COMMAND_NAMES.length);
  for (const f of files) {
    const text = readFileSync(join(__dirname, '..', '..', '..', 'src', 'cli', f), 'utf8');
    assert.doesNotMatch(text, /parseArgs\(|type: 'string'/, f);
    assert.match(text, /[A-Z]+\.parse\(argv\)/, f);
  }
});

test('choices the specs list equal the engine\'s own lists', () => {
  const evalSpec = COMMAND_SPECS.find((c) => c.name === 'eval')!;
  const demo = COMMAND_SPECS.find((c) => c.name === 'demo')!;
  assert.deepEqual(evalSpec.options.ep.choices, ORT_EP_PREFERENCES);
  assert.deepEqual(demo.options.model.choices, SAMPLE_KINDS);
});

// ---------------- the spec-level checks, on a spec of its own ----------------

const SHARED = defineGroup({
  options: {
    keep: { kind: 'number', min: 0, minExclusive: true, max: 1, valueName: 'FRACTION', description: 'kept share' },
    by: { kind: 'choice', choices: ['loss', 'gradnorm'], default: 'loss', description: 'scoring' },
  },
  rules: [{ requires: 'keep', when: ['by'] }],
});

const T = defineCommand({
  name: 't',
  summary: 'a test command',
  positionals: [{ name: 'model', description: 'the model', required: true }, { name: 'extra', description: 'optional' }],
  groups: [SHARED],
  options: {
    k: { kind: 'integer', min: 1, max: 1000, default: 10, description: 'the K' },
    seed: { kind: 'integer', min: 0, description: 'seed' },
    ratio: { kind: 'number', min: 0, max: 0.99, description: 'ratio' },
    free: { kind: 'number', description: 'any number' },
    metric: { kind: 'choice', choices: ['ndcg', 'hr', 'auc'], default: 'ndcg', description: 'metric' },
    scope: { kind: 'choice', choices: ['global', 'layer'], description: 'scope' },
    ep: { kind: 'choice', choices: ['cpu', 'cuda'], invalidMessage: '--ep must be one of cpu, cuda', description: 'ep' },
    batch: { kind: 'list', of: 'integer', min: 1, repeatable: true, default: [1, 64], description: 'batches' },
    names: { kind: 'list', description: 'names' },
    data: { kind: 'path', valueName: 'FILE.csv', description: 'data' },
    out: { kind: 'path', required: '--out PATH is required (the output)', description: 'output' },
    'max-drop': { kind: 'number', description: 'budget' },
    'target-ratio': { kind: 'number', description: 'budget' },
    teacher: { kind: 'path', valueName: 'MODEL', description: 'teacher' },
    alpha: { kind: 'number', description: 'weight' },
    rank: { kind: 'integer', min: 1, valueName: 'R', description: 'rank' },
    energy: { kind: 'number', valueName: 'E', description: 'energy' },
    json: { kind: 'boolean', description: 'json' },
  },
  rules: [{ exclusive: ['max-drop', 'target-ratio'] }, { requires: 'teacher', when: ['alpha'] }, { anyOf: ['rank', 'energy'] }],
  examples: ['prunescope t m.onnx --out x --rank 2'],
});

const ok = ['m.onnx', '--out', 'o.onnx', '--rank', '2'];

test('spec: typed values, defaults, and what was given', () => {
  const p = T.parse([...ok, '--batch', '2,3', '--batch', '5', '--names', ' a, b ,,c', '--json', '--seed', '0', '--free', '-3.5']);
  assert.deepEqual(p.positionals, ['m.onnx']);
  assert.equal(p.values.k, 10);
  assert.equal(p.values.metric, 'ndcg');
  assert.equal(p.values.by, 'loss');
  assert.deepEqual(p.values.batch, [2, 3, 5]);
  assert.deepEqual(p.values.names, ['a', 'b', 'c']);
  assert.equal(p.values.json, true);
  assert.equal(p.values.seed, 0);
  assert.equal(p.values.free, -3.5);
  assert.equal(p.values.ratio, undefined);
  assert.equal(p.values.scope, undefined);
  assert.deepEqual([...p.given].sort(), ['batch', 'free', 'json', 'names', 'out', 'rank', 'seed']);
  const d = T.parse(ok);
  assert.deepEqual(d.values.batch, [1, 64]);
  assert.equal(d.values.json, false);
  d.values.batch.push(9); // defaults are copies
  assert.deepEqual(T.parse(ok).values.batch, [1, 64]);
});

test('spec: exact messages of the type, range and choice checks', () => {
  const cases: Array<[string[], string]> = [
    [['--k', 'x'], "--k must be a positive integer up to 1000, got 'x'"],
    [['--k', '2.5'], "--k must be a positive integer up to 1000, got '2.5'"],
    [['--k', '1001'], "--k must be a positive integer up to 1000, got '1001'"],
    [['--k', ''], "--k must be a positive integer up to 1000, got ''"],
    [['--seed', '-1'], "--seed must be a non-negative integer, got '-1'"],
    [['--ratio', '2'], "--ratio must be a number in [0, 0.99], got '2'"],
    [['--ratio', 'NaN'], "--ratio must be a number in [0, 0.99], got 'NaN'"],
    [['--free', 'Infinity'], "--free must be a number, got 'Infinity'"],
    [['--keep', '0'], "--keep must be a number in (0, 1], got '0'"],
    [['--metric', 'mrr'], "--metric must be ndcg, hr or auc, got 'mrr'"],
    [['--scope', 'all'], "--scope must be 'global' or 'layer', got 'all'"],
    [['--ep', 'tpu'], "--ep must be one of cpu, cuda, got 'tpu'"],
    [['--batch', '1,0'], "--batch must be a positive integer, got '0' in '1,0'"],
    [['--batch', '4', '--batch', 'x'], "--batch must be a positive integer, got 'x'"],
    [['--names', ' , '], "--names needs at least one name, got ' , '"],
    [['--k'], "Option '--k <value>' argument missing"],
    [['--k', '10', '--k', '5'], '--k is given more than once: give it once'],
    [['--json', '--json'], '--json is given more than once: give it once'],
    [['--json=1'], "Option '--json' does not take an argument"],
  ];
  for (const [args, message] of cases) assert.equal(usageError(() => T.parse([...ok, ...args])), message, args.join(' '));
  // node's own words (they vary a little between versions)
  // node's hint on '--' (with an unbalanced quote) is cut: the usage line follows the message
  assert.equal(usageError(() => T.parse([...ok, '--speed'])), "Unknown option '--speed'; did you mean --seed?");
  assert.equal(usageError(() => T.parse([...ok, '--frobnicate'])), "Unknown option '--frobnicate'");
  // a near miss names the option meant (case, dashes and underscores aside, 2 edits at most)
  assert.equal(usageError(() => T.parse([...ok, '--jsn'])), "Unknown option '--jsn'; did you mean --json?");
  assert.equal(usageError(() => T.parse([...ok, '--n_ames', 'a'])), "Unknown option '--n_ames'; did you mean --names?");
});

test('prune refuses options of another kind of pruning (they were ignored); factorize takes --rank or --energy, not both', async () => {
  const { pruneCommand } = await import('../../src/cli/prune-command.js');
  const cases: Array<[string[], string]> = [
    [['--structure', 'rows', '--granularity', 'column'], '--granularity applies to magnitude pruning (--structure none), not --structure rows'],
    [['--structure', 'dims', '--scope', 'layer'], '--scope applies to magnitude pruning (--structure none), not --structure dims'],
    [['--structure', 'neurons', '--tensors', 'embeddings'], '--tensors applies to magnitude pruning (--structure none), not --structure neurons'],
    [['--structure', 'rows', '--steps', '3'], '--steps above 1 applies to magnitude pruning (--structure none), not --structure rows'],
    [['--table', 'item'], '--table goes with --structure rows or dims, not --structure none'],
    [['--structure', 'rows', '--importance', 'l2xnext'], '--importance goes with --structure neurons, not --structure rows'],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(pruneCommand(['m.onnx', '--sparsity', '0.5', ...args]), (e: unknown) => e instanceof Error && e.message === message, args.join(' '));
  }
  const factorize = COMMAND_SPECS.find((c) => c.name === 'factorize')!;
  assert.equal(usageError(() => factorize.parse(['m.onnx', '--rank', '4', '--energy', '0.9'])), 'give --rank R or --energy E, not both');
  factorize.parse(['m.onnx', '--energy', '0.9']);
});

test('quantize --full-range needs --dense (it changes only the dynamic integer MatMul)', () => {
  const quantize = COMMAND_SPECS.find((c) => c.name === 'quantize')!;
  assert.equal(usageError(() => quantize.parse(['m.onnx', '--dtype', 'int8', '--full-range'])), '--full-range goes with --dense dynamic (weights-only kernels are 8-bit already)');
  quantize.parse(['m.onnx', '--dtype', 'int8', '--dense', 'dynamic', '--full-range']);
});

test('compress: the training flags need --data (they were ignored without it)', () => {
  const compress = COMMAND_SPECS.find((c) => c.name === 'compress')!;
  const base = ['m.onnx', '--candidates', 'c.csv', '--out', 'x.onnx'];
  for (const flags of [['--finetune-epochs', '3'], ['--finetune-count', '2'], ['--no-distill']]) {
    assert.equal(usageError(() => compress.parse([...base, ...flags])), '--finetune-epochs / --finetune-count / --no-distill shape the training candidates: they need --data TRAIN.csv', flags.join(' '));
    compress.parse([...base, ...flags, '--data', 't.csv']);
  }
});

test('spec: positionals, required options and the rules', () => {
  const cases: Array<[string[], string]> = [
    [['--out', 'o', '--rank', '1'], 'missing <model>: the model'],
    [['a', 'b', 'c', '--out', 'o', '--rank', '1'], "unexpected argument 'c'"],
    [['m', '--rank', '1'], '--out PATH is required (the output)'],
    [[...ok, '--max-drop', '0.1', '--target-ratio', '3'], 'give --max-drop or --target-ratio, not both'],
    [[...ok, '--alpha', '0.5'], '--alpha needs --teacher MODEL'],
    [[...ok, '--by', 'gradnorm'], '--by needs --keep FRACTION'],
    [['m', '--out', 'o'], 'give --rank R or --energy E'],
  ];
  for (const [args, message] of cases) assert.equal(usageError(() => T.parse(args)), message, args.join(' '));
  // rules look at what was given, not at defaults: --by has a default and needs --keep only when given
  assert.equal(T.parse(ok).values.by, 'loss');
  assert.doesNotThrow(() => T.parse([...ok, '--alpha', '0.5', '--teacher', 't.onnx', '--keep', '0.5', '--by', 'gradnorm']));
});

test('spec: the help lists usage, arguments, every option with its kind, range, default, the rules and examples', () => {
  const h = T.help();
  assert.match(h, /^Usage: prunescope t <model> \[extra\] --out PATH \(--rank R \| --energy E\) \[options\]\n\na test command\n/);
  assert.match(h, /\n {2}<model> +the model\n {2}\[extra\] +optional\n/);
  assert.match(h, /\n {2}--k N +the K \(a positive integer up to 1000; default: 10\)\n/);
  assert.match(h, /\n {2}--metric ndcg\|hr\|auc +metric \(default: ndcg\)\n/);
  assert.match(h, /\n {2}--batch N,N +batches \(each a positive integer; may be repeated; default: 1,64\)\n/);
  assert.match(h, /\n {2}--out PATH +output \(required\)\n/);
  assert.match(h, /\n {2}--keep FRACTION +kept share \(a number in \(0, 1\]\)\n/);
  assert.match(h, /\nRules:\n {2}- give --max-drop or --target-ratio, not both\n {2}- --alpha needs --teacher MODEL\n {2}- give --rank R or --energy E\n {2}- --by needs --keep FRACTION\n/);
  assert.match(h, /\nExamples:\n {2}prunescope t m.onnx --out x --rank 2$/);
  // the command's own options come first, then the groups'
  assert.deepEqual(printedFlags(h).slice(-2), ['--keep', '--by']);
});

test('spec: mistakes in a spec are caught when it is defined', () => {
  assert.throws(() => defineCommand({ name: 'x', summary: '', options: { a: { kind: 'boolean', description: '' } }, rules: [{ exclusive: ['a', 'b'] }] }), /a rule names the unknown option --b/);
  assert.throws(() => defineCommand({ name: 'x', summary: '', groups: [SHARED], options: { keep: { kind: 'boolean', description: '' } } }), /--keep is declared twice/);
});

test('built CLI: each kind of usage error exits 2 with one message and the usage line', () => {
  const missing = join(tmpdir(), 'no-such-model.onnx');
  const cases: Array<[string[], RegExp]> = [
    [['analyze', missing, '--frobnicate'], /^prunescope analyze: Unknown option '--frobnicate'/],
    [['analyze', missing, '--top'], /^prunescope analyze: Option '--top <value>' argument missing/],
    [['analyze', missing, '--top', '1.5'], /^prunescope analyze: --top must be a non-negative integer up to 1000, got '1.5'/],
    [['analyze', missing, '--epsilon', 'abc'], /^prunescope analyze: --epsilon must be a number in \[0, 1000000\], got 'abc'/],
    [['analyze'], /^prunescope analyze: missing <model>/],
    [['analyze', 'a', 'b'], /^prunescope analyze: unexpected argument 'b'/],
    [['demo', '--model', 'dlrm'], /^prunescope demo: --model must be one of neumf, two-tower, deepfm, got 'dlrm'/],
    [['bench', missing, '--batch', '8,0'], /^prunescope bench: --batch must be a positive integer up to 4194304, got '0' in '8,0'/],
    [['quantize', missing], /^prunescope quantize: --dtype must be int8, int4, int3, int2 \(ONNX embedding tables\), float16, uint8 or uint16\n/],
    [['factorize', missing], /^prunescope factorize: give --rank R or --energy E \(e\.g\. 0\.95\)/],
    [['finetune', missing, '--data', 'd.csv', '--temperature', '2'], /^prunescope finetune: --alpha and --temperature weigh a teacher's soft targets: give --teacher MODEL/],
    [['finetune', missing, '--data', 'd.csv', '--quant-scales', 'column'], /^prunescope finetune: --quant-scales goes with --quant-aware int4\|int3\|int2/],
    [['finetune', missing, '--data', 'd.csv', '--quant-aware', 'int8'], /^prunescope finetune: --quant-aware must be int4, int3 or int2, got 'int8'/],
    [['distill', missing, '--data', 'd.csv', '--sample-by', 'loss'], /^prunescope distill: --sample-by \/ --sample-warmup need --sample-keep FRACTION/],
    [['distill', missing, '--data', 'd.csv', '--hidden', '32,x'], /^prunescope distill: --hidden must be a positive integer, got 'x' in '32,x'/],
    [['fields', missing, '--drop', '0.3', '--remove', 'a'], /^prunescope fields: give --drop or --remove, not both/],
    [['sensitivity', missing, '--candidates', 'c.csv', '--sparsities', '0.5,1'], /^prunescope sensitivity: --sparsities must be a number in \(0, 1\), got '1' in '0.5,1'/],
    [['trees', missing, '--tolerance', '0.1'], /^prunescope trees: --out, --tolerance and --test go with --prune/],
    [['run'], /^prunescope run: missing <recipe\.json>/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.match(r.stderr, new RegExp(`\\nUsage: prunescope ${args[0]} .*\\n\\(prunescope ${args[0]} --help lists every option\\)\\n$`), args.join(' '));
    assert.equal(r.stdout, '');
  }
});
