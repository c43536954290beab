// Tree-ensemble models (ai.onnx.ml TreeEnsemble*) in a real VS Code extension host: analysing one
// runs the 'trees' job and the panel gets the "Tree ensemble" summary.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PruneScopeApi } from '../../src/extension/extension.js';
import { parseWebviewMessage, type TreeFeaturesResult, type TreeRemovalResult, type TreesView } from '../../src/shared/protocol.js';
import type { ModelReport } from '../../src/shared/report.js';
import { api, EXTENSION_ID, sleep, workspaceDir } from './workspace.js';


/** What scripts/vscode-host/make-workspace.mjs wrote for the tree fixture. */
interface ExpectedTrees {
  file: string;
  csv: string;
  trees: number;
  features: number;
  useless: number[];
  unused: number[];
}

const expectedTrees = (): ExpectedTrees => (JSON.parse(fs.readFileSync(path.join(workspaceDir(), 'expected.json'), 'utf8')) as { trees: ExpectedTrees }).trees;

suite('PruneScope tree ensembles', () => {
  test('analyzeModel on a tree-ensemble ONNX returns and posts the tree summary with the planted useless features last', async () => {
    const a = await api();
    const e = expectedTrees();
    assert.ok(e, 'expected.json has no tree fixture');
    const uri = vscode.Uri.file(path.join(workspaceDir(), e.file));
    const report = (await vscode.commands.executeCommand('prunescope.analyzeModel', uri)) as (ModelReport & { trees?: TreesView }) | undefined;
    assert.ok(report, 'no report');
    assert.ok(report.trees, 'the report carries no tree summary');
    assert.equal(report.trees.ensembles.length, 1);
    const t = report.trees.ensembles[0];
    assert.equal(t.op, 'TreeEnsembleRegressor');
    assert.equal(t.trees, e.trees);
    assert.equal(t.perTree.length, e.trees);
    assert.equal(t.features, e.features);
    assert.equal(t.rankedBy, 'gain');
    assert.equal(t.depthHistogram.reduce((n, [, c]) => n + c, 0), e.trees);
    assert.equal(t.perTree.reduce((n, p) => n + p.nodes, 0), t.nodes);
    assert.ok(t.perTree.every((p) => p.depth <= 3 && p.leaves === (p.nodes + 1) / 2), 'per-tree shape of depth-3 binary trees');
    assert.deepEqual(t.unusedFeatures, e.unused);
    const lastRanked = t.importance.slice(-e.useless.length).map((f) => f.feature).sort((x, y) => x - y);
    assert.deepEqual(lastRanked, e.useless, `least important: ${lastRanked.join(', ')}`);
    // the panel got the same summary
    let panelTrees: TreesView | undefined;
    for (let i = 0; i < 100 && !panelTrees; i++) {
      panelTrees = a.panels().find((p) => p.model.fsPath === uri.fsPath)?.trees;
      if (!panelTrees) await sleep(100);
    }
    assert.ok(panelTrees, 'the panel got no tree summary');
    assert.equal(panelTrees.ensembles[0].trees, e.trees);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('analyzeModel on an ONNX model without trees returns no tree summary', async () => {
    const exp = JSON.parse(fs.readFileSync(path.join(workspaceDir(), 'expected.json'), 'utf8')) as { onnx: { file: string } };
    const report = (await vscode.commands.executeCommand('prunescope.analyzeModel', vscode.Uri.file(path.join(workspaceDir(), exp.onnx.file)))) as (ModelReport & { trees?: TreesView }) | undefined;
    assert.ok(report);
    assert.equal(report.trees, undefined);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});

suite('PruneScope tree feature pruning', () => {
  test('Drop Tree Features with explicit args writes <stem>-features.onnx, the dropped features become unused, the original is unchanged', async () => {
    const e = expectedTrees();
    const model = path.join(workspaceDir(), e.file);
    const before = fs.readFileSync(model);
    const out = model.replace(/\.onnx$/, '-features.onnx');
    fs.rmSync(out, { force: true });
    const r = (await vscode.commands.executeCommand('prunescope.dropTreeFeatures', vscode.Uri.file(model), { features: e.useless })) as TreeFeaturesResult | undefined;
    assert.ok(r, 'the command returned no result');
    assert.equal(r.outPath, out);
    assert.ok(fs.existsSync(out), 'no output file');
    assert.deepEqual(r.removedFeatures, e.useless);
    assert.deepEqual(r.becameUnused, e.useless.filter((f) => !e.unused.includes(f)));
    assert.equal(r.after.trees, e.trees);
    assert.ok(r.after.nodes < r.before.nodes, `nodes ${r.before.nodes} -> ${r.after.nodes}`);
    assert.ok(fs.readFileSync(model).equals(before), 'the original model changed');
    assert.deepEqual(fs.readdirSync(path.dirname(model)).filter((n) => n.startsWith('.prunescope-')), [], 'a temp folder was left behind');
    const report = (await vscode.commands.executeCommand('prunescope.analyzeModel', vscode.Uri.file(out))) as (ModelReport & { trees?: TreesView }) | undefined;
    assert.deepEqual(report?.trees?.ensembles[0].unusedFeatures, e.useless);
    // a second run without overwrite must not replace the output
    const again = await vscode.commands.executeCommand('prunescope.dropTreeFeatures', vscode.Uri.file(model), { features: e.useless });
    assert.equal(again, undefined);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('the webview protocol accepts dropTreeFeatures only with a node name and integer feature ids', () => {
    assert.deepEqual(parseWebviewMessage({ type: 'dropTreeFeatures', node: 'trees', features: [4, 6] }), { type: 'dropTreeFeatures', node: 'trees', features: [4, 6] });
    assert.equal(parseWebviewMessage({ type: 'dropTreeFeatures', node: 'trees', features: [] }), undefined);
    assert.equal(parseWebviewMessage({ type: 'dropTreeFeatures', node: 'trees', features: [1.5] }), undefined);
    assert.equal(parseWebviewMessage({ type: 'dropTreeFeatures', node: 'trees', features: [-1] }), undefined);
    assert.equal(parseWebviewMessage({ type: 'dropTreeFeatures', features: [1] }), undefined);
    assert.equal(parseWebviewMessage({ type: 'dropTreeFeatures', node: 'trees', features: '1' }), undefined);
  });
});

suite('PruneScope tree removal', () => {
  test('Remove Trees with explicit args writes <stem>-trees.onnx beside the model, held-out figures on the other half of the CSV, the original unchanged', async () => {
    const e = expectedTrees();
    const model = path.join(workspaceDir(), e.file);
    const before = fs.readFileSync(model);
    const out = model.replace(/\.onnx$/, '-trees.onnx');
    fs.rmSync(out, { force: true });
    const data = path.join(workspaceDir(), e.csv);
    const r = (await vscode.commands.executeCommand('prunescope.removeTrees', vscode.Uri.file(model), { data, fraction: 0.5, tolerance: 1e9 })) as TreeRemovalResult | undefined;
    assert.ok(r, 'the command returned no result');
    assert.equal(r.outPath, out);
    assert.ok(fs.existsSync(out), 'no output file');
    assert.equal(r.before.trees, e.trees);
    assert.equal(r.after.trees, e.trees - Math.round(e.trees / 2));
    assert.equal(r.droppedTrees.length, Math.round(e.trees / 2));
    assert.match(r.selection, /chose on a seeded half of .*gbdt-valid\.csv/);
    assert.match(r.heldOut.source, /the other half of gbdt-valid\.csv/);
    assert.ok(r.tuning.rows > 0 && r.heldOut.rows > 0);
    assert.ok(fs.readFileSync(model).equals(before), 'the original model changed');
    assert.deepEqual(fs.readdirSync(path.dirname(model)).filter((n) => n.startsWith('.prunescope-')), [], 'a temp folder was left behind');
    const report = (await vscode.commands.executeCommand('prunescope.analyzeModel', vscode.Uri.file(out))) as (ModelReport & { trees?: TreesView }) | undefined;
    assert.equal(report?.trees?.ensembles[0].trees, r.after.trees);
    // a second run without overwrite must not replace the output
    const again = await vscode.commands.executeCommand('prunescope.removeTrees', vscode.Uri.file(model), { data, fraction: 0.5 });
    assert.equal(again, undefined);
    fs.rmSync(out, { force: true });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('prunescope.removeTrees is registered and in the command palette for .onnx files', async () => {
    const all = await vscode.commands.getCommands(true);
    assert.ok(all.includes('prunescope.removeTrees'));
    const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { menus: Record<string, Array<{ command: string; when?: string }>> } };
    assert.match(pkg.contributes.menus.commandPalette.find((m) => m.command === 'prunescope.removeTrees')?.when ?? '', /resourceExtname == \.onnx/);
  });
});

suite('PruneScope tree ensembles in the models tree', () => {
  test('a tree-ensemble ONNX file is described as "tree ensemble · N trees"', async () => {
    const a = await api();
    const e = expectedTrees();
    const file = path.join(workspaceDir(), e.file);
    let scan: Awaited<ReturnType<PruneScopeApi['models']>>[number]['scan'];
    for (let i = 0; i < 300 && !scan; i++) {
      await Promise.race([a.modelsIdle(), sleep(1000)]);
      scan = (await a.models()).find((m) => m.uri.fsPath === file)?.scan;
      if (!scan) await sleep(100);
    }
    assert.ok(scan, `the models tree has no scan of ${e.file}`);
    assert.equal(scan.trees, e.trees);
    const { modelDescription } = await import('../../src/extension/models-tree.js');
    const d = modelDescription(scan);
    assert.ok(d.includes(`tree ensemble · ${e.trees} trees`), d);
    const tiny = (await a.models()).find((m) => m.uri.fsPath === path.join(workspaceDir(), 'onnx', 'tiny.onnx'))?.scan;
    assert.ok(tiny);
    assert.equal(tiny.trees, undefined);
    assert.ok(!modelDescription(tiny).includes('tree ensemble'));
  });
});
