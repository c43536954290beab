// The editor experience inside a real VS Code extension host (code-server): the models tree,
// the .onnx editor, compression jobs through the commands (progress, output, cancel), the
// diagnostics and quick fixes on model.json, the CodeLens, the backend status, and that jobs
// never block the extension host's event loop.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as vscode from 'vscode';
import type { PruneScopeApi } from '../../src/extension/extension.js';
import type { JobEvent } from '../../src/extension/job-bridge.js';
import type { CompressJobResult } from '../../src/shared/protocol.js';
import { api, EXTENSION_ID, sha, sleep, waitFor, workspaceDir, ws } from './workspace.js';


interface Expected {
  onnx: { file: string; totalParams: number; totalZeros: number };
  tfjs: { file: string; totalParams: number; totalZeros: number };
  samples: Record<'neumf' | 'two-tower' | 'deepfm', { tfjs: string; onnx: string; candidates: string; interactions: string }>;
}

const expected = (): Expected => JSON.parse(fs.readFileSync(path.join(workspaceDir(), 'expected.json'), 'utf8')) as Expected;

function tempFolders(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('.prunescope-'));
}

/** Records job events until disposed. */
function recordJobs(a: PruneScopeApi): { events: JobEvent[]; dispose(): void } {
  const events: JobEvent[] = [];
  const sub = a.onJobEvent((e) => events.push(e));
  return { events, dispose: () => sub.dispose() };
}

