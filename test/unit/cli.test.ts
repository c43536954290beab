// The command line as scripts see it: exit codes, one-line errors naming the file, the JSON
// contract of `analyze --json`, and the human table.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import type { ModelReport } from '../../src/shared/report.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorBytes } from '../../src/core/model/tensor-data.js';
import { buildNeuMF } from '../../src/core/samples/models.js';
import { fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import type { EvaluationResult } from '../../src/core/eval/evaluate.js';
import { formatEvaluation } from '../../src/cli/eval-command.js';

const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A tiny TF.js NeuMF (6 users, 7 items) saved as `modelJson` and its shard beside it. */
async function saveTinyNeumf(modelJson: string): Promise<void> {
  const neumf = buildNeuMF({ users: 6, items: 7, gmfDim: 2, mlpDim: 2, hidden: [4], seed: 1 });
  try {
    await neumf.save(fileSystemSaveHandler(modelJson));
  } finally {
    neumf.dispose();
  }
}

/** An embedding table with 3 zero rows of 8, a dense kernel with 2 zeros, a bias, an int64 shape constant. */
async function smallOnnx(dir: string): Promise<string> {
  const table = new Float32Array(8 * 4).map((_, i) => (Math.floor(i / 4) < 3 ? 0 : 0.1 * (i % 7) + 0.05));
  const kernel = new Float32Array([0, 1, 2, 0, 3, 4, 5, 6]);
  const b = new OnnxGraphBuilder({ graphName: 'cli_test' })
    .input('item', 'int64', ['batch'])
    .output('score', 'float32', ['batch', 2])
    .initializer('item_embedding.weight', 'float32', [8, 4], table)
    .initializer('fc.weight', 'float32', [4, 2], kernel)
    .initializer('fc.bias', 'float32', [2], new Float32Array([0.5, 0]))
    .initializer('shape', 'int64', [2], new BigInt64Array([-1n, 4n]))
    .node('Gather', ['item_embedding.weight', 'item'], ['e'], {}, { name: '/item_embedding/Gather' })
    .node('Reshape', ['e', 'shape'], ['e2'], {}, { name: '/Reshape' })
    .node('MatMul', ['e2', 'fc.weight'], ['h'], {}, { name: '/fc/MatMul' })
    .node('Add', ['h', 'fc.bias'], ['score'], {}, { name: '/fc/Add' });
  const path = join(dir, 'small.onnx');
  await writeOnnxFile(path, b.toModelProto());
  return path;
}

test('analyze --json: the contract fields, exact counts, exit 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-'));
  const path = await smallOnnx(dir);
  const r = run('analyze', path, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
  const rep = JSON.parse(r.stdout) as ModelReport;
  assert.equal(rep.format, 'onnx');
  assert.equal(rep.totalParams, 32 + 8 + 2 + 2);
  assert.equal(rep.constantParams, 2);
  assert.equal(rep.trainableParams, 42);
  assert.equal(rep.totalZeros, 12 + 2 + 1);
  assert.equal(rep.trainableZeros, 15);
  const byName = new Map(rep.tensors.map((t) => [t.name, t]));
  const table = byName.get('item_embedding.weight')!;
  assert.deepEqual(
    { shape: table.shape, dtype: table.dtype, params: table.params, zeros: table.zeros, role: table.role, layer: table.layer },
    { shape: [8, 4], dtype: 'float32', params: 32, zeros: 12, role: 'embedding', layer: 'item_embedding' },
  );
  assert.equal(table.rows?.zeroRows, 3);
  assert.equal(byName.get('fc.weight')!.role, 'dense-kernel');
  assert.equal(byName.get('fc.bias')!.role, 'bias');
  assert.equal(byName.get('shape')!.role, 'constant');
  assert.equal(byName.get('shape')!.trainable, false);
  for (const t of rep.tensors) for (const k of ['name', 'shape', 'dtype', 'params', 'zeros', 'role', 'layer']) assert.ok(k in t, `tensor field ${k}`);
});

test('analyze prints a layer table and the opportunities; --out writes the JSON report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-'));
  const path = await smallOnnx(dir);
  const out = join(dir, 'report.json');
  const r = run('analyze', path, '--out', out, '--top', '2');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /format onnx · 44 params \(42 trainable, 2 in constants\)/);
  assert.match(r.stdout, /^item_embedding\s+Gather\s+embedding\s+\[8x4\]\s+32\s+76\.2%\s+37\.5%\s+37\.5% rows$/m);
  assert.match(r.stdout, /^fc\s+MatMul\s+dense-kernel,bias\s+\[4x2\] \[2\]\s+10\s+23\.8%\s+30\.0%\s+30\.0%$/m);
  const rep = JSON.parse(readFileSync(out, 'utf8')) as ModelReport;
  assert.equal(rep.totalParams, 44);
  // a model this small has no opportunity worth its bytes
  assert.deepEqual(rep.opportunities, []);
  assert.match(r.stdout, /\nNo compression opportunity found\.\n/);
});

