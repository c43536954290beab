// The method registry: each method's settings declared once (defaults, types, ranges, choices,
// unknown / required / exclusive keys), the recipe check and JSON Schema derived from it, the CLI
// refusing bad settings with exit code 2, and jobs running methods through it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readModel } from '../../src/core/model/read-model.js';
import { COMPRESS_METHODS, type CompressMethod } from '../../src/core/jobs/job-types.js';
import { parseRecipe, RecipeError, recipeJsonSchema, recipeSchemaText } from '../../src/core/jobs/recipe-file.js';
import { runJobInProcess } from '../../src/core/jobs/run-job-in-process.js';
import { tempDirFor } from '../../src/core/jobs/output-files.js';
import { checkedSettings, describeMethods, METHOD_SETTINGS, SettingsError, settingsJsonSchema, validateSettings } from '../../src/core/compress/method-settings.js';
import { methodDeclaration, runMethodStep } from '../../src/core/compress/registry.js';
import { checkStepSettings } from '../../src/cli/run-compress-job.js';
import type { CompressJobResult } from '../../src/shared/protocol.js';

const REPO = join(__dirname, '..', '..', '..');
const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

const problems = (method: CompressMethod, raw: unknown) => validateSettings(method, raw).problems;
const settings = <M extends CompressMethod>(method: M, raw: unknown) => {
  const r = validateSettings(method, raw);
  assert.deepEqual(r.problems, []);
  return r.settings;
};

const MAGNITUDE_DEFAULTS = { scope: 'global', tensors: 'embeddings+dense', granularity: 'element' };
const TRAINING_DEFAULTS = { batchSize: 512, negatives: 4, seed: 7, k: 10, outputKind: 'auto', engine: 'auto' };

test("every method's defaults are filled in", () => {
  assert.deepEqual(settings('prune-magnitude', { sparsity: 0.5 }), { sparsity: 0.5, ...MAGNITUDE_DEFAULTS });
  assert.deepEqual(settings('prune-rows', { sparsity: 0.5 }), { sparsity: 0.5, importance: 'norm', fallback: 'mean' });
  assert.deepEqual(settings('prune-dims', { keep: 0.5 }), { keep: 0.5 });
  assert.deepEqual(settings('prune-neurons', { sparsity: 0.25 }), { sparsity: 0.25, importance: 'l2' });
  assert.deepEqual(settings('prune-fields', { fields: ['noise_a'] }), { fields: ['noise_a'], compensate: true });
  assert.deepEqual(settings('prune-fields', { fields: { drop: 0.3, data: 'v.csv' } }), {
    fields: { drop: 0.3, data: 'v.csv', metric: 'auc', repeats: 3, seed: 1 },
    compensate: true,
  });
  assert.deepEqual(settings('quantize', { dtype: 'int8' }), {
    dtype: 'int8',
    tensors: 'all',
    reduceRange: true,
    dense: 'weights-only',
    lookup: 'compact',
    scales: 'row',
    rounding: 'nearest',
    verify: true,
    verifyRows: 256,
  });
  assert.deepEqual(settings('factorize', {}), { tensors: 'all', minSaving: 0.1, fold: true });
  assert.deepEqual(settings('factorize', undefined), { tensors: 'all', minSaving: 0.1, fold: true });
  assert.deepEqual(settings('distill', { data: 'd.csv' }), { data: 'd.csv', epochs: 8, lr: 0.005, alpha: 0.7, temperature: 1, ...TRAINING_DEFAULTS });
  assert.deepEqual(settings('finetune', { data: 'd.csv' }), { data: 'd.csv', epochs: 2, lr: 0.001, ...TRAINING_DEFAULTS });
  assert.deepEqual(settings('finetune', { data: 'd.csv', samplePruning: { keep: 0.5 } }).samplePruning, { keep: 0.5, by: 'loss', warmupEpochs: 1 });
  assert.deepEqual(settings('finetune', { data: 'd.csv', gradual: { prune: { sparsity: 0.8 }, rampEpochs: 1 } }).gradual, {
    prune: { sparsity: 0.8, ...MAGNITUDE_DEFAULTS },
    rampEpochs: 1,
    frequency: 100,
  });
  assert.deepEqual(settings('finetune', { data: 'd.csv', dynamic: { prune: { sparsity: 0.9, granularity: 'column' }, regrowEpochs: 2, frequency: 10 } }).dynamic, {
    prune: { sparsity: 0.9, scope: 'global', tensors: 'embeddings+dense', granularity: 'column' },
    regrowEpochs: 2,
    frequency: 10,
  });
});

