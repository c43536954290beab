// Compress to Target, the run history and Prune Model's fine-tuning inside a real VS Code
// extension host. The dialogs are answered through the extension's scripted answers (the same
// quick picks and input boxes run, with the answers queued instead of typed).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PruneScopeApi } from '../../src/extension/extension.js';
import type { CompressJobResult, PlanView, RunRecord } from '../../src/shared/protocol.js';
import { api, EXTENSION_ID, sha, waitFor, workspaceDir, ws } from './workspace.js';


interface Samples {
  samples: Record<'neumf', { tfjs: string; onnx: string; candidates: string; interactions: string }>;
}

const neumf = () => (JSON.parse(fs.readFileSync(path.join(workspaceDir(), 'expected.json'), 'utf8')) as Samples).samples.neumf;
const tempFolders = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.prunescope-'));

/** Every answer queued for a test was taken by its dialogs (none left for the next test). */
function assertAnswersUsed(a: PruneScopeApi): void {
  assert.equal(a.clearDialogAnswers(), 0, 'some scripted dialog answers were not asked for');
}

/** Runs `run` with prunescope.trainingDataPath set to `interactions` for the workspace, unset after. */
async function withTrainingData<T>(interactions: string, run: () => Promise<T>): Promise<T> {
  const config = vscode.workspace.getConfiguration('prunescope');
  await config.update('trainingDataPath', interactions, vscode.ConfigurationTarget.Workspace);
  try {
    return await run();
  } finally {
    await config.update('trainingDataPath', undefined, vscode.ConfigurationTarget.Workspace);
  }
}

