// Compression jobs: where the output goes, that it appears only when the job finished (temp
// folder + rename), never over the original or an existing output, and recipe files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { checkOutputFree, modelOutputPath, OutputExistsError, OutputPathError, outputPathFor, tempDirFor } from '../../src/core/jobs/output-files.js';
import { absoluteRecipe, parseRecipe, RecipeError, relativeRecipe } from '../../src/core/jobs/recipe-file.js';
import { runJobInProcess } from '../../src/core/jobs/run-job-in-process.js';
import type { CompressJobResult, ModelScan } from '../../src/shared/protocol.js';

async function tableModel(dir: string): Promise<string> {
  // 64 x 16 table: values 1..1024 with every 8th one exactly zero
  const table = new Float32Array(64 * 16).map((_, i) => (i % 8 === 0 ? 0 : (i + 1) / 1024));
  const b = new OnnxGraphBuilder({ graphName: 'jobs_compress' })
    .input('item', 'int64', ['batch'])
    .output('e', 'float32', ['batch', 16])
    .initializer('item_embedding.weight', 'float32', [64, 16], table)
    .node('Gather', ['item_embedding.weight', 'item'], ['e'], {}, { name: '/item_embedding/Gather' });
  const path = join(dir, 'items.onnx');
  await writeOnnxFile(path, b.toModelProto());
  return path;
}

test('outputPathFor: ONNX next to the model, TF.js in a folder of its own', () => {
  assert.equal(outputPathFor('/w/models/rec.onnx', 'prune-magnitude'), '/w/models/rec-prune-magnitude.onnx');
  assert.equal(outputPathFor('/w/models/rec/model.json', 'quantize'), '/w/models/rec-quantize/model.json');
  assert.equal(outputPathFor('/w/m/rec.onnx', 'factorize', 'out/${stem}.${method}'), '/w/m/out/rec.factorize.onnx');
  assert.equal(outputPathFor('/w/m/rec.onnx', 'a/b c'), '/w/m/rec-a_b_c.onnx');
  const t = tempDirFor('/w/models/rec/model.json');
  assert.match(t, /^\/w\/models\/\.prunescope-[0-9a-f]{12}\.tmp$/);
});

test('modelOutputPath: an output keeps the input format; a folder holds it; a name that fits neither is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-outpath-'));
  mkdirSync(join(dir, 'existing'));
  // ONNX: a .onnx file as given; an existing folder gets <stem>-<method>.onnx inside
  assert.equal(modelOutputPath('/w/rec.onnx', join(dir, 'small.onnx'), 'quantize'), join(dir, 'small.onnx'));
  assert.equal(modelOutputPath('/w/rec.onnx', join(dir, 'existing'), 'quantize'), join(dir, 'existing', 'rec-quantize.onnx'));
  assert.throws(() => modelOutputPath('/w/rec.onnx', join(dir, 'small'), 'quantize'), (e: Error) => e instanceof OutputPathError && /an ONNX model's output is a \.onnx file/.test(e.message));
  assert.throws(() => modelOutputPath('/w/rec.onnx', join(dir, 'small', 'model.json'), 'quantize'), OutputPathError);
  // TF.js: <folder>/model.json, whether the folder exists or not; a .json path as given
  assert.equal(modelOutputPath('/w/rec/model.json', join(dir, 'q'), 'quantize'), join(dir, 'q', 'model.json'));
  assert.equal(modelOutputPath('/w/rec/model.json', join(dir, 'existing'), 'quantize'), join(dir, 'existing', 'model.json'));
  assert.equal(modelOutputPath('/w/rec/model.json', join(dir, 'q', 'model.json'), 'quantize'), join(dir, 'q', 'model.json'));
  assert.throws(() => modelOutputPath('/w/rec/model.json', join(dir, 'q.onnx'), 'quantize'), (e: Error) => e instanceof OutputPathError && /not a \.onnx file/.test(e.message));
});