test('an unknown key is an error naming the known keys (and the likely one)', () => {
  assert.deepEqual(problems('prune-magnitude', { sparsty: 0.5 }), [
    { path: 'sparsty', message: 'unknown setting "sparsty", did you mean "sparsity"? (known: sparsity, scope, perLayer, tensors, granularity)' },
    { path: 'sparsity', message: 'is required (a number in [0, 1])' },
  ]);
  assert.deepEqual(problems('factorize', { colour: 'red' }), [{ path: 'colour', message: 'unknown setting "colour" (known: rank, energy, tensors, minSaving, fold)' }]);
  assert.deepEqual(problems('finetune', { data: 'd.csv', gradual: { prune: { sparsity: 0.5, scop: 'layer' }, rampEpochs: 0 } }), [
    { path: 'gradual.prune.scop', message: 'unknown setting "scop", did you mean "scope"? (known: sparsity, scope, perLayer, tensors, granularity)' },
  ]);
});

test('numbers out of range, non-integers and wrong types name the setting and the range', () => {
  assert.deepEqual(problems('prune-magnitude', { sparsity: 1.5 }), [{ path: 'sparsity', message: 'must be a number in [0, 1], got 1.5' }]);
  assert.deepEqual(problems('prune-magnitude', { sparsity: '0.5' }), [{ path: 'sparsity', message: 'must be a number in [0, 1], got "0.5"' }]);
  assert.deepEqual(problems('finetune', { data: 'd.csv', epochs: 0, lr: 0, batchSize: 2.5, samplePruning: { keep: 0 } }), [
    { path: 'epochs', message: 'must be an integer >= 1, got 0' },
    { path: 'lr', message: 'must be a number > 0, got 0' },
    { path: 'batchSize', message: 'must be an integer >= 1, got 2.5' },
    { path: 'samplePruning.keep', message: 'must be a number in (0, 1], got 0' },
  ]);
  assert.deepEqual(problems('factorize', { minSaving: 1 }), [{ path: 'minSaving', message: 'must be a number < 1, got 1' }]);
  assert.deepEqual(problems('prune-magnitude', { sparsity: 0.5, scope: 'layer', perLayer: { a: 0.5, b: 2 } }), [{ path: 'perLayer.b', message: 'must be a number in [0, 1], got 2' }]);
  assert.deepEqual(problems('distill', { data: 'd.csv', hidden: [32, 0] }), [{ path: 'hidden[1]', message: 'must be an integer >= 1, got 0' }]);
  assert.deepEqual(problems('prune-rows', { sparsity: 0.5, importance: { counts: [1, -2] } }), [{ path: 'importance.counts[1]', message: 'must be a number >= 0, got -2' }]);
  assert.deepEqual(problems('distill', { data: '' }), [{ path: 'data', message: 'must be a non-empty string, got ""' }]);
  assert.deepEqual(problems('factorize', 3), [{ path: '', message: 'must be an object { rank, energy, tensors, minSaving, fold }, got 3' }]);
});