test('analyze --top N lists N opportunities; --top 0 lists none but says how many there are', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-top-'));
  const file = join(dir, 'm.onnx');
  // 400 x 32, half its rows zero and the rest rank 2: prune rows, factorize and int8 all apply
  const table = Float32Array.from({ length: 400 * 32 }, (_, i) => {
    const [r, c] = [Math.floor(i / 32), i % 32];
    return r % 2 ? 0 : Math.sin(r) * Math.cos(c) + Math.cos(r) * Math.sin(2 * c);
  });
  await writeOnnxFile(file, new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', 32])
    .initializer('table.weight', 'float32', [400, 32], table)
    .node('Gather', ['table.weight', 'ids'], ['y'], { axis: 0 }, { name: '/table/Gather' })
    .toModelProto());
  const rep = JSON.parse(run('analyze', file, '--json').stdout) as ModelReport;
  assert.deepEqual(rep.opportunities.map((o) => o.kind).sort(), ['factorize', 'prune-rows', 'quantize-int8']);
  const one = run('analyze', file, '--top', '1');
  assert.match(one.stdout, /\nBiggest opportunities \(of 3\):\n  1\. /);
  assert.doesNotMatch(one.stdout, /\n  2\. /);
  const none = run('analyze', file, '--top', '0');
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /\n3 compression opportunities found \(--top N lists them\)\.\n/);
  assert.doesNotMatch(none.stdout, /No compression opportunity found/);
});