suite('PruneScope editor features', () => {
  suiteSetup(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('the models tree lists the fixture models with format, parameters and sparsity', async () => {
    const a = await api();
    const e = expected();
    const listed = await waitFor('the models tree to list and scan every fixture model', 45_000, async () => {
      // bounded: a scan queue that never went idle must fail with this test's message, not mocha's timeout
      await Promise.race([a.modelsIdle(), sleep(1000)]);
      const l = await a.models();
      const scanned = l.filter((m) => m.scan);
      return scanned.length >= 8 ? l : undefined;
    });
    const byRel = new Map(listed.map((m) => [path.relative(workspaceDir(), m.uri.fsPath), m]));
    for (const rel of [e.onnx.file, e.tfjs.file, ...Object.values(e.samples).flatMap((s) => [s.tfjs, s.onnx])]) {
      assert.ok(byRel.has(rel), `the tree does not list ${rel}; it lists ${[...byRel.keys()].join(', ')}`);
    }
    const tiny = byRel.get(e.onnx.file)?.scan;
    assert.ok(tiny);
    assert.equal(tiny.format, 'onnx');
    assert.equal(tiny.totalParams, e.onnx.totalParams);
    assert.equal(tiny.zeros, e.onnx.totalZeros);
    const tf = byRel.get(e.tfjs.file)?.scan;
    assert.ok(tf);
    assert.equal(tf.format, 'tfjs-layers');
    assert.equal(tf.totalParams, e.tfjs.totalParams);
    assert.equal(tf.zeros, e.tfjs.totalZeros);
    assert.ok(tf.fileBytes > 0);
  });

  test('an .onnx file opens in the PruneScope custom editor with its analysis', async () => {
    const a = await api();
    const uri = vscode.Uri.file(ws(expected().onnx.file));
    await vscode.commands.executeCommand('vscode.openWith', uri, 'prunescope.onnxViewer');
    const tab = await waitFor('the custom editor tab', 15_000, () =>
      vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.input instanceof vscode.TabInputCustom && t.input.viewType === 'prunescope.onnxViewer'),
    );
    assert.ok((tab.input as vscode.TabInputCustom).uri.fsPath.endsWith('tiny.onnx'));
    const panel = await waitFor('the analysis in the custom editor', 30_000, () => a.panels().find((p) => p.model.fsPath === uri.fsPath && p.report));
    assert.equal(panel.report?.totalParams, expected().onnx.totalParams);
    await panel.ready;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('Prune Model runs a job with progress, writes the output, keeps the original, and the host event loop stays free', async () => {
    const a = await api();
    const s = expected().samples.neumf;
    const model = ws(s.onnx);
    const before = sha(model);
    const out = ws('samples/out/neumf-pruned.onnx');
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
    const rec = recordJobs(a);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let result: CompressJobResult | undefined;
    try {
      result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(model), {
        method: 'prune-magnitude',
        settings: { sparsity: 0.6 },
        output: out,
        candidates: ws(s.candidates),
      });
    } finally {
      delay.disable();
      rec.dispose();
    }
    assert.ok(result, 'the prune command returned no result (see the PruneScope log)');
    assert.equal(result.output, out);
    assert.ok(fs.existsSync(out), `${out} was not written`);
    assert.equal(sha(model), before, 'the original model changed');
    assert.deepEqual(tempFolders(path.dirname(out)), []);
    // progress went through the job's phases, in order
    const progress = rec.events.filter((e) => e.kind === 'compress' && e.state === 'progress').map((e) => e.progress!);
    assert.ok(progress.length >= 4, `only ${progress.length} progress events`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].fraction >= progress[i - 1].fraction, 'progress went backwards');
    assert.ok(progress.some((p) => p.phase === 'prune-magnitude'));
    assert.ok(progress.some((p) => p.phase === 'evaluating'));
    assert.ok(rec.events.some((e) => e.kind === 'compress' && e.state === 'done'));
    // the before/after report: 60% of the chosen weights are now zero, accuracy was measured
    const zerosAfter = result.after.tensors.filter((t) => t.trainable).reduce((n, t) => n + t.zeros, 0);
    assert.ok(zerosAfter > result.before.totalZeros, 'the output has no more zeros than the original');
    assert.equal(result.comparison.params.before, result.comparison.params.after, 'unstructured pruning keeps the parameter count');
    assert.ok(result.comparison.gzipBytes.after! < result.comparison.gzipBytes.before!, 'the gzip size did not shrink');
    assert.ok(result.comparison.ndcg && result.comparison.ndcg.after !== null, 'NDCG@K was not measured on the candidates');
    assert.ok(result.comparison.latency.length > 0, 'latency was not measured');
    // the panel of the original shows the comparison
    const panel = await waitFor('the panel with the comparison', 10_000, () => a.panels().find((p) => p.model.fsPath === model && p.comparison));
    assert.equal(panel.comparison?.output, out);
    // the work ran in the worker: the host's event loop was never held up for long
    const p99 = delay.percentile(99) / 1e6;
    const max = delay.max / 1e6;
    assert.ok(p99 < 200, `event-loop delay p99 ${p99.toFixed(1)} ms during the job (max ${max.toFixed(1)} ms)`);
  });

  test('Prune Model on a TF.js model (embedding rows) writes a model.json in a folder of its own', async () => {
    const s = expected().samples['two-tower'];
    const model = ws(s.tfjs);
    const before = sha(model);
    const out = ws('samples/out/two-tower-rows/model.json');
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(model), {
      method: 'prune-rows',
      settings: { sparsity: 0.3 },
      output: out,
      evaluate: false,
    });
    assert.ok(result, 'the prune-rows command returned no result (see the PruneScope log)');
    assert.ok(fs.existsSync(out));
    assert.ok(fs.readdirSync(path.dirname(out)).some((n) => n.endsWith('.bin')), 'no weight shard next to the output model.json');
    assert.equal(sha(model), before);
    assert.ok(result.comparison.params.after! < result.comparison.params.before!, 'row pruning did not remove parameters');
    assert.ok(result.changes.length > 0);
  });

  test('cancelling a job leaves no output and no temp folder', async () => {
    const a = await api();
    const s = expected().samples.deepfm;
    const model = ws(s.onnx);
    const outDir = ws('samples/cancelled');
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir, { recursive: true });
    const out = path.join(outDir, 'deepfm-pruned.onnx');
    let cancelledAt: string | undefined;
    const states: string[] = [];
    const sub = a.onJobEvent((e) => {
      if (e.kind === 'compress') states.push(e.state);
      // cancel once the model has been written to the temp folder: the worst moment
      if (e.kind === 'compress' && e.state === 'progress' && e.progress && e.progress.fraction >= 0.6 && !cancelledAt) {
        cancelledAt = e.progress.phase;
        a.cancelJobs();
      }
    });
    let result: CompressJobResult | undefined;
    try {
      result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(model), {
        settings: { sparsity: 0.5 },
        output: out,
        candidates: ws(s.candidates),
      });
    } finally {
      sub.dispose();
    }
    assert.ok(cancelledAt, 'the job finished before it could be cancelled');
    assert.equal(result, undefined, 'a cancelled job returned a result');
    assert.equal(fs.existsSync(out), false, `${out} exists after cancel (cancelled during "${cancelledAt}")`);
    await waitFor('the temp folder to be removed', 5_000, () => tempFolders(outDir).length === 0 || undefined);
    assert.deepEqual(fs.readdirSync(outDir), []);
    assert.equal(states[states.length - 1], 'cancelled', `the job's last state: ${states[states.length - 1]}`);
  });

  test('diagnostics appear on the weight entry of a model.json and a quick fix starts the job', async () => {
    const a = await api();
    const rel = expected().samples.neumf.tfjs;
    const uri = vscode.Uri.file(ws(rel));
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const diags = await waitFor('PruneScope diagnostics on model.json', 30_000, () => {
      const d = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'PruneScope');
      return d.length > 0 ? d : undefined;
    });
    const text = doc.getText();
    const manifestAt = text.indexOf('"weightsManifest"');
    for (const d of diags) {
      const literal = doc.getText(d.range);
      assert.match(literal, /^".+"$/, `the diagnostic is not on a name literal: ${literal}`);
      assert.ok(doc.offsetAt(d.range.start) > manifestAt, `"${literal}" is not the weights-manifest entry`);
    }
    const q = diags.find((d) => d.code === 'quantize-int8');
    assert.ok(q, `no int8 finding among: ${diags.map((d) => d.message).join(' | ')}`);
    assert.match(q.message, /holds \d+% of the parameters/);
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', uri, q.range);
    const fix = actions.find((x) => x.command?.command === 'prunescope.runFinding');
    assert.ok(fix, `no job quick fix; actions: ${actions.map((x) => x.title).join(' | ')}`);
    assert.match(fix.title, /^Quantize .+ to uint8$/);
    assert.ok(actions.some((x) => x.command?.command === 'prunescope.writeRecipe'), 'no "write a recipe" quick fix');
    const rec = recordJobs(a);
    let result: CompressJobResult | undefined;
    try {
      result = await vscode.commands.executeCommand<CompressJobResult | undefined>(fix.command!.command, ...(fix.command!.arguments ?? []));
    } finally {
      rec.dispose();
    }
    assert.ok(rec.events.some((e) => e.kind === 'compress' && e.state === 'started'), 'the quick fix started no compress job');
    assert.ok(result, 'the quick fix job returned no result');
    assert.ok(fs.existsSync(result.output));
    const target = (fix.command!.arguments![1] as { target: string }).target;
    const quantized = result.after.tensors.find((t) => t.name === target);
    assert.equal(quantized?.storedDtype, 'uint8', `the quick fix did not quantize ${target}`);
    fs.rmSync(path.dirname(result.output), { recursive: true, force: true });
  });

  test('the "write a recipe" quick fix writes a recipe that Run Recipe runs', async () => {
    const rel = expected().samples.neumf.tfjs;
    const uri = vscode.Uri.file(ws(rel));
    const diags = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'PruneScope');
    assert.ok(diags.length > 0);
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', uri, diags[0].range);
    const write = actions.find((x) => x.command?.command === 'prunescope.writeRecipe');
    assert.ok(write);
    const recipeUri = await vscode.commands.executeCommand<vscode.Uri | undefined>(write.command!.command, ...(write.command!.arguments ?? []));
    assert.ok(recipeUri && fs.existsSync(recipeUri.fsPath), 'no recipe file written');
    const recipe = JSON.parse(fs.readFileSync(recipeUri.fsPath, 'utf8')) as { model: string; steps: Array<{ method: string }> };
    assert.equal(path.resolve(path.dirname(recipeUri.fsPath), recipe.model), uri.fsPath);
    assert.ok(recipe.steps.length >= 1);
    const out = ws('samples/out/from-recipe/model.json');
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.runRecipe', recipeUri, { output: out, evaluate: false });
    assert.ok(result && fs.existsSync(out), 'Run Recipe wrote no model');
    fs.rmSync(recipeUri.fsPath);
  });

  test('the CodeLens "Analyze model" appears above code that loads a model', async () => {
    const uri = vscode.Uri.file(ws('serve.ts'));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
    const lenses = await waitFor('CodeLenses in serve.ts', 15_000, async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
      return l.some((x) => x.command?.title === 'Analyze model') ? l : undefined;
    });
    const analyze = lenses.filter((l) => l.command?.title === 'Analyze model');
    const targets = analyze.map((l) => (l.command!.arguments![0] as vscode.Uri).fsPath).sort();
    assert.deepEqual(targets, [ws('onnx/tiny.onnx'), ws('tfjs/model.json')].sort());
    assert.ok(lenses.some((l) => l.command?.title === 'PruneScope: model file not found'), 'no lens for the missing model');
    const report = await vscode.commands.executeCommand<{ totalParams: number }>(analyze[0].command!.command, ...(analyze[0].command!.arguments ?? []));
    assert.ok(report && report.totalParams > 0);
    const py = vscode.Uri.file(ws('check.py'));
    await vscode.workspace.openTextDocument(py);
    const pyLenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', py);
    assert.equal(pyLenses.filter((l) => l.command?.title === 'Analyze model').length, 1);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('the status bar backend is probed in the worker and can be chosen', async () => {
    const a = await api();
    const b = await a.backend();
    assert.ok(b, 'no backend reported');
    assert.ok(['wasm', 'cpu', 'tensorflow', 'webgpu'].includes(b.backend), `unexpected backend ${b.backend}`);
    assert.ok(b.reason.length > 0);
    await vscode.commands.executeCommand('prunescope.chooseBackend', 'cpu');
    const after = await a.backend();
    assert.equal(after?.backend, 'cpu');
    await vscode.workspace.getConfiguration('prunescope').update('backend', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('commands that act on models are contributed with when-clauses for model files', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const pkg = ext.packageJSON as { contributes: { menus: Record<string, Array<{ command: string; when?: string }>> } };
    const explorer = pkg.contributes.menus['explorer/context'];
    for (const id of ['prunescope.analyzeModel', 'prunescope.pruneModel', 'prunescope.quantizeModel', 'prunescope.factorizeModel', 'prunescope.distillModel', 'prunescope.compareModels']) {
      const entry = explorer.find((m) => m.command === id);
      assert.ok(entry, `${id} is not in the explorer context menu`);
      assert.match(entry.when ?? '', /resourceExtname == \.onnx/);
    }
    const all = await vscode.commands.getCommands(true);
    for (const id of ['prunescope.pruneModel', 'prunescope.quantizeModel', 'prunescope.factorizeModel', 'prunescope.distillModel', 'prunescope.compareModels', 'prunescope.runRecipe']) {
      assert.ok(all.includes(id), `${id} is not registered`);
    }
  });
});

suite('PruneScope compression commands', () => {
  test('Quantize Model (ONNX int8) makes a smaller model with a before/after report', async () => {
    const s = expected().samples.neumf;
    const out = ws('samples/out/neumf-int8.onnx');
    fs.rmSync(out, { force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.quantizeModel', vscode.Uri.file(ws(s.onnx)), {
      settings: { dtype: 'int8', tensors: 'embeddings' },
      output: out,
      candidates: ws(s.candidates),
    });
    assert.ok(result, 'no result (see the PruneScope log)');
    assert.ok(fs.existsSync(out));
    assert.ok(result.comparison.bytes.after! < result.comparison.bytes.before!, 'the int8 model is not smaller');
    assert.ok(result.comparison.hr && result.comparison.hr.after !== null, 'HR@K of the quantized model was not measured');
  });

  test('Factorize Model replaces a table by two factors', async () => {
    const s = expected().samples.neumf;
    const out = ws('samples/out/neumf-factorized.onnx');
    fs.rmSync(out, { force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.factorizeModel', vscode.Uri.file(ws(s.onnx)), {
      settings: { rank: 3, tensors: 'embeddings' },
      output: out,
      evaluate: false,
    });
    assert.ok(result, 'no result (see the PruneScope log)');
    assert.ok(fs.existsSync(out));
    assert.ok(result.changes.some((c) => c.after.length === 2), 'no tensor was split into two factors');
    assert.ok(result.comparison.params.after! < result.comparison.params.before!);
  });

  test('Compare Models runs two models side by side', async () => {
    const a = await api();
    const s = expected().samples.neumf;
    const out = ws('samples/out/neumf-pruned.onnx');
    assert.ok(fs.existsSync(out), 'the pruned model of an earlier test is missing');
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.compareModels', vscode.Uri.file(ws(s.onnx)), vscode.Uri.file(out));
    assert.ok(result, 'no comparison (see the PruneScope log)');
    assert.equal(result.method, 'compare');
    assert.equal(result.comparison.params.before, result.comparison.params.after);
    assert.ok(a.panels().some((p) => p.comparison?.method === 'compare'));
  });

  test('an output given by a caller keeps the input format: an ONNX model to a .json path is refused, nothing written', async () => {
    const s = expected().samples.neumf;
    const out = ws('samples/out/neumf-int8-wrong.json');
    fs.rmSync(out, { force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.quantizeModel', vscode.Uri.file(ws(s.onnx)), {
      settings: { dtype: 'int8' },
      output: out,
      evaluate: false,
    });
    assert.equal(result, undefined);
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(tempFolders(path.dirname(out)), []);
  });

  test('a job that cannot run fails with one clear message and writes nothing', async () => {
    const s = expected().samples.neumf;
    const out = ws('samples/out/bad-settings.onnx');
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(ws(s.onnx)), {
      settings: { sparsity: 7 },
      output: out,
      evaluate: false,
    });
    assert.equal(result, undefined);
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(tempFolders(path.dirname(out)), []);
  });

  test('the webview protocol rejects malformed messages', async () => {
    const { parseWebviewMessage } = await import('../../src/shared/protocol.js');
    assert.deepEqual(parseWebviewMessage({ type: 'ready' }), { type: 'ready' });
    assert.equal(parseWebviewMessage({ type: 'runAction', action: { kind: 'rm -rf', target: 'x' } }), undefined);
    // a finding of the compressed model shown in the panel says so; nothing else is accepted there
    assert.deepEqual(parseWebviewMessage({ type: 'runAction', action: { kind: 'factorize', target: 't' }, on: 'after' }), { type: 'runAction', action: { kind: 'factorize', target: 't' }, on: 'after' });
    assert.equal(parseWebviewMessage({ type: 'runAction', action: { kind: 'factorize', target: 't' }, on: '/etc/passwd' }), undefined);
    assert.equal(parseWebviewMessage({ type: 'exportPng', name: '../x', dataUrl: 'data:image/png;base64,AAAA' }), undefined);
    assert.equal(parseWebviewMessage({ type: 'exportPng', name: 'x', dataUrl: 'data:text/html;base64,AAAA' }), undefined);
    assert.equal(parseWebviewMessage({ type: 'exportHtml', themeVars: { '--vscode-x': 'red;}</style>' }, themeKind: 'vscode-dark' }), undefined);
    assert.deepEqual(parseWebviewMessage({ type: 'exportHtml', themeVars: { '--vscode-foreground': '#fff' }, themeKind: 'vscode-dark' }), {
      type: 'exportHtml',
      themeVars: { '--vscode-foreground': '#fff' },
      themeKind: 'vscode-dark',
    });
    assert.equal(parseWebviewMessage('ready'), undefined);
  });
});