test('a wrong choice lists the choices', () => {
  assert.deepEqual(problems('prune-magnitude', { sparsity: 0.5, scope: 'glob' }), [{ path: 'scope', message: 'must be one of "global", "layer", got "glob"' }]);
  assert.deepEqual(problems('quantize', { dtype: 'int5' }), [{ path: 'dtype', message: 'must be one of "int8", "int4", "int3", "int2", "float16", "uint8", "uint16", got "int5"' }]);
  assert.deepEqual(problems('quantize', { dtype: 'int8', tensors: 'some' }), [{ path: 'tensors', message: 'must be one of "all", "embeddings", "dense" or a list of strings, got "some"' }]);
  assert.deepEqual(problems('quantize', { dtype: 'int8', tensors: [] }), [{ path: 'tensors', message: 'must have at least 1 item' }]);
  assert.deepEqual(problems('prune-rows', { sparsity: 0.5, importance: 'freq' }), [{ path: 'importance', message: 'must be "norm" or an object { counts }, got "freq"' }]);
  assert.deepEqual(problems('quantize', {}), [{ path: 'dtype', message: 'is required (one of "int8", "int4", "int3", "int2", "float16", "uint8", "uint16")' }]);
});

test('keep and sparsity are exclusive (exactly one), and so are the ways finetune prunes', () => {
  for (const m of ['prune-rows', 'prune-dims', 'prune-neurons'] as const) {
    assert.deepEqual(problems(m, { keep: 0.5, sparsity: 0.5 }), [{ path: '', message: 'give only one of keep, sparsity (got keep and sparsity)' }]);
    assert.deepEqual(problems(m, {}), [{ path: '', message: 'give one of keep, sparsity' }]);
  }
  assert.deepEqual(problems('finetune', { data: 'd.csv', samplePruning: { keep: 0.5 }, dynamic: { prune: { sparsity: 0.5 }, regrowEpochs: 1 } }), [
    { path: '', message: 'give only one of samplePruning, gradual, dynamic (got samplePruning and dynamic)' },
  ]);
  assert.throws(() => checkedSettings('prune-rows', {}), (e: unknown) => e instanceof SettingsError && e.message === 'prune-rows settings: give one of keep, sparsity');
});

test('row counts may be a JSON list or a typed array (it crosses the worker boundary intact)', () => {
  const counts = Int32Array.from([3, 0, 1]);
  assert.equal((settings('prune-rows', { keep: 0.5, importance: { counts } }).importance as { counts: Int32Array }).counts, counts);
  assert.deepEqual(settings('prune-rows', { keep: 0.5, importance: { counts: [3, 0, 1] } }).importance, { counts: [3, 0, 1] });
});

test('describeMethods covers every method, each setting described', () => {
  const d = describeMethods();
  assert.deepEqual(d.map((m) => m.name), COMPRESS_METHODS);
  for (const m of d) {
    assert.ok(m.title && m.description.endsWith('.'), m.name);
    for (const s of m.settings) assert.ok(s.description.length > 0, `${m.name}.${s.key}`);
  }
  assert.deepEqual(d.find((m) => m.name === 'prune-rows')?.rules, ['give exactly one of keep, sparsity']);
  assert.deepEqual(d.find((m) => m.name === 'prune-magnitude')?.settings[0], {
    key: 'sparsity',
    accepts: 'a number in [0, 1]',
    description: 'Fraction of the chosen weights set to zero.',
    required: true,
  });
});

test("a method's JSON Schema comes from the same spec", () => {
  assert.deepEqual(settingsJsonSchema('prune-dims'), {
    title: 'Embedding dimensions (structured)',
    type: 'object',
    properties: {
      keep: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of the columns kept (give keep or sparsity).' },
      sparsity: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of the columns removed (give keep or sparsity).' },
      table: { type: 'string', minLength: 1, description: 'The table (tensor or layer name); default every table whose columns can be followed.' },
    },
    additionalProperties: false,
    oneOf: [{ required: ['keep'] }, { required: ['sparsity'] }],
    description: METHOD_SETTINGS['prune-dims'].description,
  });
  const ft = settingsJsonSchema('finetune');
  assert.deepEqual(ft.required, ['data']);
  // two exclusive groups: each a "not anyOf" of its pairs, both in allOf
  assert.deepEqual(ft.allOf, [
    { not: { anyOf: [{ required: ['samplePruning', 'gradual'] }, { required: ['samplePruning', 'dynamic'] }, { required: ['gradual', 'dynamic'] }] } },
    { not: { anyOf: [{ required: ['quantAware', 'gradual'] }, { required: ['quantAware', 'dynamic'] }, { required: ['gradual', 'dynamic'] }] } },
  ]);
});