test('bad input: one line on stderr naming the file and the reason, exit 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-'));
  const truncated = join(dir, 'cut.onnx');
  writeFileSync(truncated, Buffer.from([0x08, 0x07, 0x12, 0x40, 0x01, 0x02]));
  const notModel = join(dir, 'package.json');
  writeFileSync(notModel, '{"name": "x"}');
  const escape = join(dir, 'model.json');
  writeFileSync(escape, JSON.stringify([{ paths: ['../outside.bin'], weights: [{ name: 'w', shape: [1], dtype: 'float32' }] }]));
  for (const [file, reason] of [
    [truncated, /truncated|ends|not an ONNX/i],
    [notModel, /not a TF\.js model/],
    [escape, /outside|\.\./],
    [join(dir, 'missing.onnx'), /ENOENT|cannot open/],
  ] as const) {
    const r = run('analyze', file);
    assert.equal(r.code, 1, `${file}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0].includes(file), `names the file: ${lines[0]}`);
    assert.match(lines[0], reason);
  }
});

test('usage errors exit 2; --help and --version exit 0', () => {
  assert.equal(run('analyze').code, 2);
  assert.equal(run('analyze', 'a', 'b').code, 2);
  assert.equal(run('analyze', 'x.onnx', '--epsilon', 'abc').code, 2);
  assert.equal(run('frobnicate').code, 2);
  assert.equal(run().code, 2);
  const help = run('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /prunescope analyze/);
  const v = run('--version');
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  assert.ok(!existsSync(join(process.cwd(), 'x.onnx')));
});

test('prune: the gradual and column flags are checked before any model is read', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--per-layer', 'a=2'], /--per-layer wants NAME=SPARSITY pairs/],
    [['--per-layer', 'a=0.5'], /--per-layer needs --scope layer/],
    [['--granularity', 'rows'], /--granularity must be 'element' or 'column'/],
    [['--ramp-epochs', '2'], /--ramp-epochs needs --finetune/],
    [['--ramp-epochs', '2', '--finetune', 'd.csv', '--epochs', '4', '--steps', '3'], /not both/],
    [['--ramp-epochs', '5', '--finetune', 'd.csv', '--epochs', '4'], /--ramp-epochs must be a number in \[0, 4\]/],
    [['--frequency', '10'], /--frequency goes with --ramp-epochs or --regrow-epochs/],
    [['--regrow-epochs', '1'], /--regrow-epochs needs --finetune/],
    [['--regrow-epochs', '4', '--finetune', 'd.csv', '--epochs', '3'], /--regrow-epochs must be a number in \[0, 3\]/],
    [['--regrow-epochs', '1', '--ramp-epochs', '1', '--finetune', 'd.csv', '--epochs', '3'], /--ramp-epochs \(gradual pruning\) or --regrow-epochs/],
    [['--regrow-epochs', '1', '--steps', '2', '--finetune', 'd.csv', '--epochs', '3'], /--steps .* or --regrow-epochs/],
    [['--output-kind', 'logit'], /--output-kind needs --finetune/],
    [['--output-kind', 'odds', '--finetune', 'd.csv'], /--output-kind must be auto, probability, logit or rating/],
  ];
  for (const [flags, message] of cases) {
    const r = run('prune', 'missing.onnx', '--sparsity', '0.9', ...flags);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, flags.join(' '));
  }
});

test('quantize: the training and rounding flags are checked before any model is read', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--dtype', 'int8', '--finetune', 'd.csv'], /^prunescope quantize: --finetune trains the tables through the rounding of int4, int3 or int2; --dtype int8 keeps the metric without it/],
    [['--dtype', 'int4', '--finetune', 'd.csv', '--tensors', 'user_embedding,item_embedding'], /give --tensors embeddings \(or all\), not a list of tables/],
    [['--dtype', 'int4', '--epochs', '3'], /^prunescope quantize: --epochs \/ --lr \/ --batch-size need --finetune INTERACTIONS\.csv/],
    [['--dtype', 'int4', '--no-teacher'], /^prunescope quantize: --no-teacher goes with --finetune INTERACTIONS\.csv/],
    [['--dtype', 'int4', '--output-kind', 'logit'], /^prunescope quantize: --output-kind needs --finetune INTERACTIONS\.csv/],
    [['--dtype', 'int8', '--finetune', 'd.csv', '--shard', '1/2', '--out', 'x.qshard'], /^prunescope quantize: --finetune trains the whole model: it does not go with --shard, --from-shards or --distribute/],
    [['--dtype', 'int8', '--rounding', 'output-aware'], /^prunescope quantize: --rounding output-aware is for --dtype int4, int3 or int2; int8 rounds to nearest/],
    [['--dtype', 'int4', '--calibration', 'c.csv'], /^prunescope quantize: --calibration goes with --rounding output-aware/],
    [['--dtype', 'int4', '--rounding', 'nearest', '--calibration', 'c.csv'], /^prunescope quantize: --calibration goes with --rounding output-aware/],
    [['--dtype', 'int4', '--rounding', 'closest'], /^prunescope quantize: --rounding must be/],
  ];
  for (const [flags, message] of cases) {
    const r = run('quantize', 'missing.onnx', ...flags);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, flags.join(' '));
  }
});

test('--external-data: tensors of 1 KiB or more go to <out>.data, the same bytes as without it; a TF.js output refuses it (exit 2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-external-'));
  const table = new Float32Array(64 * 16).map((_, i) => Math.sin(i) * 0.1);
  const b = new OnnxGraphBuilder({ graphName: 'cli_external' })
    .input('item', 'int64', ['batch'])
    .output('score', 'float32', ['batch', 2])
    .initializer('item_embedding.weight', 'float32', [64, 16], table)
    .initializer('fc.weight', 'float32', [16, 2], new Float32Array(32).fill(0.25))
    .node('Gather', ['item_embedding.weight', 'item'], ['e'], {}, { name: '/item_embedding/Gather' })
    .node('MatMul', ['e', 'fc.weight'], ['score'], {}, { name: '/fc/MatMul' });
  const model = join(dir, 'm.onnx');
  await writeOnnxFile(model, b.toModelProto());
  const plain = run('prune', model, '--sparsity', '0.5', '--out', join(dir, 'plain.onnx'), '--no-latency');
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(existsSync(join(dir, 'plain.onnx.data')), false);
  const ext = run('prune', model, '--sparsity', '0.5', '--external-data', '--out', join(dir, 'ext.onnx'), '--no-latency', '--json');
  assert.equal(ext.code, 0, ext.stderr);
  assert.deepEqual((JSON.parse(ext.stdout) as { outputFiles: string[] }).outputFiles.sort(), [join(dir, 'ext.onnx'), join(dir, 'ext.onnx.data')]);
  const [a, c] = [await readModel(join(dir, 'plain.onnx')), await readModel(join(dir, 'ext.onnx'))];
  const where = (ir: typeof a) => ir.tensors.map((t) => `${t.name}:${t.storage.source.kind}`);
  // the 4 KiB table is in the data file; the 128-byte kernel stays inline
  assert.deepEqual(where(c), ['item_embedding.weight:file', 'fc.weight:bytes']);
  assert.deepEqual(where(a), ['item_embedding.weight:bytes', 'fc.weight:bytes']);
  for (const t of a.tensors) assert.deepEqual(await readTensorBytes(c.tensors.find((x) => x.name === t.name)!), await readTensorBytes(t), t.name);
  // a TF.js model keeps its weights in shards: --external-data is refused before any work
  const tfjs = join(dir, 'tfjs');
  await saveTinyNeumf(join(tfjs, 'model.json'));
  const refused = run('quantize', join(tfjs, 'model.json'), '--dtype', 'int8', '--external-data', '--out', join(dir, 'q'));
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^prunescope quantize: --external-data is an ONNX layout, for ONNX models: a TF\.js model keeps its weights in shard files/);
  assert.equal(existsSync(join(dir, 'q')), false);
});

test('--out keeps the input format: a TF.js output given as a folder becomes <folder>/model.json; a name that fits no format exits 2, writing nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-outpath-'));
  const src = join(dir, 'src');
  const model = buildNeuMF({ users: 12, items: 15, gmfDim: 4, mlpDim: 4, hidden: [8], seed: 3 });
  await model.save(fileSystemSaveHandler(join(src, 'model.json')));
  model.dispose();
  const folder = join(dir, 'half');
  const r = run('quantize', join(src, 'model.json'), '--dtype', 'float16', '--out', folder, '--no-latency');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(folder).sort(), ['group1-shard1of1.bin', 'model.json']);
  assert.deepEqual(readdirSync(dir).sort(), ['half', 'src'], 'nothing written beside the output folder');
  const onnx = await smallOnnx(dir);
  for (const [input, out, message] of [
    [onnx, join(dir, 'small-q'), /--out .*small-q: an ONNX model's output is a \.onnx file/],
    [join(src, 'model.json'), join(dir, 'q.onnx'), /--out .*q\.onnx: a TF\.js model's output is a folder/],
  ] as const) {
    const bad = run('quantize', input, '--dtype', 'int8', '--out', out, '--no-latency');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
    assert.equal(existsSync(out), false);
  }
});

/** The bytes of each file, to show a refused command left them as they were. */
function snapshot(...files: string[]): Map<string, Buffer> {
  return new Map(files.map((f) => [f, readFileSync(f)]));
}

function assertUntouched(before: Map<string, Buffer>): void {
  for (const [f, bytes] of before) assert.deepEqual(readFileSync(f), bytes, `${f} changed`);
}

test('a report or recipe path that is one of the inputs is refused even with --force (exit 1, one line naming it), every input untouched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-inputs-'));
  const onnx = await smallOnnx(dir);
  mkdirSync(join(dir, 'sub'));
  symlinkSync(onnx, join(dir, 'link.onnx'));
  // an ONNX model with its tensors in external data
  const ext = join(dir, 'ext', 'm.onnx');
  mkdirSync(dirname(ext));
  const b = new OnnxGraphBuilder({ graphName: 'ext' })
    .input('item', 'int64', ['batch'])
    .output('score', 'float32', ['batch', 4])
    .initializer('item_embedding.weight', 'float32', [8, 4], new Float32Array(32).fill(0.5))
    .node('Gather', ['item_embedding.weight', 'item'], ['score'], {}, { name: '/item_embedding/Gather' });
  await writeOnnxFile(ext, b.toModelProto(), { externalData: { fileName: 'm.onnx.data', minBytes: 0 } });
  const tfjs = join(dir, 'tfjs', 'model.json');
  await saveTinyNeumf(tfjs);
  const shard = join(dir, 'tfjs', 'group1-shard1of1.bin');
  const candidates = join(dir, 'cand.csv');
  writeFileSync(candidates, 'user,item,label\n0,1,1\n0,2,0\n');
  const shardReport = join(dir, 'a.shard.json');
  writeFileSync(shardReport, '{}');
  const before = snapshot(onnx, ext, `${ext}.data`, tfjs, shard, candidates, shardReport);
  const original = 'the original model; PruneScope never writes over it';
  const weights = 'a weight file of the original model; PruneScope never writes over it';
  const cases: Array<[string, string[], string]> = [
    ['analyze', [onnx, '--out', onnx, '--force'], `the output ${onnx} is ${original}`],
    ['analyze', [onnx, '--out', join(dir, 'sub', '..', 'small.onnx'), '--force'], `the output ${onnx} is ${original}`],
    ['analyze', [onnx, '--out', join(dir, 'link.onnx'), '--force'], `the output ${join(dir, 'link.onnx')} is ${original}`],
    ['analyze', [onnx, '--out', onnx], `the output ${onnx} is ${original}`],
    ['analyze', [ext, '--out', `${ext}.data`, '--force'], `the output ${ext}.data is ${weights}`],
    ['analyze', [tfjs, '--out', tfjs, '--force'], `the output ${tfjs} is ${original}`],
    ['analyze', [tfjs, '--out', shard, '--force', '--json'], `the output ${shard} is ${weights}`],
    ['analyze', [onnx, '--shard', '1/2', '--out', onnx, '--force'], `the output ${onnx} is ${original}`],
    ['sensitivity', [onnx, '--candidates', candidates, '--recipe', onnx, '--force'], `the output ${onnx} is ${original}`],
    ['sensitivity', [onnx, '--candidates', candidates, '--recipe', candidates, '--force'], `the output ${candidates} is the --candidates file; PruneScope never writes over it`],
    ['sensitivity', [tfjs, '--candidates', candidates, '--recipe', shard, '--force'], `the output ${shard} is ${weights}`],
    ['merge', [onnx, shardReport, '--out', shardReport, '--force'], `the output ${shardReport} is a shard report being merged; PruneScope never writes over it`],
    ['merge', [onnx, shardReport, '--out', onnx, '--force'], `the output ${onnx} is ${original}`],
    ['quantize', [onnx, '--dtype', 'int8', '--shard', '1/2', '--out', onnx, '--force'], `the output ${onnx} is ${original}`],
  ];
  for (const [cmd, args, message] of cases) {
    const r = run(cmd, ...args);
    assert.equal(r.code, 1, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, `prunescope ${cmd}: ${message}\n`);
    assert.equal(r.stdout, '');
    assertUntouched(before);
  }
  // a folder is no file name; a free name next to the inputs is written
  const folder = run('analyze', onnx, '--out', join(dir, 'sub'), '--force');
  assert.equal(folder.code, 1);
  assert.equal(folder.stderr, `prunescope analyze: ${join(dir, 'sub')}: is a folder; give a file name\n`);
  const ok = run('analyze', ext, '--out', join(dir, 'ext', 'report.json'), '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(readFileSync(join(dir, 'ext', 'report.json'), 'utf8')) as ModelReport).totalParams, 32);
  assertUntouched(before);
});

test('a report or recipe in a folder that does not exist is a usage error naming the folder (exit 2), before any work; nothing is made', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-nodir-'));
  const onnx = await smallOnnx(dir);
  const candidates = join(dir, 'cand.csv');
  writeFileSync(candidates, 'user,item,label\n0,1,1\n0,2,0\n');
  const missing = join(dir, 'nodir', 'x');
  const cases: Array<[string, string[]]> = [
    ['sensitivity', [onnx, '--candidates', candidates, '--recipe', join(missing, 'sens.json')]],
    ['analyze', [onnx, '--out', join(missing, 'report.json')]],
    ['analyze', [onnx, '--shard', '1/2', '--out', join(missing, 'a.shard.json')]],
    // the shard report need not exist: the output is checked first
    ['merge', [onnx, join(dir, 'no-such.shard.json'), '--out', join(missing, 'report.json')]],
    // before the model is read: it does not exist either
    ['analyze', [join(dir, 'no-such.onnx'), '--out', join(missing, 'report.json')]],
  ];
  for (const [cmd, args] of cases) {
    const r = run(cmd, ...args);
    assert.equal(r.code, 2, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.split('\n')[0], `prunescope ${cmd}: the output folder ${missing} does not exist`);
    assert.match(r.stderr.split('\n')[1], new RegExp(`^Usage: prunescope ${cmd} `));
    assert.equal(r.stdout, '');
  }
  const notFolder = run('analyze', onnx, '--out', join(candidates, 'report.json'));
  assert.equal(notFolder.code, 2);
  assert.equal(notFolder.stderr.split('\n')[0], `prunescope analyze: the output folder ${candidates} is not a folder`);
  assert.deepEqual(readdirSync(dir).sort(), ['cand.csv', 'small.onnx']);
});

test('analyze / eval of a TF.js model whose weightsManifest is missing or empty: exit 1 naming the file; no "0 params" report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-nomanifest-'));
  const src = join(dir, 'src', 'model.json');
  await saveTinyNeumf(src);
  const doc = JSON.parse(readFileSync(src, 'utf8')) as Record<string, unknown>;
  const reason = "6 of its layers have weights (user_mlp_embedding, item_mlp_embedding, user_gmf_embedding, ...): the model's weights are missing";
  for (const [name, manifest, head] of [
    ['none', undefined, 'no weightsManifest'],
    ['empty', [], 'the weightsManifest lists no weights'],
  ] as const) {
    const file = join(dir, name, 'model.json');
    mkdirSync(dirname(file));
    writeFileSync(file, JSON.stringify({ ...doc, weightsManifest: manifest }));
    for (const cmd of ['analyze', 'eval']) {
      const r = run(cmd, file, ...(cmd === 'eval' ? ['--candidates', join(dir, 'c.csv')] : []));
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trimEnd().split('\n').at(-1), `prunescope ${cmd}: ${file}: ${head}, but ${reason}`);
    }
  }
});

test('eval prints a note when users of the candidates have no positive row (they are not ranked)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-nopos-'));
  const model = join(dir, 'tfjs', 'model.json');
  await saveTinyNeumf(model);
  const candidates = join(dir, 'c.csv');
  writeFileSync(candidates, 'user,item,label\n0,1,1\n0,2,0\n1,3,0\n1,4,0\n2,2,1\n2,6,0\n3,5,0\n');
  // --k 1: below the 2 candidates per user (K = 10 would add its own note)
  const r = run('eval', model, '--candidates', candidates, '--k', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^users {4}2 \(2\.0 candidates each\)\nnote {5}2 users have no positive row in the candidates: not ranked \(HR and NDCG are over the 2 with one\)$/m);
  const j = run('eval', model, '--candidates', candidates, '--json');
  assert.equal((JSON.parse(j.stdout) as { usersWithoutPositive: number }).usersWithoutPositive, 2);
  // one such user; none: no note
  const base: EvaluationResult = { model: 'm.onnx', format: 'onnx', runtime: 'onnxruntime-node', k: 10, users: 5, hr: 0.5, ndcg: 0.25, candidatesPerUser: 30, params: 10, bytes: 100, gzipBytes: 90, files: [], inputs: [], seconds: 0 };
  assert.match(formatEvaluation({ ...base, usersWithoutPositive: 1 }), /\nnote {5}1 user has no positive row in the candidates: not ranked \(HR and NDCG are over the 5 with one\)\n/);
  assert.doesNotMatch(formatEvaluation({ ...base, usersWithoutPositive: 0 }), /note/);
  // a constant model: far below a random order (ties count against the positive), said as such
  const constant = formatEvaluation({ ...base, ndcg: 0, hr: 0, chance: { hr: 0.1, ndcg: 0.0454, ndcgSd: 0.0049, atChance: true } });
  assert.match(constant, /\nwarning  the model ranks the positives below a random order \(NDCG@10 0\.0000 against 0\.0454, more than 3 x 0\.0049 under it\): ties count against the positive/);
  const near = formatEvaluation({ ...base, ndcg: 0.05, chance: { hr: 0.1, ndcg: 0.0454, ndcgSd: 0.0049, atChance: true } });
  assert.match(near, /\nwarning  the model ranks these candidates no better than a random order \(NDCG@10 within 3 x 0\.0049 of it\)/);
  assert.match(formatEvaluation({ ...base, usersWithoutNegatives: 2 }), /\nnote {5}2 of the 5 ranked users have no negative candidate: each counts as a hit at rank 1 whatever the model\n/);
  assert.doesNotMatch(formatEvaluation(base), /note/);
  // AUC and logloss name the file they come from (--data when given with --candidates)
  const both = formatEvaluation({ ...base, auc: 0.8, logloss: 0.4, labelledFile: '/w/train.csv', labelledRows: 1200 });
  assert.match(both, /\nAUC {6}0\.8000 {2}\(on train\.csv, 1200 rows\)\nlogloss {2}0\.4000 {2}\(on train\.csv, 1200 rows\)\n/);
  // K not below the candidates per user: HR@K is near 1 whatever the model
  assert.match(formatEvaluation({ ...base, k: 30 }), /\nnote {5}K = 30 is not below the candidates per user \(30\.0 on average\): most positives are in the top 30 whatever the model, so HR@30 says little\n/);
  assert.doesNotMatch(formatEvaluation({ ...base, k: 29 }), /note/);
});

test('eval: a label column with a value other than 0 / 1 is scored as ratings, and the output says so naming the row', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-labels-'));
  const model = join(dir, 'tfjs', 'model.json');
  await saveTinyNeumf(model);
  const data = join(dir, 'd.csv');
  writeFileSync(data, 'user,item,label\n0,1,1\n0,2,0\n1,3,2\n1,4,0\n');
  const r = run('eval', model, '--data', data);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^RMSE /m);
  assert.ok(r.stdout.includes(`note     ${data}: label of data row 3 is 2, not 0 or 1: the labels were scored as ratings (RMSE, MAE), not as clicks (AUC, logloss)`), r.stdout);
  // 0 / 1 labels: AUC, no note
  writeFileSync(data, 'user,item,label\n0,1,1\n0,2,0\n1,3,1\n1,4,0\n');
  const b = run('eval', model, '--data', data);
  assert.match(b.stdout, /^AUC /m);
  assert.doesNotMatch(b.stdout, /note/);
});

test('run: a recipe that is not JSON is one line naming the file, with no empty field (exit 1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-badrecipe-'));
  const recipe = join(dir, 'r_bad.json');
  writeFileSync(recipe, '{"steps": [');
  const r = run('run', recipe);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^prunescope run: ${recipe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON: [^\\n]+\\n$`));
  assert.ok(!r.stderr.includes(': :'), r.stderr);
  writeFileSync(recipe, '[1]');
  const notObject = run('run', recipe);
  assert.equal(notObject.code, 1);
  assert.equal(notObject.stderr, `prunescope run: ${recipe}: a recipe is a JSON object with "steps"\n`);
});