test('checkOutputFree refuses the original, its folder for TF.js, and an existing output', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-out-'));
  const model = join(dir, 'm.onnx');
  writeFileSync(model, 'x');
  await assert.rejects(checkOutputFree(model, 'onnx', true, model), /is the original model/);
  await assert.rejects(checkOutputFree(join(dir, 'model.json'), 'tfjs', true, join(dir, 'orig.json')), /folder of its own/);
  writeFileSync(join(dir, 'taken.onnx'), 'y');
  await assert.rejects(checkOutputFree(join(dir, 'taken.onnx'), 'onnx', false, model), OutputExistsError);
  await checkOutputFree(join(dir, 'taken.onnx'), 'onnx', true, model);
  await checkOutputFree(join(dir, 'free.onnx'), 'onnx', false, model);
});

test('parseRecipe reads steps and names every problem with its path', () => {
  const r = parseRecipe(JSON.stringify({ version: 1, model: 'm.onnx', steps: [{ method: 'prune-rows', settings: { sparsity: 0.5 } }, { method: 'quantize', settings: { dtype: 'int8' } }] }), 'r.recipe.json');
  assert.deepEqual(r.steps, [
    { method: 'prune-rows', settings: { sparsity: 0.5 } },
    { method: 'quantize', settings: { dtype: 'int8' } },
  ]);
  assert.throws(
    () => parseRecipe(JSON.stringify({ steps: [{ method: 'zap' }], output: 3 }), 'r.recipe.json'),
    (e: unknown) => e instanceof RecipeError && e.problems.map((p) => p.path).join(',') === 'output,steps[0].method',
  );
  // a problem of the whole file has no path: no empty field ('r.recipe.json: : not valid JSON')
  assert.throws(() => parseRecipe('{', 'r.recipe.json'), (e: unknown) => e instanceof RecipeError && /^r\.recipe\.json: not valid JSON: \S/.test(e.message));
  assert.throws(() => parseRecipe('[1]', 'r.recipe.json'), (e: unknown) => e instanceof Error && e.message === 'r.recipe.json: a recipe is a JSON object with "steps"');
  assert.throws(() => parseRecipe('{"steps": []}', 'r.recipe.json'), /steps: must be a non-empty array/);
});

test('a scan job counts parameters and exact zeros', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-scan-'));
  const model = await tableModel(dir);
  const scan = (await runJobInProcess({ kind: 'scan', path: model }, new AbortController().signal, () => undefined)) as ModelScan;
  assert.equal(scan.totalParams, 1024);
  assert.equal(scan.trainableParams, 1024);
  assert.equal(scan.zeros, 128);
  assert.deepEqual(scan.largest, [{ name: 'item_embedding.weight', params: 1024 }]);
});

test('a compress job writes the pruned model through a temp folder and reports before/after', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-compress-'));
  const model = await tableModel(dir);
  const original = readFileSync(model);
  const outPath = join(dir, 'items-pruned.onnx');
  const phases: string[] = [];
  const r = (await runJobInProcess(
    { kind: 'compress', path: model, method: 'prune-magnitude', settings: { sparsity: 0.5 }, outPath, tempDir: tempDirFor(outPath) },
    new AbortController().signal,
    (p) => phases.push(p.phase),
  )) as CompressJobResult;
  assert.ok(existsSync(outPath));
  assert.deepEqual(readFileSync(model), original, 'the original changed');
  assert.deepEqual(readdirSync(dir).sort(), ['items-pruned.onnx', 'items.onnx']);
  assert.equal(r.before.totalZeros, 128);
  assert.equal(r.after.totalZeros, 512);
  assert.equal(r.after.path, outPath);
  assert.equal(r.comparison.params.before, 1024);
  assert.equal(r.comparison.params.after, 1024);
  assert.ok(r.comparison.gzipBytes.after! < r.comparison.gzipBytes.before!);
  assert.deepEqual([...new Set(phases)], ['reading', 'prune-magnitude', 'writing', 'analysing', 'evaluating', 'renaming', 'done']);
});