test('a recipe with bad settings is a RecipeError at the exact path', () => {
  const text = JSON.stringify({
    steps: [
      { method: 'prune-rows', settings: { sparsty: 0.5 } },
      { method: 'finetune', settings: { data: 'd.csv', samplePruning: { keep: 2 } } },
      { method: 'quantize' },
      { method: 'prune-dims', settings: { keep: 0.5, sparsity: 0.5 } },
    ],
  });
  assert.throws(
    () => parseRecipe(text, 'r.recipe.json'),
    (e: unknown) => {
      assert.ok(e instanceof RecipeError);
      assert.deepEqual(e.problems, [
        { path: 'steps[0].settings.sparsty', message: 'unknown setting "sparsty", did you mean "sparsity"? (known: table, keep, sparsity, importance, fallback)' },
        { path: 'steps[0].settings', message: 'give one of keep, sparsity' },
        { path: 'steps[1].settings.samplePruning.keep', message: 'must be a number in (0, 1], got 2' },
        { path: 'steps[2].settings.dtype', message: 'is required (one of "int8", "int4", "int3", "int2", "float16", "uint8", "uint16")' },
        { path: 'steps[3].settings', message: 'give only one of keep, sparsity (got keep and sparsity)' },
      ]);
      return true;
    },
  );
  // quantization-aware fine-tuning: the dtype is checked, and it does not go with gradual pruning
  assert.throws(
    () =>
      parseRecipe(
        JSON.stringify({
          steps: [
            { method: 'finetune', settings: { data: 'd.csv', quantAware: { dtype: 'int8' } } },
            { method: 'finetune', settings: { data: 'd.csv', quantAware: { dtype: 'int4', scales: 'col' } } },
            { method: 'finetune', settings: { data: 'd.csv', quantAware: { dtype: 'int4' }, gradual: { prune: { sparsity: 0.5 }, rampEpochs: 1 } } },
          ],
        }),
        'q.recipe.json',
      ),
    (e: unknown) => {
      assert.ok(e instanceof RecipeError);
      assert.deepEqual(e.problems.map((p) => p.path), ['steps[0].settings.quantAware.dtype', 'steps[1].settings.quantAware.scales', 'steps[2].settings']);
      assert.match(e.problems[0].message, /"int4", "int3", "int2"/);
      assert.match(e.problems[2].message, /quantAware.*gradual/);
      return true;
    },
  );
  // the settings are kept as written (defaults are filled in when the step runs)
  const ok = parseRecipe(JSON.stringify({ steps: [{ method: 'prune-rows', settings: { keep: 0.5 } }] }), 'r.recipe.json');
  assert.deepEqual(ok.steps, [{ method: 'prune-rows', settings: { keep: 0.5 } }]);
});

test('media/recipe.schema.json is the one the registry generates', () => {
  const committed = readFileSync(join(REPO, 'media', 'recipe.schema.json'), 'utf8');
  assert.equal(
    committed,
    recipeSchemaText(),
    "regenerate: npm run build:tests && node -e \"import('./out/src/core/jobs/recipe-file.js').then((m) => process.stdout.write(m.recipeSchemaText()))\" > media/recipe.schema.json",
  );
  assert.deepEqual(JSON.parse(committed), recipeJsonSchema());
});