test('a method that measured its files and the comparison both know the size: the text says it once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-size-once-'));
  const model = await smallOnnx(dir);
  // named: the 8-row table is pruned though the file does not shrink (not named, it would be left as it is)
  const r = run('prune', model, '--structure', 'rows', '--sparsity', '0.25', '--table', 'item_embedding.weight', '--out', join(dir, 'rows.onnx'), '--no-latency');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter((l) => l.includes('Size on disk')).length, 1, r.stdout);
  assert.match(r.stdout, /item_embedding\.weight: the fallback row, the remap of every id and its nodes take more bytes than the rows dropped, so the file does not get smaller\./);
  const all = run('prune', model, '--structure', 'rows', '--sparsity', '0.25', '--out', join(dir, 'rows-all.onnx'), '--no-latency');
  assert.equal(all.code, 1);
  assert.match(all.stderr, /nothing to prune: no table would get smaller\. Left as they are .*item_embedding\.weight \(8 rows, 2 dropped, remap 8 bytes \+ about 512 of graph\)/);
});

test('analyze: layers that hold only constants (an exporter\'s axes and indices) are one line, not a row each', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-constants-'));
  const file = join(dir, 'm.onnx');
  await writeOnnxFile(file, new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', 1, 4])
    .initializer('table.weight', 'float32', [10, 4], Float32Array.from({ length: 40 }, (_, i) => (i % 7) - 3))
    .initializer('axes', 'int64', [1], BigInt64Array.of(1n))
    .initializer('axes_2', 'int64', [1], BigInt64Array.of(1n))
    .node('Gather', ['table.weight', 'ids'], ['e'], { axis: 0 }, { name: '/table/Gather' })
    .node('Unsqueeze', ['e', 'axes'], ['u'], {}, { name: '/Unsqueeze' })
    .node('Squeeze', ['u', 'axes_2'], ['s'], {}, { name: '/Squeeze' })
    .node('Unsqueeze', ['s', 'axes'], ['y'], {}, { name: '/Unsqueeze_1' })
    .toModelProto());
  const r = run('analyze', file);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\ntable +Gather +embedding +\[10x4\] +40 /);
  assert.match(r.stdout, /\n\(2 layers holding only constants, 2 values, not shown: --tensors lists them\)\n/);
  assert.doesNotMatch(r.stdout, /\n\/(Un)?[sS]queeze/);
  const t = run('analyze', file, '--tensors');
  assert.match(t.stdout, /\naxes +constant +\[1\] +int64 /);
});