suite('PruneScope reports and training jobs', () => {
  test('Export HTML writes a self-contained report with the data inline and no remote content', async () => {
    const a = await api();
    const model = vscode.Uri.file(ws(expected().samples.neumf.onnx));
    const panel = a.panels().find((p) => p.model.fsPath === model.fsPath && p.report);
    assert.ok(panel, 'no analysis panel of neumf.onnx from the earlier tests');
    const target = vscode.Uri.file(ws('samples/out/report.html'));
    await a.exportHtml(model, target);
    const html = fs.readFileSync(target.fsPath, 'utf8');
    assert.match(html, /<script id="prunescope-data" type="application\/json">\{"report":/);
    assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=["']?https?:/i, 'the report loads remote content');
    assert.doesNotMatch(html, /<link /i, 'the report links an external stylesheet');
    assert.ok(html.includes("default-src 'none'"), 'the report has no restrictive CSP');
    assert.ok(html.length < 3_000_000, `the report is ${html.length} bytes`);
  });

  test('Distill Model trains a smaller student on the interactions', async () => {
    const s = expected().samples.neumf;
    const out = ws('samples/out/neumf-student/model.json');
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.distillModel', vscode.Uri.file(ws(s.tfjs)), {
      settings: { data: ws(s.interactions), ratio: 4, epochs: 1 },
      output: out,
      candidates: ws(s.candidates),
    });
    assert.ok(result, 'no result (see the PruneScope log)');
    assert.ok(fs.existsSync(out));
    assert.ok(result.comparison.params.after! < result.comparison.params.before!, 'the student is not smaller');
  });
});