test('a compress job refuses an existing output before any work, and a cancelled one leaves nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-compress-'));
  const model = await tableModel(dir);
  const taken = join(dir, 'taken.onnx');
  writeFileSync(taken, 'keep me');
  await assert.rejects(
    runJobInProcess({ kind: 'compress', path: model, method: 'prune-magnitude', settings: { sparsity: 0.5 }, outPath: taken, tempDir: tempDirFor(taken) }, new AbortController().signal, () => undefined),
    OutputExistsError,
  );
  assert.equal(readFileSync(taken, 'utf8'), 'keep me');
  // cancelled at the first progress report after the model was written to the temp folder
  const out = join(dir, 'sub', 'cancelled.onnx');
  mkdirSync(join(dir, 'sub'));
  const abort = new AbortController();
  await assert.rejects(
    runJobInProcess({ kind: 'compress', path: model, method: 'prune-magnitude', settings: { sparsity: 0.5 }, outPath: out, tempDir: tempDirFor(out) }, abort.signal, (p) => {
      if (p.phase === 'analysing') abort.abort();
    }),
  );
  assert.deepEqual(readdirSync(join(dir, 'sub')), []);
});

test('a two-step recipe job chains the methods in the temp folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-recipe-'));
  const model = await tableModel(dir);
  const outPath = join(dir, 'items-recipe.onnx');
  const r = (await runJobInProcess(
    {
      kind: 'compress',
      path: model,
      method: 'prune-magnitude',
      settings: {},
      steps: [
        { method: 'prune-magnitude', settings: { sparsity: 0.5 } },
        { method: 'quantize', settings: { dtype: 'float16' } },
      ],
      outPath,
      tempDir: tempDirFor(outPath),
    },
    new AbortController().signal,
    () => undefined,
  )) as CompressJobResult;
  assert.equal(r.method, 'prune-magnitude + quantize');
  assert.deepEqual(readdirSync(dir).sort(), ['items-recipe.onnx', 'items.onnx']);
  assert.ok(r.comparison.bytes.after! < r.comparison.bytes.before!, 'float16 did not shrink the file');
  assert.equal(r.after.totalZeros, 512);
});

test("candidates from the workspace setting that do not fit the model: the job runs without HR/NDCG and says so; chosen ones stop it", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-compress-cand-'));
  const model = join(dir, 'mf.onnx');
  await writeOnnxFile(model, new OnnxGraphBuilder({ graphName: 'mf', opset: 17 })
    .input('user', 'int64', ['batch'])
    .input('item', 'int64', ['batch'])
    .output('score', 'float32', ['batch', 1])
    .initializer('user_embedding.weight', 'float32', [4, 8], Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + 1)))
    .initializer('item_embedding.weight', 'float32', [6, 8], Float32Array.from({ length: 48 }, (_, i) => Math.cos(i)))
    .initializer('ones', 'float32', [8, 1], new Float32Array(8).fill(1))
    .node('Gather', ['user_embedding.weight', 'user'], ['u'], { axis: 0 }, { name: '/user_embedding/Gather' })
    .node('Gather', ['item_embedding.weight', 'item'], ['i'], { axis: 0 }, { name: '/item_embedding/Gather' })
    .node('Mul', ['u', 'i'], ['p'], {}, { name: '/Mul' })
    .node('MatMul', ['p', 'ones'], ['score'], {}, { name: '/sum/MatMul' })
    .toModelProto());
  // another model's candidates: item 40 is outside this model's 6-row table
  const other = join(dir, 'other-candidates.csv');
  writeFileSync(other, 'user,item,label\n0,40,1\n0,1,0\n0,2,0\n');
  const job = (out: string, candidatesFromSetting: boolean) =>
    runJobInProcess(
      {
        kind: 'compress', path: model, method: 'prune-magnitude', settings: { sparsity: 0.5 }, outPath: join(dir, out), tempDir: tempDirFor(join(dir, out)),
        evaluate: { candidates: other, candidatesFromSetting, k: 10, latency: false },
      },
      new AbortController().signal,
      () => undefined,
    );
  await assert.rejects(job('chosen.onnx', false), /other-candidates\.csv: line 2: item 40 is outside the model's embedding table \(6 rows/);
  assert.equal(existsSync(join(dir, 'chosen.onnx')), false);
  const r = (await job('from-setting.onnx', true)) as CompressJobResult;
  assert.ok(existsSync(join(dir, 'from-setting.onnx')));
  assert.equal(r.comparison.ndcg, undefined);
  assert.equal(r.comparison.hr, undefined);
  const note = r.notes.at(-1) ?? '';
  assert.match(note, /^No HR\/NDCG before and after: the candidates file of the prunescope\.datasetPath setting does not fit this model \(.*other-candidates\.csv: line 2: item 40 is outside/);
  assert.match(r.notes[0], /pruned|zero/i, 'the method summary stays first');
});