test('NaN or infinite weights: analyze warns and offers nothing for them; eval is one error naming the model, the data and the first row', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-nan-'));
  const file = join(dir, 'nan.onnx');
  const item = Float32Array.from({ length: 5 * 3 }, (_, i) => 0.1 * (i + 1));
  item[2 * 3] = NaN;
  item[4 * 3 + 1] = Infinity;
  await writeOnnxFile(file, new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
    .input('user', 'int64', ['batch'])
    .input('item', 'int64', ['batch'])
    .output('score', 'float32', ['batch', 1])
    .initializer('user_embedding.weight', 'float32', [4, 3], Float32Array.from({ length: 12 }, (_, i) => 0.05 * (i + 1)))
    .initializer('item_embedding.weight', 'float32', [5, 3], item)
    .initializer('ones', 'float32', [3, 1], Float32Array.of(1, 1, 1))
    .node('Gather', ['user_embedding.weight', 'user'], ['u'], { axis: 0 }, { name: '/user_embedding/Gather' })
    .node('Gather', ['item_embedding.weight', 'item'], ['i'], { axis: 0 }, { name: '/item_embedding/Gather' })
    .node('Mul', ['u', 'i'], ['p'], {}, { name: '/Mul' })
    .node('MatMul', ['p', 'ones'], ['score'], {}, { name: '/sum/MatMul' })
    .toModelProto());
  const a = run('analyze', file);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /\nwarning: 2 NaN or infinite values in item_embedding\.weight \(2\): the model computes NaN wherever they are read/);
  const j = JSON.parse(run('analyze', file, '--json').stdout) as ModelReport;
  assert.deepEqual(j.opportunities.filter((o) => o.target === 'item_embedding.weight'), []);
  const candidates = join(dir, 'c.csv');
  writeFileSync(candidates, 'user,item,label\n0,1,1\n0,2,0\n0,3,0\n1,0,1\n1,1,0\n1,3,0\n');
  const e = run('eval', file, '--candidates', candidates);
  assert.equal(e.code, 1);
  assert.equal(
    e.stderr.trim(),
    `prunescope eval: ${file}: scores NaN for 1 of the 6 rows of ${candidates} (the first: data row 2, user 0, item 2): ` +
      'its weights hold NaN or infinite values, or its arithmetic overflows (analyze lists non-finite weights)',
  );
});