suite('PruneScope sensitivity', () => {
  test('Sensitivity Analysis prunes each tensor alone, measures NDCG and shows curves in the panel', async () => {
    const a = await api();
    const s = expected().samples.neumf;
    const model = vscode.Uri.file(ws(s.onnx));
    type SensitivityResult = { curves: Array<{ layer: string; points: Array<{ amount: number; value: number }> }>; proposal: Record<string, number> };
    const view = await vscode.commands.executeCommand<SensitivityResult | undefined>(
      'prunescope.sensitivityAnalysis',
      model,
      { candidates: ws(s.candidates), sparsities: [0.5, 0.9] },
    );
    assert.ok(view, 'no sensitivity result (see the PruneScope log)');
    assert.ok(view.curves.length >= 4, `only ${view.curves.length} curves`);
    for (const c of view.curves) assert.deepEqual(c.points.map((p) => p.amount), [0, 0.5, 0.9]);
    assert.ok(Object.keys(view.proposal).length > 0);
    const panel = a.panels().find((p) => p.model.fsPath === model.fsPath);
    assert.ok(panel);
  });
});

suite('PruneScope odds and ends', () => {
  test('commands accept the models tree node as their argument', async () => {
    const uri = vscode.Uri.file(ws(expected().tfjs.file));
    const report = await vscode.commands.executeCommand<{ totalParams: number } | undefined>('prunescope.analyzeModel', { kind: 'model', uri });
    assert.equal(report?.totalParams, expected().tfjs.totalParams);
  });

  test('a recipe file with an unknown method gets an error diagnostic on that step', async () => {
    const file = ws('samples/broken.recipe.json');
    fs.writeFileSync(file, JSON.stringify({ version: 1, model: 'neumf.onnx', steps: [{ method: 'prune-rows', settings: { sparsity: 0.5 } }, { method: 'shrink-everything', settings: {} }] }, null, 2));
    const uri = vscode.Uri.file(file);
    const doc = await vscode.workspace.openTextDocument(uri);
    const diags = await waitFor('recipe diagnostics', 10_000, () => {
      const d = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'PruneScope');
      return d.length > 0 ? d : undefined;
    });
    assert.equal(diags.length, 1);
    assert.equal(diags[0].severity, vscode.DiagnosticSeverity.Error);
    assert.match(diags[0].message, /steps\[1\]\.method: unknown method "shrink-everything"/);
    assert.match(doc.lineAt(diags[0].range.start.line).text, /shrink-everything/);
    fs.rmSync(file);
  });
});

suite('PruneScope field pruning', () => {
  test('Prune Model (input fields) removes named fields of a DeepFM model', async () => {
    const s = expected().samples.deepfm;
    const out = ws('samples/out/deepfm-fields.onnx');
    fs.rmSync(out, { force: true });
    const result = await vscode.commands.executeCommand<CompressJobResult | undefined>('prunescope.pruneModel', vscode.Uri.file(ws(s.onnx)), {
      method: 'prune-fields',
      settings: { fields: ['noise_a', 'noise_b'] },
      output: out,
      evaluate: false,
    });
    assert.ok(result, 'no result (see the PruneScope log)');
    assert.ok(fs.existsSync(out));
    assert.ok(result.comparison.params.after! < result.comparison.params.before!, 'removing two fields removed no parameters');
  });
});