suite('PruneScope Compress to Target and run history', () => {
  let plan: PlanView | undefined;

  suiteSetup(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(ws('.prunescope'), { recursive: true, force: true });
    for (const n of fs.readdirSync(ws('samples')).filter((f) => /^neumf-(target|prune-magnitude)/.test(f))) fs.rmSync(ws(`samples/${n}`), { recursive: true, force: true });
  });

  suiteTeardown(async () => {
    (await api()).clearDialogAnswers();
  });

  test('the webview protocol accepts writePlanPoint with a plain id only', async () => {
    const { parseWebviewMessage } = await import('../../src/shared/protocol.js');
    assert.deepEqual(parseWebviewMessage({ type: 'writePlanPoint', id: 'c12' }), { type: 'writePlanPoint', id: 'c12' });
    for (const id of ['../x', '', 5, 'a b', 'x'.repeat(65)]) assert.equal(parseWebviewMessage({ type: 'writePlanPoint', id }), undefined, String(id));
  });

  test('Compress to Target is contributed to the explorer and Models tree menus; the new settings are declared', () => {
    const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as {
      contributes: { menus: Record<string, Array<{ command: string; when?: string }>>; configuration: { properties: Record<string, unknown> } };
    };
    const explorer = pkg.contributes.menus['explorer/context'].find((m) => m.command === 'prunescope.compressToTarget');
    assert.match(explorer?.when ?? '', /resourceExtname == \.onnx \|\| resourceFilename == model\.json/);
    const tree = pkg.contributes.menus['view/item/context'].filter((m) => m.command === 'prunescope.compressToTarget' || m.command === 'prunescope.compareRuns' || m.command === 'prunescope.deleteRun');
    assert.deepEqual([...new Set(tree.map((m) => m.command))].sort(), ['prunescope.compareRuns', 'prunescope.compressToTarget', 'prunescope.deleteRun']);
    assert.ok(pkg.contributes.configuration.properties['prunescope.trainingDataPath']);
    assert.ok(pkg.contributes.configuration.properties['prunescope.compressBudgetMinutes']);
    assert.deepEqual(pkg.contributes.configuration.properties['prunescope.compressHoldout'], {
      type: 'number',
      default: 0,
      minimum: 0,
      maximum: 0.9,
      markdownDescription: (pkg.contributes.configuration.properties['prunescope.compressHoldout'] as { markdownDescription: string }).markdownDescription,
    });
  });

  test('Compress to Target (dialogs, 1-minute budget) writes the chosen model beside the original, a run record, and the plan to the panel', async function () {
    this.timeout(240_000);
    const a = await api();
    const s = neumf();
    const model = ws(s.onnx);
    const before = sha(model);
    a.answerDialogs(['Keep ≥ 95%', 'Any speed', s.candidates, 'Training-free']);
    const result = await vscode.commands.executeCommand<PlanView | undefined>('prunescope.compressToTarget', vscode.Uri.file(model), { budgetMinutes: 1 });
    assertAnswersUsed(a);
    assert.ok(result, 'no result (see the PruneScope log)');
    plan = result;
    assert.equal(result.output, ws('samples/neumf-target.onnx'));
    assert.ok(fs.existsSync(result.output), `${result.output} was not written`);
    assert.equal(fs.statSync(result.output).size, result.chosen.bytes);
    assert.equal(sha(model), before, 'the original model changed');
    assert.deepEqual(tempFolders(ws('samples')), []);
    assert.equal(result.budget.maxDrop, 0.05);
    assert.equal(result.budgetMinutes, 1);
    assert.ok(result.chosen.ratio > 1 && result.front.length >= 1);
    // the run record
    const runs = await a.runs(vscode.Uri.file(model));
    assert.equal(runs[0].kind, 'compress-plan');
    assert.deepEqual(runs[0].outputs, ['samples/neumf-target.onnx']);
    assert.equal(runs[0].model, 'samples/neumf.onnx');
    assert.deepEqual(runs[0].bytes, { before: result.baseline.bytes, after: result.chosen.bytes });
    assert.equal(runs[0].front?.length, result.front.length);
    assert.ok(fs.existsSync(ws(`.prunescope/runs/${runs[0].id}.json`)));
    assert.match(fs.readFileSync(ws('.prunescope/runs/README.md'), 'utf8'), /safe to delete/);
    // the panel got the front
    const panel = await waitFor('the panel with the plan', 10_000, () => a.panels().find((p) => p.model.fsPath === model && p.plan));
    assert.equal(panel.plan?.chosen.id, result.chosen.id);
  });

  test('a front point clicked in the panel is written by a compress job with its recipe, and opens its before/after', async function () {
    this.timeout(120_000);
    const a = await api();
    assert.ok(plan, 'the plan of the previous test is missing');
    const model = ws(neumf().onnx);
    const before = sha(model);
    const point = plan.front.find((p) => p.id !== plan!.chosen.id && p.recipe.length > 0) ?? plan.chosen;
    const out = ws(`samples/neumf-target-${point.ratio.toFixed(1)}x.onnx`);
    fs.rmSync(out, { force: true });
    await a.sendFromWebview(vscode.Uri.file(model), { type: 'writePlanPoint', id: point.id });
    const panel = await waitFor('the before/after of the written point', 90_000, () => a.panels().find((p) => p.model.fsPath === model && p.comparison?.output === out));
    const cmp = panel.comparison as CompressJobResult;
    assert.ok(fs.existsSync(out));
    assert.equal(fs.statSync(out).size, point.bytes, 'the written point is not the model the search measured');
    assert.equal(sha(model), before, 'the original model changed');
    assert.ok(cmp.comparison.ndcg && cmp.comparison.ndcg.after !== null, 'NDCG@K of the point was not measured');
    assert.ok(Math.abs(cmp.comparison.ndcg.after! - point.metrics.ndcg) < 1e-9, `NDCG@10 ${cmp.comparison.ndcg.after} against the search's ${point.metrics.ndcg}`);
    const runs = await waitFor('the run record of the written point', 10_000, async () => {
      const r = await a.runs(vscode.Uri.file(model));
      return r.some((x) => x.outputs.includes(path.relative(workspaceDir(), out))) ? r : undefined;
    });
    assert.equal(runs[0].kind, 'compress');
    assert.match(runs[0].title, new RegExp(`^front point ${point.ratio.toFixed(1).replace('.', '\\.')}x \\(`));
    assert.deepEqual(runs[0].recipe, point.recipe);
  });

  test('the Models tree lists the runs under the model, newest first; open, compare and delete them', async function () {
    this.timeout(60_000);
    const a = await api();
    const uri = vscode.Uri.file(ws(neumf().onnx));
    const records = await a.runs(uri);
    assert.ok(records.length >= 2, `${records.length} runs`);
    const listed = await a.treeRuns(uri);
    assert.deepEqual(listed.map((r) => r.label), records.map((r) => r.title), 'the tree lists the runs newest first');
    const target = listed.find((r) => r.label.startsWith('compress to target'));
    assert.ok(target);
    assert.match(target.description, /^\d+\.\dx smaller · NDCG@10 \d\.\d{4} → \d\.\d{4} \([+−]\d+\.\d%\)$/);
    // click: the panel gets that run
    const opened = await vscode.commands.executeCommand<RunRecord[]>('prunescope.openRun', target.node);
    assert.equal(opened.length, 1);
    assert.equal(a.panels().find((p) => p.model.fsPath === uri.fsPath)?.history?.runs[0].id, opened[0].id);
    // Compare Runs…: two picked in the multi-select
    a.answerDialogs([`${listed[0].label} | ${listed[1].label}`]);
    const compared = await vscode.commands.executeCommand<RunRecord[]>('prunescope.compareRuns', { kind: 'model', uri });
    assertAnswersUsed(a);
    assert.deepEqual(compared.map((r) => r.id), records.slice(0, 2).map((r) => r.id));
    const history = a.panels().find((p) => p.model.fsPath === uri.fsPath)?.history;
    assert.deepEqual(history?.runs.map((r) => r.id), compared.map((r) => r.id));
    assert.equal(history?.model, 'samples/neumf.onnx');
    // Delete Run: the record file goes, the model it wrote stays
    const victim = listed[0].node as { record: RunRecord };
    assert.equal(await vscode.commands.executeCommand<boolean>('prunescope.deleteRun', victim), true);
    assert.equal(fs.existsSync(ws(`.prunescope/runs/${victim.record.id}.json`)), false);
    for (const o of victim.record.outputs) assert.ok(fs.existsSync(ws(o)), `${o} was deleted with its record`);
    assert.deepEqual((await a.treeRuns(uri)).map((r) => r.label), listed.slice(1).map((r) => r.label));
  });

  test('Prune Model (dialogs) offers fine-tuning when training data is known, and the title says what ran', async function () {
    this.timeout(180_000);
    const a = await api();
    const s = neumf();
    const model = ws(s.onnx);
    const before = sha(model);
    const out = ws('samples/neumf-prune-magnitude-ft.onnx');
    fs.rmSync(out, { force: true });
    const result = await withTrainingData(s.interactions, async () => {
      a.answerDialogs(['Magnitude (unstructured weights)', '50%', 'layer', 'Fine-tune 2 epochs', out]);
      const r = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(model));
      assertAnswersUsed(a);
      return r;
    });
    assert.ok(result, 'no result (see the PruneScope log)');
    assert.equal(result.output, out);
    assert.equal(sha(model), before);
    assert.equal(result.method, 'finetune', 'magnitude pruning with 2 epochs is one finetune step with dynamic masks');
    assert.equal(result.training?.length, 1);
    assert.equal(result.training?.[0].losses.length, 2, 'two epochs of training');
    const runs = await a.runs(vscode.Uri.file(model));
    assert.equal(runs[0].title, 'prune-magnitude 50% (fine-tuned 2 epochs)');
    assert.deepEqual(runs[0].recipe, [
      {
        method: 'finetune',
        // the unpruned model teaches the fine-tuning (prune-steps.ts)
        settings: { data: ws(s.interactions), epochs: 2, lr: 0.001, batchSize: 1024, masks: 'none', teacher: model, dynamic: { prune: { sparsity: 0.5, scope: 'layer' }, regrowEpochs: 1, frequency: 100 } },
      },
    ]);
    assert.ok(runs[0].backend?.startsWith('tfjs '), `backend ${runs[0].backend}`);
  });

  test('Quantize Model (dialogs) offers quantization-aware fine-tuning for int4 when training data is known', async function () {
    this.timeout(180_000);
    const a = await api();
    const s = neumf();
    const model = ws(s.onnx);
    const before = sha(model);
    const out = ws('samples/neumf-quantize-qat.onnx');
    fs.rmSync(out, { force: true });
    const result = await withTrainingData(s.interactions, async () => {
      a.answerDialogs(['int4', 'per column', 'output-aware', 'Fine-tune 2 epochs quantization-aware, then quantize', out]);
      const r = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.quantizeModel', vscode.Uri.file(model));
      assertAnswersUsed(a);
      return r;
    });
    assert.ok(result, 'no result (see the PruneScope log)');
    assert.equal(result.output, out);
    assert.equal(sha(model), before);
    assert.equal(result.training?.length, 1);
    assert.equal(result.training?.[0].losses.length, 2, 'two epochs of training');
    const runs = await a.runs(vscode.Uri.file(model));
    assert.equal(runs[0].title, 'quantize int4 per column (quantization-aware: fine-tuned 2 epochs)');
    assert.deepEqual(runs[0].recipe, [
      // the unquantized model teaches the training (quantize-steps.ts)
      { method: 'finetune', settings: { data: ws(s.interactions), epochs: 2, lr: 0.001, batchSize: 1024, quantAware: { dtype: 'int4', scales: 'column' }, teacher: model } },
      { method: 'quantize', settings: { dtype: 'int4', tensors: 'embeddings', scales: 'column', rounding: 'output-aware' } },
    ]);
    // the quantize step rounded output-aware, and the report says on what it measured
    assert.ok(result.notes.some((n) => n.startsWith('Output-aware rounding: ')), result.notes.join('\n'));
  });

  test('Prune Model without training data is one-shot, and says so', async function () {
    this.timeout(60_000);
    const a = await api();
    const model = ws(neumf().onnx);
    const out = ws('samples/neumf-prune-magnitude-oneshot.onnx');
    fs.rmSync(out, { force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(model), {
      settings: { sparsity: 0.5 },
      output: out,
      evaluate: false,
    });
    assert.ok(result && fs.existsSync(out));
    assert.equal(result.training, undefined);
    const runs = await a.runs(vscode.Uri.file(model));
    assert.equal(runs[0].title, 'prune-magnitude 50% (one-shot: no fine-tuning)');
  });
});