test('an output folder where nothing can be made (/proc): one error naming it, exit 1, no hang (Node\'s recursive mkdir loops there)', async (t) => {
  if (process.platform !== 'linux' || !existsSync('/proc/self')) return t.skip('needs Linux /proc');
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-proc-'));
  const model = await smallOnnx(dir);
  for (const cmd of [['quantize', model, '--dtype', 'int8'], ['prune', model, '--sparsity', '0.5']]) {
    const r = spawnSync(process.execPath, [CLI, ...cmd, '--out', '/proc/ps-out.onnx', '--no-latency'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, `${cmd[0]} hung`);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `prunescope ${cmd[0]}: /proc: cannot write ps-out.onnx here: no such file (ENOENT)`);
  }
});

test('a compression command given bad candidates stops before any work: exit 1, the file and line named, nothing written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-badcand-'));
  const model = join(dir, 'tfjs', 'model.json');
  await saveTinyNeumf(model);
  const cases: Array<[string, string, string]> = [
    ['oor.csv', 'user,item,label\n0,1,1\n0,99,0\n', 'line 3: item 99 is outside the model\'s embedding table (7 rows, ids 0..6)'],
    ['nan.csv', 'user,item,label\n0,1,NaN\n', "line 2: label 'NaN' is not a number"],
    ['nopos.csv', 'user,item,label\n0,1,0\n1,2,0\n', 'no user has a positive row (label > 0)'],
    ['two.csv', 'user,item,label\n0,1,1\n0,2,1\n', 'lines 2 and 3: user 0 has more than one positive (a candidates file has one per user)'],
  ];
  for (const [name, text, reason] of cases) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const out = join(dir, `out-${name}`);
    const r = run('quantize', model, '--dtype', 'float16', '--candidates', file, '--out', out, '--no-latency');
    assert.equal(r.code, 1, `${name}: ${r.stdout}`);
    assert.equal(r.stderr.trim().split('\n').at(-1), `prunescope quantize: ${file}: ${reason}`);
    assert.equal(existsSync(out), false, `${name}: nothing written`);
  }
});