test('a later recipe step that fails names the model and the step, not the temp file the earlier steps wrote', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-compress-step-'));
  const model = await tableModel(dir);
  const outPath = join(dir, 'items-two.onnx');
  await assert.rejects(
    runJobInProcess(
      {
        kind: 'compress', path: model, method: 'prune-magnitude', settings: {}, outPath, tempDir: tempDirFor(outPath),
        steps: [{ method: 'prune-magnitude', settings: { sparsity: 0.5 } }, { method: 'factorize', settings: { tensors: ['nope'] } }],
      },
      new AbortController().signal,
      () => undefined,
    ),
    (e: unknown) => e instanceof Error && e.message === `${model}: step 2 of 2 (factorize), on the model as step 1 left it: factorize: no tensor named "nope" (tensors: item_embedding.weight)`,
  );
  assert.deepEqual(readdirSync(dir), ['items.onnx'], 'nothing written, no temp folder left');
});

test('recipe paths: written relative to the recipe folder (model, candidates, and the files steps name: data, teacher, calibration, nested ones too), read back absolute', () => {
  const written = relativeRecipe(
    {
      version: 1,
      model: '/w/models/neumf.onnx',
      candidates: '/w/data/val.csv',
      steps: [
        { method: 'finetune', settings: { data: '/w/data/train.csv', teacher: '/w/models/neumf.onnx', epochs: 2 } },
        { method: 'quantize', settings: { dtype: 'int4', rounding: 'output-aware', calibration: 'pairs.csv' } },
        { method: 'prune-fields', settings: { fields: { drop: 0.4, data: '/w/data/train.csv' }, compensate: true } },
      ],
    },
    '/w/models/neumf.front',
  );
  assert.deepEqual(written, {
    version: 1,
    model: '../neumf.onnx',
    candidates: '../../data/val.csv',
    steps: [
      { method: 'finetune', settings: { data: '../../data/train.csv', teacher: '../neumf.onnx', epochs: 2 } },
      { method: 'quantize', settings: { dtype: 'int4', rounding: 'output-aware', calibration: 'pairs.csv' } },
      { method: 'prune-fields', settings: { fields: { drop: 0.4, data: '../../data/train.csv' }, compensate: true } },
    ],
  });
  const read = absoluteRecipe(written, '/elsewhere/neumf.front');
  assert.equal(read.model, '/elsewhere/neumf.onnx');
  assert.equal(read.candidates, '/data/val.csv');
  assert.deepEqual(read.steps[0].settings, { data: '/data/train.csv', teacher: '/elsewhere/neumf.onnx', epochs: 2 });
  assert.equal(read.steps[1].settings.calibration, '/elsewhere/neumf.front/pairs.csv');
  // a path nested in a step's settings (prune-fields ranks fields on data): relative too
  assert.deepEqual(read.steps[2].settings, { fields: { drop: 0.4, data: '/data/train.csv' }, compensate: true });
  assert.equal(read.output, undefined);
});