test('the CLI refuses bad step settings as a usage error with the registry message', () => {
  assert.throws(() => checkStepSettings([{ method: 'prune-rows', settings: {} }]), { name: 'UsageError', message: 'prune-rows settings: give one of keep, sparsity' });
  assert.throws(() => checkStepSettings([{ method: 'prune-rows', settings: { keep: 0.5 } }, { method: 'quantize', settings: { dtype: 'int5' } }]), {
    name: 'UsageError',
    message: 'step 2 (quantize) settings: dtype: must be one of "int8", "int4", "int3", "int2", "float16", "uint8", "uint16", got "int5"',
  });
  checkStepSettings([{ method: 'finetune', settings: { data: 'd.csv', epochs: 2 } }]);
});

async function tableModel(dir: string): Promise<string> {
  const table = new Float32Array(64 * 16).map((_, i) => (i % 8 === 0 ? 0 : (i + 1) / 1024));
  const b = new OnnxGraphBuilder({ graphName: 'registry' })
    .input('item', 'int64', ['batch'])
    .output('e', 'float32', ['batch', 16])
    .initializer('item_embedding.weight', 'float32', [64, 16], table)
    .node('Gather', ['item_embedding.weight', 'item'], ['e'], {}, { name: '/item_embedding/Gather' });
  const path = join(dir, 'items.onnx');
  await writeOnnxFile(path, b.toModelProto());
  return path;
}

test('`prunescope factorize --min-saving 1` fails with exit code 2 and the registry message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-registry-cli-'));
  const model = await tableModel(dir);
  const r = spawnSync(process.execPath, [CLI, 'factorize', model, '--energy', '0.9', '--min-saving', '1', '--out', join(dir, 'f.onnx')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^prunescope factorize: factorize settings: minSaving: must be a number < 1, got 1\n/);
  assert.equal(existsSync(join(dir, 'f.onnx')), false);
});

test('a compress job runs its method through the registry, and bad settings fail before any output', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-registry-job-'));
  const model = await tableModel(dir);
  const outPath = join(dir, 'rows.onnx');
  const r = (await runJobInProcess(
    { kind: 'compress', path: model, method: 'prune-rows', settings: { keep: 0.5 }, outPath, tempDir: tempDirFor(outPath), evaluate: { latency: false } },
    new AbortController().signal,
    () => undefined,
  )) as CompressJobResult;
  assert.equal(r.method, 'prune-rows');
  assert.ok(r.comparison.params.after! < r.comparison.params.before!);
  assert.ok(existsSync(outPath));

  const bad = join(dir, 'bad.onnx');
  await assert.rejects(
    runJobInProcess({ kind: 'compress', path: model, method: 'prune-magnitude', settings: { sparsty: 0.5 }, outPath: bad, tempDir: tempDirFor(bad) }, new AbortController().signal, () => undefined),
    (e: unknown) => e instanceof SettingsError && /^prune-magnitude settings: sparsty: unknown setting "sparsty"/.test(e.message),
  );
  assert.equal(existsSync(bad), false);
});

test('runMethodStep fills the job defaults (quantize: the caller compares the models) and checks settings', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-registry-step-'));
  const ir = await readModel(await tableModel(dir));
  const q = await runMethodStep(ir, { method: 'quantize', settings: { dtype: 'float16' } });
  assert.equal(q.settings.verify, false);
  assert.equal(q.changes.length, 1);
  const p = await runMethodStep(ir, { method: 'prune-magnitude', settings: { sparsity: 0.5 } });
  assert.deepEqual(p.settings.scope, 'global');
  await assert.rejects(runMethodStep(ir, { method: 'factorize', settings: { rank: 0 } }), /^SettingsError: factorize settings: rank: must be an integer >= 1, got 0$/m);
  assert.equal(methodDeclaration('distill').title, 'Knowledge distillation');
  assert.throws(() => methodDeclaration('zap' as CompressMethod), /unknown compression method "zap"/);
});