test('prune to a sparsity the model already has: the report says nothing new was pruned', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-sparse-'));
  const model = await smallOnnx(dir);
  // 14 of its 40 table and kernel weights are zero (35%): 12 table rows, 2 kernel weights
  const r = run('prune', model, '--sparsity', '0.3', '--out', join(dir, 'p.onnx'), '--no-latency');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\n {2}- Nothing new was pruned: the chosen weights are 35\.0% zeros already, at or above the 30\.0% asked for; the output is the same model\.\n/);
  const more = run('prune', model, '--sparsity', '0.5', '--out', join(dir, 'p5.onnx'), '--no-latency');
  assert.doesNotMatch(more.stdout, /Nothing new/);
});

test('makeTempDir makes a missing output folder one level at a time (the editor may name a new one), and never loops under /proc', async () => {
  const { makeTempDir } = await import('../../src/core/jobs/output-files.js');
  const dir = mkdtempSync(join(tmpdir(), 'ps-tempdir-'));
  const out = join(dir, 'a', 'b', 'm.onnx');
  await makeTempDir(join(dir, 'a', 'b', '.prunescope-x.tmp'), out);
  assert.ok(existsSync(join(dir, 'a', 'b', '.prunescope-x.tmp')));
  if (process.platform === 'linux' && existsSync('/proc/self')) {
    await assert.rejects(makeTempDir('/proc/ps-a/ps-b/.prunescope-x.tmp', '/proc/ps-a/ps-b/m.onnx'), (e: unknown) => e instanceof Error && e.message === '/proc/ps-a: cannot write m.onnx here: no such file (ENOENT)');
  }
});

test('quantize --candidates on a model the accuracy check cannot run: exit 1 naming why, nothing written (a script gating on the check must not pass)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-nocheck-'));
  const model = join(dir, 'two-scores.onnx');
  // two scores per row ([batch, 2]): no ranking can be read from it
  const table = (n: number) => Float32Array.from({ length: n * 16 }, (_, i) => Math.sin(i));
  await writeOnnxFile(
    model,
    new OnnxGraphBuilder({ graphName: 'two', opset: 13, irVersion: 7 })
      .input('user', 'int64', ['batch'])
      .input('item', 'int64', ['batch'])
      .output('score', 'float32', ['batch', 32])
      .initializer('user_embedding', 'float32', [20, 16], table(20))
      .initializer('item_embedding', 'float32', [30, 16], table(30))
      .node('Gather', ['user_embedding', 'user'], ['u'], {}, { name: 'gu' })
      .node('Gather', ['item_embedding', 'item'], ['v'], {}, { name: 'gv' })
      .node('Concat', ['u', 'v'], ['score'], { axis: 1 }, { name: 'cat' })
      .toModelProto(),
  );
  const candidates = join(dir, 'c.csv');
  writeFileSync(candidates, 'user,item,label\n0,1,1\n0,2,0\n1,3,1\n1,4,0\n');
  const out = join(dir, 'q.onnx');
  const r = run('quantize', model, '--dtype', 'int8', '--candidates', candidates, '--out', out, '--no-latency');
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /the accuracy check on .*c\.csv could not run, so nothing was written \(without --candidates the model is written unchecked\): .*output 'score' has 128 values for a batch of 4 \(dims \[4,32\]\); expected one score per row\n$/);
  assert.deepEqual(readdirSync(dir).sort(), ['c.csv', 'two-scores.onnx']);
  // without --candidates: written, sizes only
  const unchecked = run('quantize', model, '--dtype', 'int8', '--out', out, '--no-latency');
  assert.equal(unchecked.code, 0, unchecked.stderr);
  assert.ok(existsSync(out));
});
