// The commands: analyse, the compression dialogs (quick picks / input boxes with defaults
// remembered per workspace), compare, recipes, and the finding actions shared by the quick fixes
// and the panel. Every command also takes its answers as arguments, so tests and other
// extensions can run it without dialogs.

import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { CompressMethod, CompressStep, JobResultMap } from '../core/jobs/job-types.js';
import { modelOutputPath, OutputPathError, outputPathFor, removeTemp, tempDirFor } from '../core/jobs/output-files.js';
import { absoluteRecipe, parseRecipe, recipeText, RECIPE_SCHEMA_VERSION, relativeRecipe, type RecipeFile } from '../core/jobs/recipe-file.js';
import { describeMethods } from '../core/compress/method-settings.js';
import { weakTreeFeatures, type CompressJobResult, type FindingAction, type GraphView, type PlanView, type SensitivityView, type TreeFeaturesResult, type TreeRemovalResult, type TreesView } from '../shared/protocol.js';
import { describeTuning, pruneSteps, type PruneTuning } from '../core/jobs/prune-steps.js';
import { describeQuantizeTuning, quantizeSteps, type QuantizeTuning } from '../core/jobs/quantize-steps.js';
import type { ModelReport, OpportunityKind } from '../shared/report.js';
import { AnalysisPanel, type PanelActions } from './analysis-panel.js';
import { runJobWithProgress } from './job-bridge.js';
import { log, showError } from './log.js';
import { datasetFile, readSettings } from './settings.js';
import { ensureTrusted } from './trust.js';
import { CompressToTarget, type CompressTargetArgs } from './compress-target.js';
import { inputBox, pickFile, pickFraction, pickOne } from './dialogs.js';
import { uniquePath } from './output-paths.js';

/** Answers a compression command accepts instead of asking (tests, other extensions, quick fixes). */
export interface CompressArgs {
  /** the method's settings: when given, no dialog is shown */
  settings?: Record<string, unknown>;
  method?: CompressMethod;
  /** output path (absolute, or relative to the model's folder) */
  output?: string;
  overwrite?: boolean;
  /** false: sizes and analysis only; default: latency, plus accuracy when a dataset is set */
  evaluate?: boolean;
  /** candidates CSV for HR/NDCG/AUC (default: the prunescope.datasetPath setting) */
  candidates?: string;
  /** the K of HR@K / NDCG@K (default: the prunescope.defaultK setting; a recipe's own K) */
  k?: number;
  /**
   * Prune Model: fine-tune after the cut (with `settings`): epochs on `data` (default: the
   * training interactions known to the workspace); `gradual` prunes while training (magnitude
   * pruning only, the ramp over all but the last epoch). Quantize Model (int4 / int3 / int2,
   * ONNX): fine-tune quantization-aware for `epochs` before storing. false or absent: one-shot.
   */
  finetune?: { epochs: number; gradual?: boolean; data?: string } | false;
}

/** How a compression job is named and whether its output is asked for. */
export interface CompressJobOptions {
  /** the job's title, notification and run history title, e.g. "prune-magnitude 50% (one-shot: no fine-tuning)" */
  label?: string;
  /** the `${method}` of the output pattern (default: the method, or 'recipe' for steps) */
  outputName?: string;
  /** ask for the output path (default: when neither settings nor steps were given) */
  interactive?: boolean;
}

/** Answers Drop Tree Features accepts instead of the finding's proposal. */
export interface TreeFeaturesArgs {
  /** input features to drop (default: the unused and weak ones) */
  features?: number[];
  /** the tree node's name (default: the first tree ensemble) */
  node?: string;
  /** output path (absolute, or relative to the model's folder); default `<stem>-features.onnx` */
  output?: string;
  overwrite?: boolean;
}

/** Answers Remove Trees accepts instead of asking. */
export interface TreeRemovalArgs {
  /** the tree node's name (default: the first tree ensemble) */
  node?: string;
  /** validation CSV (f0,...,label): asked for when missing */
  data?: string;
  /** a separate CSV to report on; without it, a seeded half of `data` chooses and the other half reports */
  test?: string;
  /** share of the trees to remove, in (0, 1): asked for when missing */
  fraction?: number;
  /** the share the dialog offers first when `fraction` is missing (the panel finding's proposal) */
  suggestedFraction?: number;
  /** stop when the next removal would lose more than this (metric points); default 0.005 */
  tolerance?: number;
  /** output path (absolute, or relative to the model's folder); default `<stem>-trees.onnx` */
  output?: string;
  overwrite?: boolean;
}

const isOnnx = (uri: vscode.Uri) => /\.onnx$/i.test(uri.fsPath);

export function isModelFile(uri: vscode.Uri): boolean {
  return /\.onnx$/i.test(uri.fsPath) || /(^|[\\/])model\.json$/i.test(uri.fsPath);
}

export class Commands implements PanelActions {
  /** analysis reports by model path, for diagnostics and panel actions (the last one made) */
  private readonly reports = new Map<string, ModelReport>();
  private readonly reportListeners: Array<(uri: vscode.Uri, r: ModelReport) => void> = [];

  /** Compress to Target (the planner as a job) and its front's points */
  readonly target: CompressToTarget;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.target = new CompressToTarget(context, this);
  }

  onReport(listener: (uri: vscode.Uri, r: ModelReport) => void): void {
    this.reportListeners.push(listener);
  }

  /** Keeps a report made elsewhere (the diagnostics' background analysis) for the finding actions. */
  rememberReport(uri: vscode.Uri, r: ModelReport): void {
    this.reports.set(uri.fsPath, r);
  }

  lastReport(uri: vscode.Uri): ModelReport | undefined {
    return this.reports.get(uri.fsPath);
  }

  register(): vscode.Disposable[] {
    const c = (id: string, f: (...a: never[]) => unknown) => vscode.commands.registerCommand(id, f);
    // menus of the models tree pass the tree node; the explorer and code pass a Uri
    const u = (x: unknown): vscode.Uri | undefined => (x instanceof vscode.Uri ? x : x && typeof x === 'object' && (x as { uri?: unknown }).uri instanceof vscode.Uri ? (x as { uri: vscode.Uri }).uri : undefined);
    return [
      c('prunescope.analyzeModel', (uri?: unknown) => this.analyze(u(uri))),
      c('prunescope.openAnalysis', (uri?: unknown) => this.analyze(u(uri))),
      c('prunescope.dropTreeFeatures', (uri?: unknown, args?: TreeFeaturesArgs) => this.dropTreeFeatures(u(uri), args)),
      c('prunescope.removeTrees', (uri?: unknown, args?: TreeRemovalArgs) => this.removeTrees(u(uri), args)),
      c('prunescope.pruneModel', (uri?: unknown, args?: CompressArgs) => this.prune(u(uri), args)),
      c('prunescope.quantizeModel', (uri?: unknown, args?: CompressArgs) => this.quantize(u(uri), args)),
      c('prunescope.factorizeModel', (uri?: unknown, args?: CompressArgs) => this.factorize(u(uri), args)),
      c('prunescope.distillModel', (uri?: unknown, args?: CompressArgs) => this.distill(u(uri), args)),
      c('prunescope.sensitivityAnalysis', (uri?: unknown, args?: { candidates?: string; sparsities?: number[]; budget?: number }) => this.sensitivity(u(uri), args)),
      c('prunescope.compareModels', (a?: unknown, b?: vscode.Uri | vscode.Uri[]) => this.compare(u(a), b instanceof vscode.Uri || Array.isArray(b) ? b : undefined)),
      c('prunescope.runRecipe', (uri?: unknown, args?: CompressArgs) => this.runRecipe(u(uri), args)),
      c('prunescope.runFinding', (uri: vscode.Uri, action: FindingAction, args?: CompressArgs) => this.runFinding(uri, action, args)),
      c('prunescope.writeRecipe', (uri: vscode.Uri, actions: FindingAction[]) => this.writeRecipe(uri, actions)),
      c('prunescope.compressToTarget', (uri?: unknown, args?: CompressTargetArgs) => this.target.run(u(uri), args)),
    ];
  }

  // ---------------- models ----------------

  async pickModel(uri: vscode.Uri | undefined, verb: string): Promise<vscode.Uri | undefined> {
    if (uri instanceof vscode.Uri) return uri;
    const active = vscode.window.activeTextEditor?.document.uri ?? activeCustomEditorUri();
    if (active && isModelFile(active)) return active;
    const found = await vscode.workspace.findFiles('**/{*.onnx,model.json}', '{**/node_modules/**,**/.*/**}', 500);
    if (found.length > 0) {
      const pick = await vscode.window.showQuickPick(
        found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
        { title: `PruneScope: ${verb}`, placeHolder: 'Model to use' },
      );
      return pick?.uri;
    }
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: verb, filters: { 'Models (TF.js, ONNX)': ['json', 'onnx'] } });
    return picked?.[0];
  }

  private checkLocal(uri: vscode.Uri): boolean {
    if (uri.scheme === 'file') return true;
    showError(`models are read from local files; ${uri.toString()} is not one.`);
    return false;
  }

  // ---------------- analyse ----------------

  async analyze(uri?: vscode.Uri, panel?: AnalysisPanel): Promise<(ModelReport & { trees?: TreesView }) | undefined> {
    const target = await this.pickModel(uri, 'Analyze');
    if (!target || !this.checkLocal(target)) return undefined;
    const p = panel ?? AnalysisPanel.show(this.context.extensionUri, target, this);
    p.post({ type: 'loading', path: target.fsPath });
    log().info(`analyse ${target.fsPath}`);
    const r = await runJobWithProgress(
      this.context.extensionUri,
      { kind: 'analyze', path: target.fsPath, epsilon: readSettings(target).nearZeroEpsilon },
      {
        title: `analysing ${basename(target.fsPath)}`,
        onProgress: (pr) => p.post({ type: 'progress', fraction: pr.fraction, phase: pr.phase, detail: pr.detail }),
      },
    );
    if (!r.ok) {
      p.post({ type: 'error', message: r.cancelled ? 'Analysis cancelled.' : r.message });
      return undefined;
    }
    const report = r.value;
    log().info(`analysed ${basename(target.fsPath)}: ${report.totalParams} params, ${report.totalZeros} zeros, ${report.opportunities.length} findings`);
    this.reports.set(target.fsPath, report);
    for (const l of this.reportListeners) l(target, report);
    p.post({ type: 'report', report, actions: availableActions() });
    if (!isOnnx(target)) return report;
    const trees = await this.analyzeTrees(target);
    if (trees) p.post({ type: 'trees', result: trees });
    return trees && trees.ensembles.length ? { ...report, trees } : report;
  }

  /** The panel's graph of a model, built in the job worker; undefined (logged, not shown) when it fails. */
  async graphOf(report: ModelReport): Promise<GraphView | undefined> {
    const r = await runJobWithProgress(this.context.extensionUri, { kind: 'graph', path: report.path, report }, { title: `graph of ${basename(report.path)}`, silent: true, quietErrors: true });
    return r.ok ? r.value : undefined;
  }

  /** The ai.onnx.ml tree ensembles of an ONNX file; undefined when the job failed (logged, not shown: the main analysis already succeeded). */
  private async analyzeTrees(target: vscode.Uri): Promise<TreesView | undefined> {
    const r = await runJobWithProgress(this.context.extensionUri, { kind: 'trees', path: target.fsPath }, { title: `tree ensembles of ${basename(target.fsPath)}`, silent: true, quietErrors: true });
    if (!r.ok) return undefined;
    if (r.value.ensembles.length) log().info(`${basename(target.fsPath)}: ${r.value.ensembles.map((e) => `${e.op} ${e.trees} trees`).join(', ')}`);
    return r.value;
  }

  reanalyze(model: vscode.Uri): void {
    void this.analyze(model, AnalysisPanel.find(model));
  }

  runAction(model: vscode.Uri, action: FindingAction, report?: ModelReport): void {
    // the finding's figures (a proposed share, a rank) come from the report it was shown in
    if (report) this.reports.set(model.fsPath, report);
    void this.runFinding(model, action);
  }

  writePlanPoint(model: vscode.Uri, plan: PlanView, id: string): Promise<CompressJobResult | undefined> {
    return this.target.writePoint(model, plan, id);
  }

  // ---------------- compression dialogs ----------------

  private remembered<T extends object>(key: string, fallback: T): T {
    return { ...fallback, ...(this.context.workspaceState.get<Partial<T>>(`prunescope.last.${key}`) ?? {}) };
  }

  private remember(key: string, value: object): Thenable<void> {
    return this.context.workspaceState.update(`prunescope.last.${key}`, value);
  }

  async prune(uri?: vscode.Uri, args: CompressArgs = {}): Promise<CompressJobResult | undefined> {
    const model = await this.pickModel(uri, 'Prune');
    if (!model || !this.checkLocal(model)) return undefined;
    if (args.settings) return this.pruneJob(model, { method: args.method ?? 'prune-magnitude', settings: args.settings }, this.tuningFromArgs(model, args), args);
    const last = this.remembered<{ method: CompressMethod; sparsity: number; scope: string; data?: string; fieldDrop?: number }>('prune', { method: 'prune-magnitude', sparsity: 0.5, scope: 'global' });
    const methods: Array<vscode.QuickPickItem & { method: CompressMethod }> = describeMethods()
      .filter((m) => m.name.startsWith('prune-'))
      .map((m) => ({ method: m.name, label: m.title, detail: m.description }));
    for (const m of methods) m.picked = m.method === last.method;
    const method = await pickOne(methods, 'Prune Model: method', last.method);
    if (!method) return undefined;
    if (method.method === 'prune-fields') {
      const data = await pickFile('Prune Model: interactions CSV to rank the fields on (user,item,label,fields…)', last.data ?? '', model);
      if (!data) return undefined;
      const drop = await pickFraction('Prune Model: share of the fields removed', last.fieldDrop ?? 0.25, [0.25, 0.5]);
      if (drop === undefined) return undefined;
      await this.remember('prune', { ...last, method: method.method, data, fieldDrop: drop });
      const fieldsTuning = await this.askTuning(model, 'prune-fields');
      if (!fieldsTuning) return undefined;
      return this.pruneJob(model, { method: 'prune-fields', settings: { fields: { drop, data } } }, fieldsTuning, args, true);
    }
    const what = method.method === 'prune-rows' ? 'rows removed' : method.method === 'prune-dims' ? 'columns removed' : method.method === 'prune-neurons' ? 'neurons removed' : 'weights zeroed';
    const sparsity = await pickFraction(`Prune Model: share of ${what}`, last.sparsity, [0.25, 0.5, 0.75, 0.9]);
    if (sparsity === undefined) return undefined;
    let settings: Record<string, unknown> = { sparsity };
    let scope = last.scope;
    if (method.method === 'prune-magnitude') {
      const s = await pickOne(
        [
          { label: 'global', detail: 'One |w| threshold over all chosen tensors (big tables lose more)', value: 'global' },
          { label: 'layer', detail: 'Every tensor pruned to the same share', value: 'layer' },
        ],
        'Prune Model: scope',
        last.scope,
      );
      if (!s) return undefined;
      scope = s.value;
      settings = { sparsity, scope };
    }
    await this.remember('prune', { ...last, method: method.method, sparsity, scope });
    const tuning = await this.askTuning(model, method.method);
    if (!tuning) return undefined;
    return this.pruneJob(model, { method: method.method, settings }, tuning, args, true);
  }

  /** A pruning step and its fine-tuning as one job, titled with the tuning ("one-shot: no fine-tuning"). */
  private pruneJob(model: vscode.Uri, step: CompressStep, tuning: PruneTuning | undefined, args: CompressArgs, interactive = false): Promise<CompressJobResult | undefined> {
    if (!tuning) return Promise.resolve(undefined);
    let steps: CompressStep[];
    try {
      // the unpruned model teaches the fine-tuning, as `prunescope prune --finetune` does
      steps = pruneSteps(step, tuning, model.fsPath);
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
      return Promise.resolve(undefined);
    }
    const share = typeof step.settings.sparsity === 'number' ? ` ${Math.round(step.settings.sparsity * 1000) / 10}%` : '';
    const label = `${step.method}${share} (${describeTuning(tuning)})`;
    const opts: CompressJobOptions = { label, outputName: step.method, interactive };
    if (tuning.kind === 'one-shot') return this.compress(model, step.method, step.settings, args, undefined, opts);
    return this.compress(model, steps[0].method, steps[0].settings, args, steps, opts);
  }

  /** The fine-tuning asked for in a command's arguments; undefined (and shown) when it cannot run. */
  private tuningFromArgs(model: vscode.Uri, args: CompressArgs): PruneTuning | undefined {
    const f = args.finetune;
    if (!f) return { kind: 'one-shot' };
    const data = this.trainingFromArgs(model, f);
    if (!data) return undefined;
    return f.gradual ? { kind: 'gradual', data, epochs: f.epochs, rampEpochs: Math.max(0, f.epochs - 1) } : { kind: 'finetune', data, epochs: f.epochs };
  }

  /** The interactions a command's `finetune` argument trains on; undefined (and shown) when none is known. */
  private trainingFromArgs(model: vscode.Uri, f: { data?: string }): string | undefined {
    const data = f.data ? resolve(dirname(model.fsPath), f.data) : this.target.data.knownTraining(model);
    if (!data) showError('fine-tuning needs training interactions: set prunescope.trainingDataPath or pass finetune.data.');
    return data;
  }

  /** "Fine-tune after pruning?" when training interactions are known; one-shot otherwise. */
  private async askTuning(model: vscode.Uri, method: CompressMethod): Promise<PruneTuning | undefined> {
    const data = this.target.data.knownTraining(model);
    if (!data) return { kind: 'one-shot' };
    const on = `on ${vscode.workspace.asRelativePath(data)}`;
    const items: Array<vscode.QuickPickItem & { value: string; tuning: PruneTuning }> = [
      { label: 'One-shot (no fine-tuning)', detail: 'Cut only: quickest; at high sparsity the model loses the most accuracy', value: 'one-shot', tuning: { kind: 'one-shot' } },
      { label: 'Fine-tune 2 epochs', detail: `Train after the cut ${on}`, value: 'ft2', tuning: { kind: 'finetune', data, epochs: 2 } },
      { label: 'Fine-tune 3 epochs', detail: `Train after the cut ${on}`, value: 'ft3', tuning: { kind: 'finetune', data, epochs: 3 } },
    ];
    if (method === 'prune-magnitude') {
      items.push({ label: 'Gradual: prune while training (3 epochs)', detail: `The sparsity ramps up over 2 epochs of one training run ${on} (TFMOT-style), then holds`, value: 'gradual', tuning: { kind: 'gradual', data, epochs: 3, rampEpochs: 2 } });
    }
    const last = this.remembered<{ value: string }>('pruneTuning', { value: 'ft2' });
    const pick = await pickOne(items, 'Prune Model: fine-tune after pruning? (N epochs)', last.value);
    if (!pick) return undefined;
    await this.remember('pruneTuning', { value: pick.value });
    return pick.tuning;
  }

  async quantize(uri?: vscode.Uri, args: CompressArgs = {}): Promise<CompressJobResult | undefined> {
    const model = await this.pickModel(uri, 'Quantize');
    if (!model || !this.checkLocal(model)) return undefined;
    if (args.settings) {
      if (!args.finetune) return this.compress(model, 'quantize', args.settings, args);
      const data = this.trainingFromArgs(model, args.finetune);
      if (!data) return undefined;
      return this.quantizeJob(model, args.settings, { kind: 'quant-aware', data, epochs: args.finetune.epochs }, args, false);
    }
    const onnx = isOnnx(model);
    const last = this.remembered<{ dtype: string; tensors: string; scales?: string; rounding?: string }>(onnx ? 'quantize.onnx' : 'quantize.tfjs', { dtype: onnx ? 'int8' : 'uint8', tensors: 'all' });
    const dtypes = onnx
      ? [
          { label: 'int8', detail: 'Embedding tables per row (Gather + dequantize), dense kernels per output channel (MatMulInteger). About 4x smaller.', value: 'int8' },
          { label: 'float16', detail: 'Half-precision weights with a Cast back to float32. About 2x smaller.', value: 'float16' },
          { label: 'int4', detail: 'Embedding tables only: 4-bit codes per row with a scale and zero point, unpacked in the graph. Tables about 6x smaller.', value: 'int4' },
          { label: 'int3', detail: 'Embedding tables only: 3-bit codes per row (bit planes). Tables about 8x smaller; check the accuracy.', value: 'int3' },
          { label: 'int2', detail: 'Embedding tables only: 2-bit codes per row. Tables about 11x smaller; accuracy often drops.', value: 'int2' },
        ]
      : [
          { label: 'uint8', detail: 'TF.js manifest quantization (affine, per tensor), dequantized at load. About 4x smaller.', value: 'uint8' },
          { label: 'uint16', detail: 'TF.js manifest quantization with 16 bits. About 2x smaller, tiny error.', value: 'uint16' },
          { label: 'float16', detail: 'TF.js float16 weights. About 2x smaller.', value: 'float16' },
        ];
    const dtype = await pickOne(dtypes, 'Quantize Model: type', last.dtype);
    if (!dtype) return undefined;
    // 4, 3 and 2 bits have a form for embedding tables only: nothing else to ask
    const lowBit = ['int4', 'int3', 'int2'].includes(dtype.value);
    const tensors = lowBit ? { value: 'embeddings' } : await pickOne(
      [
        { label: 'all', detail: 'Embedding tables and dense kernels (and other float weights where the format allows)', value: 'all' },
        { label: 'embeddings', detail: 'Embedding tables only', value: 'embeddings' },
        { label: 'dense', detail: 'Dense kernels only', value: 'dense' },
      ],
      'Quantize Model: which tensors',
      last.tensors,
    );
    if (!tensors) return undefined;
    const scales = !lowBit ? undefined : await pickOne(
      [
        { label: 'per row', detail: 'A scale and zero point per row: rows of every norm keep their own steps (the default).', value: 'row' },
        {
          label: 'a byte per row',
          detail: "Each row's zero point and one of the table's shared scale levels in one byte: 2 bytes less per row, about the same total error (rows of small norm get coarser steps).",
          value: 'byte',
        },
        { label: 'per column', detail: 'One scale and zero point per column for the whole table: 3 bytes less per row (a 32-wide int4 table about 16% smaller); check the accuracy.', value: 'column' },
      ],
      'Quantize Model: scales',
      last.scales ?? 'row',
    );
    if (lowBit && !scales) return undefined;
    const rounding = !lowBit ? undefined : await pickOne(
      [
        { label: 'nearest', detail: 'Each value to its nearest code (the default).', value: 'nearest' },
        {
          label: 'output-aware',
          detail: "Each row's codes chosen so that the score moves least (error feedback, measured on random user x item pairs): the same size, a closer copy of the original's ranking.",
          value: 'output-aware',
        },
      ],
      'Quantize Model: rounding',
      last.rounding ?? 'nearest',
    );
    if (lowBit && !rounding) return undefined;
    await this.remember(onnx ? 'quantize.onnx' : 'quantize.tfjs', {
      dtype: dtype.value, tensors: tensors.value, ...(scales ? { scales: scales.value } : {}), ...(rounding ? { rounding: rounding.value } : {}),
    });
    const settings = {
      dtype: dtype.value, tensors: tensors.value, ...(scales && scales.value !== 'row' ? { scales: scales.value } : {}), ...(rounding?.value === 'output-aware' ? { rounding: 'output-aware' } : {}),
    };
    // byte scales are fitted after training (scale-levels.ts): no quantization-aware run to offer
    if (!lowBit || !onnx || settings.scales === 'byte') return this.compress(model, 'quantize', settings, args);
    const tuning = await this.askQuantizeTuning(model, dtype.value);
    if (!tuning) return undefined;
    if (tuning.kind === 'direct') return this.compress(model, 'quantize', settings, args);
    return this.quantizeJob(model, settings, tuning, args, true);
  }

  /** "Fine-tune quantization-aware first?" for a low-bit ONNX quantization when training interactions are known. */
  private async askQuantizeTuning(model: vscode.Uri, dtype: string): Promise<QuantizeTuning | undefined> {
    const data = this.target.data.knownTraining(model);
    if (!data) return { kind: 'direct' };
    const on = `on ${vscode.workspace.asRelativePath(data)}`;
    const items: Array<vscode.QuickPickItem & { value: string; tuning: QuantizeTuning }> = [
      { label: 'Quantize directly', detail: 'Round the trained tables: quickest', value: 'direct', tuning: { kind: 'direct' } },
      {
        label: 'Fine-tune 2 epochs quantization-aware, then quantize',
        detail: `The tables train through the ${dtype} rounding they will be stored in ${on}, the original teaching`,
        value: 'qat2',
        tuning: { kind: 'quant-aware', data, epochs: 2 },
      },
    ];
    const last = this.remembered<{ value: string }>('quantizeTuning', { value: 'direct' });
    const pick = await pickOne(items, 'Quantize Model: train before storing?', last.value);
    if (!pick) return undefined;
    await this.remember('quantizeTuning', { value: pick.value });
    return pick.tuning;
  }

  /** Quantization-aware fine-tuning and the quantization after it, as one job titled with the training. */
  private quantizeJob(
    model: vscode.Uri, settings: Record<string, unknown>, tuning: QuantizeTuning & { kind: 'quant-aware' }, args: CompressArgs, interactive: boolean,
  ): Promise<CompressJobResult | undefined> {
    let steps: CompressStep[];
    try {
      // the unquantized model teaches the quantization-aware training
      steps = quantizeSteps(settings, tuning, model.fsPath);
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
      return Promise.resolve(undefined);
    }
    const name = `quantize ${String(settings.dtype)}${settings.scales === 'column' ? ' per column' : settings.scales === 'byte' ? ' with byte scales' : ''}`;
    const opts: CompressJobOptions = { label: `${name} (${describeQuantizeTuning(tuning)})`, outputName: 'quantize', interactive };
    return this.compress(model, steps[0].method, steps[0].settings, args, steps, opts);
  }

  async factorize(uri?: vscode.Uri, args: CompressArgs = {}): Promise<CompressJobResult | undefined> {
    const model = await this.pickModel(uri, 'Factorize');
    if (!model || !this.checkLocal(model)) return undefined;
    if (args.settings) return this.compress(model, 'factorize', args.settings, args);
    const last = this.remembered('factorize', { energy: 0.95, tensors: 'all' });
    const energy = await pickFraction('Factorize Model: share of the energy (sum of σ²) to keep', last.energy, [0.9, 0.95, 0.99]);
    if (energy === undefined) return undefined;
    const tensors = await pickOne(
      [
        { label: 'all', detail: 'Embedding tables and dense kernels', value: 'all' },
        { label: 'embeddings', detail: 'Embedding tables only', value: 'embeddings' },
        { label: 'dense', detail: 'Dense kernels only', value: 'dense' },
      ],
      'Factorize Model: which tensors',
      last.tensors,
    );
    if (!tensors) return undefined;
    await this.remember('factorize', { energy, tensors: tensors.value });
    return this.compress(model, 'factorize', { energy, tensors: tensors.value }, args);
  }

  async distill(uri?: vscode.Uri, args: CompressArgs = {}): Promise<CompressJobResult | undefined> {
    const model = await this.pickModel(uri, 'Distill');
    if (!model || !this.checkLocal(model)) return undefined;
    if (args.settings) return this.compress(model, 'distill', args.settings, args);
    const last = this.remembered('distill', { data: '', ratio: 8, epochs: 5 });
    const data = await this.target.data.chooseTraining(model, 'Distill Model: interactions CSV to train the student on (user,item[,label])', false);
    if (!data) return undefined;
    const ratio = await pickOne(
      [4, 8, 16, 32].map((r) => ({ label: `${r}x fewer parameters`, value: r })),
      'Distill Model: student size',
      last.ratio,
    );
    if (!ratio) return undefined;
    const epochs = await inputBox({
      title: 'Distill Model: epochs',
      value: String(last.epochs),
      validateInput: (v) => (/^[1-9]\d{0,3}$/.test(v.trim()) ? undefined : 'a whole number of epochs, 1 to 9999'),
    });
    if (!epochs) return undefined;
    await this.remember('distill', { data, ratio: ratio.value, epochs: Number(epochs) });
    return this.compress(model, 'distill', { data, ratio: ratio.value, epochs: Number(epochs) }, args);
  }

  // ---------------- the job ----------------

  private async chooseOutput(model: vscode.Uri, method: string, args: CompressArgs, interactive: boolean): Promise<{ out: string; overwrite: boolean } | undefined> {
    const settings = readSettings(model);
    let out: string;
    if (args.output) {
      // an output given by a caller (automation, a recipe) keeps the input's format, as the CLI's --out
      try {
        out = modelOutputPath(model.fsPath, resolve(dirname(model.fsPath), args.output), method);
      } catch (e) {
        if (!(e instanceof OutputPathError)) throw e;
        void vscode.window.showErrorMessage(`PruneScope: ${e.message.replace(/^--out /, 'output ')}`);
        return undefined;
      }
      if (resolve(out) === resolve(model.fsPath)) {
        void vscode.window.showErrorMessage(`PruneScope: the output ${out} is the original model: PruneScope never writes over it`);
        return undefined;
      }
    } else out = outputPathFor(model.fsPath, method, settings.outputPattern);
    if (!args.output && interactive) {
      const typed = await inputBox({
        title: `${method}: output`,
        value: out,
        prompt: isOnnx(model) ? 'The compressed .onnx file' : 'model.json of the compressed model, in a folder of its own',
        validateInput: (v) => {
          const p = v.trim();
          if (!p) return 'an output path';
          if (resolve(p) === resolve(model.fsPath)) return 'this is the original model: PruneScope never writes over it';
          if (isOnnx(model) && !/\.onnx$/i.test(p)) return 'an .onnx file';
          if (!isOnnx(model) && !/model\.json$/i.test(p)) return 'a model.json path';
          if (!isOnnx(model) && resolve(dirname(p)) === resolve(dirname(model.fsPath))) return "the original's folder: a TF.js model needs a folder of its own";
          return undefined;
        },
      });
      if (!typed) return undefined;
      out = resolve(dirname(model.fsPath), typed.trim());
    }
    const taken = isOnnx(model) ? existsSync(out) : existsSync(dirname(out));
    if (taken && args.overwrite !== true) {
      if (!interactive) return { out: uniquePath(out, isOnnx(model)), overwrite: false };
      const a = await vscode.window.showWarningMessage(`${vscode.workspace.asRelativePath(out)} already exists.`, { modal: true }, 'Replace', 'Keep Both');
      if (a === 'Replace') return { out, overwrite: true };
      if (a === 'Keep Both') return { out: uniquePath(out, isOnnx(model)), overwrite: false };
      return undefined;
    }
    return { out, overwrite: args.overwrite === true };
  }

  /** Runs a compression (one method or a recipe's steps) and shows the before/after report. */
  async compress(
    model: vscode.Uri, method: CompressMethod, settings: Record<string, unknown>,
    args: CompressArgs = {}, steps?: CompressStep[], job: CompressJobOptions = {},
  ): Promise<CompressJobResult | undefined> {
    if (!(await ensureTrusted('Compressing a model'))) return undefined;
    const interactive = job.interactive ?? (args.settings === undefined && steps === undefined);
    const name = job.outputName ?? (steps ? 'recipe' : method);
    const label = job.label ?? name;
    const target = await this.chooseOutput(model, name, args, interactive);
    if (!target) return undefined;
    const s = readSettings(model);
    const candidates = args.candidates ?? datasetFile(s);
    // the workspace's default file may belong to another model: then the job runs without HR/NDCG
    const fromSetting = args.candidates === undefined && candidates !== undefined;
    const tempDir = tempDirFor(target.out);
    const panel = AnalysisPanel.show(this.context.extensionUri, model, this);
    log().info(`${name} ${model.fsPath} -> ${target.out} ${JSON.stringify(steps ?? settings)}`);
    const r = await runJobWithProgress(
      this.context.extensionUri,
      {
        kind: 'compress',
        path: model.fsPath,
        method,
        settings,
        steps,
        outPath: target.out,
        overwrite: target.overwrite,
        tempDir,
        epsilon: s.nearZeroEpsilon,
        evaluate: args.evaluate === false ? undefined : { candidates, candidatesFromSetting: fromSetting, k: args.k ?? s.defaultK, latency: s.measureLatency },
      },
      {
        title: `${label} ${basename(model.fsPath)}`,
        onProgress: (p) => panel.post({ type: 'progress', fraction: p.fraction, phase: p.phase, detail: p.detail }),
        // the worker may have been stopped before it removed its temp folder
        onAbandon: () => removeTemp(tempDir),
        runTitle: job.label,
      },
    );
    if (!r.ok) {
      panel.post({ type: 'error', message: r.cancelled ? `${label} cancelled; nothing was written.` : r.message });
      return undefined;
    }
    const result = r.value;
    for (const n of result.notes) log().info(`  ${n}`);
    for (const n of result.comparison.summary) log().info(`  ${n}`);
    this.reports.set(model.fsPath, result.before);
    panel.post({ type: 'report', report: result.before, actions: availableActions() });
    panel.post({ type: 'comparison', result });
    void vscode.window
      .showInformationMessage(`PruneScope: ${label} wrote ${vscode.workspace.asRelativePath(result.output)}`, 'Reveal in Explorer', 'Analyze Output')
      .then((a) => {
        if (a === 'Reveal in Explorer') void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.output));
        if (a === 'Analyze Output') void this.analyze(vscode.Uri.file(result.output));
      });
    return result;
  }

  // ---------------- compare ----------------

  async compare(a?: vscode.Uri, b?: vscode.Uri | vscode.Uri[]): Promise<CompressJobResult | undefined> {
    // explorer multi-select passes (clicked, [all selected])
    let first = a;
    let second = Array.isArray(b) ? b.find((u) => u.toString() !== a?.toString()) : b;
    first = await this.pickModel(first, 'Compare (first model)');
    if (!first) return undefined;
    if (!second) {
      const found = await vscode.workspace.findFiles('**/{*.onnx,model.json}', '{**/node_modules/**,**/.*/**}', 500);
      const pick = await vscode.window.showQuickPick(
        found.filter((u) => u.fsPath !== first!.fsPath).map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
        { title: `PruneScope: compare ${basename(first.fsPath)} with…`, placeHolder: 'The second model (e.g. the compressed one)' },
      );
      second = pick?.uri;
    }
    if (!second) return undefined;
    if (!(await ensureTrusted('Comparing models (runs both models)'))) return undefined;
    const s = readSettings(first);
    const panel = AnalysisPanel.show(this.context.extensionUri, first, this);
    const r = await runJobWithProgress(
      this.context.extensionUri,
      { kind: 'compare', before: first.fsPath, after: second.fsPath, candidates: datasetFile(s), k: s.defaultK, latency: s.measureLatency, epsilon: s.nearZeroEpsilon },
      { title: `comparing ${basename(first.fsPath)} with ${basename(second.fsPath)}`, onProgress: (p) => panel.post({ type: 'progress', fraction: p.fraction, phase: p.phase, detail: p.detail }) },
    );
    if (!r.ok) {
      panel.post({ type: 'error', message: r.cancelled ? 'Comparison cancelled.' : r.message });
      return undefined;
    }
    panel.post({ type: 'report', report: r.value.before, actions: availableActions() });
    panel.post({ type: 'comparison', result: r.value });
    return r.value;
  }

  // ---------------- sensitivity ----------------

  /** Prunes each tensor alone at several sparsities, measures HR/NDCG, proposes per-tensor targets. */
  async sensitivity(uri?: vscode.Uri, args: { candidates?: string; sparsities?: number[]; budget?: number } = {}): Promise<SensitivityView | undefined> {
    const model = await this.pickModel(uri, 'Sensitivity Analysis');
    if (!model || !this.checkLocal(model)) return undefined;
    if (!(await ensureTrusted('Sensitivity analysis (runs the model)'))) return undefined;
    const s = readSettings(model);
    let candidates = args.candidates ?? datasetFile(s);
    if (!candidates) {
      candidates = await pickFile('Sensitivity Analysis: candidates CSV (user,item,label) to measure HR/NDCG on', '', model);
      if (!candidates) return undefined;
    }
    const panel = AnalysisPanel.show(this.context.extensionUri, model, this);
    if (!panel.report) void this.analyze(model, panel);
    const r = await runJobWithProgress(
      this.context.extensionUri,
      { kind: 'sensitivity', path: model.fsPath, candidates, k: s.defaultK, sparsities: args.sparsities, budget: args.budget },
      { title: `sensitivity of ${basename(model.fsPath)}`, onProgress: (p) => panel.post({ type: 'progress', fraction: p.fraction, phase: p.phase, detail: p.detail }) },
    );
    if (!r.ok) {
      panel.post({ type: 'error', message: r.cancelled ? 'Sensitivity analysis cancelled.' : r.message });
      return undefined;
    }
    panel.post({ type: 'sensitivity', result: r.value });
    return r.value;
  }

  /**
   * Drops input features of a tree ensemble into `<stem>-features.onnx`: their splits collapse
   * to the majority child. Without `features`, the finding's proposal (unused and weak features).
   */
  async dropTreeFeatures(uri?: vscode.Uri, args: TreeFeaturesArgs = {}): Promise<TreeFeaturesResult | undefined> {
    const model = await this.pickModel(uri, 'Drop Tree Features');
    if (!model || !this.checkLocal(model)) return undefined;
    if (!isOnnx(model)) {
      showError('tree ensembles are ai.onnx.ml ops: pick an .onnx file.');
      return undefined;
    }
    if (!(await ensureTrusted('Dropping tree features'))) return undefined;
    let features = args.features;
    let node = args.node;
    if (!features) {
      const trees = await this.analyzeTrees(model);
      const e = trees?.ensembles.find((x) => node === undefined || x.node === node);
      if (!e) {
        showError(`${basename(model.fsPath)} has no tree ensemble${node ? ` named ${node}` : ''}.`);
        return undefined;
      }
      node = e.node;
      features = weakTreeFeatures(e);
    }
    if (!features.length) {
      void vscode.window.showInformationMessage('PruneScope: no feature to drop.');
      return undefined;
    }
    const out = args.output ? resolve(dirname(model.fsPath), args.output) : outputPathFor(model.fsPath, 'features');
    const tempDir = tempDirFor(out);
    const r = await runJobWithProgress(
      this.context.extensionUri,
      { kind: 'tree-features', path: model.fsPath, node, features, outPath: out, overwrite: args.overwrite === true, tempDir },
      { title: `dropping ${features.length} feature(s) of ${basename(model.fsPath)}`, onAbandon: () => removeTemp(tempDir) },
    );
    if (!r.ok) return undefined;
    const v = r.value;
    log().info(`dropped features ${v.removedFeatures.join(', ')} of ${model.fsPath} into ${v.outPath}: nodes ${v.before.nodes} -> ${v.after.nodes}`);
    void vscode.window
      .showInformationMessage(`PruneScope: dropped ${v.removedFeatures.length} feature(s), nodes ${v.before.nodes} → ${v.after.nodes}; wrote ${vscode.workspace.asRelativePath(v.outPath)}`, 'Analyze Output')
      .then((a) => {
        if (a === 'Analyze Output') void this.analyze(vscode.Uri.file(v.outPath));
      });
    return v;
  }

  /**
   * Removes a share of the trees of a tree ensemble into `<stem>-trees.onnx`: which trees go is
   * chosen on a seeded half of a validation CSV (or all of it, with `test`) and the result is
   * reported on the rows that did not choose. Asks for the CSV and the share when not given.
   */
  async removeTrees(uri?: vscode.Uri, args: TreeRemovalArgs = {}): Promise<TreeRemovalResult | undefined> {
    const model = await this.pickModel(uri, 'Remove Trees');
    if (!model || !this.checkLocal(model)) return undefined;
    if (!isOnnx(model)) {
      showError('tree ensembles are ai.onnx.ml ops: pick an .onnx file.');
      return undefined;
    }
    if (!(await ensureTrusted('Removing trees'))) return undefined;
    const last = this.remembered<{ data: string; fraction: number }>('removeTrees', { data: '', fraction: 0.5 });
    const data = args.data ?? (await pickFile('Remove Trees: validation CSV (f0,f1,…,label) to choose the trees on (a seeded half chooses, the other half reports)', last.data, model));
    if (!data) return undefined;
    const fraction = args.fraction ?? (await pickFraction('Remove Trees: share of the trees removed (fewer go if the tuning metric would fall by more than the tolerance)', args.suggestedFraction ?? last.fraction, [0.25, 0.5, 0.75]));
    if (fraction === undefined) return undefined;
    if (!(fraction > 0 && fraction < 1)) {
      showError(`the share of trees to remove must be between 0 and 1 (exclusive), got ${fraction}.`);
      return undefined;
    }
    if (args.data === undefined || args.fraction === undefined) await this.remember('removeTrees', { data, fraction });
    const dataPath = resolve(dirname(model.fsPath), data);
    const out = args.output ? resolve(dirname(model.fsPath), args.output) : outputPathFor(model.fsPath, 'trees');
    const tempDir = tempDirFor(out);
    const r = await runJobWithProgress(
      this.context.extensionUri,
      {
        kind: 'tree-remove',
        path: model.fsPath,
        node: args.node,
        data: dataPath,
        test: args.test ? resolve(dirname(model.fsPath), args.test) : undefined,
        fraction,
        tolerance: args.tolerance,
        outPath: out,
        overwrite: args.overwrite === true,
        tempDir,
      },
      { title: `removing ${Math.round(fraction * 100)}% of the trees of ${basename(model.fsPath)}`, onAbandon: () => removeTemp(tempDir) },
    );
    if (!r.ok) return undefined;
    const v = r.value;
    const m = (x: { metric: string }) => x.metric.toUpperCase();
    const f = (x: number) => x.toFixed(4);
    const heldOut = `held-out ${m(v.heldOut)} (${v.heldOut.rows} rows of ${v.heldOut.source}, not used to choose): ${f(v.heldOut.before)} → ${f(v.heldOut.after)}`;
    const tuning = `tuning ${m(v.tuning)} (the ${v.tuning.rows} rows it chose on, optimistic): ${f(v.tuning.before)} → ${f(v.tuning.after)}`;
    log().info(`removed trees ${v.droppedTrees.join(', ') || '(none)'} of ${model.fsPath} into ${v.outPath}: trees ${v.before.trees} -> ${v.after.trees}, nodes ${v.before.nodes} -> ${v.after.nodes}; ${v.selection}; ${heldOut}; ${tuning}`);
    for (const n of v.notes) log().info(`remove trees: ${n}`);
    void vscode.window
      .showInformationMessage(
        `PruneScope: removed ${v.droppedTrees.length} of ${v.before.trees} trees (${v.before.nodes} → ${v.after.nodes} nodes); ${heldOut}; ${tuning}. Wrote ${vscode.workspace.asRelativePath(v.outPath)}.`,
        'Analyze Output',
      )
      .then((a) => {
        if (a === 'Analyze Output') void this.analyze(vscode.Uri.file(v.outPath));
      });
    return v;
  }

  applyProposal(model: vscode.Uri, view: SensitivityView): void {
    const tensors = Object.keys(view.proposal).filter((t) => view.proposal[t] > 0);
    if (tensors.length === 0) {
      void vscode.window.showInformationMessage('PruneScope: no tensor can be pruned within the budget.');
      return;
    }
    const perLayer = Object.fromEntries(tensors.map((t) => [t, view.proposal[t]]));
    void this.compress(model, 'prune-magnitude', { sparsity: 0, scope: 'layer', perLayer, tensors }, { candidates: undefined });
  }

  // ---------------- findings (quick fixes, panel buttons) and recipes ----------------

  /** The job a finding suggests, as a method and settings; undefined for notes. */
  findingStep(model: vscode.Uri, action: FindingAction): CompressStep | undefined {
    const report = this.reports.get(model.fsPath);
    const t = report?.tensors.find((x) => x.name === action.target);
    const opp = report?.opportunities.find((o) => o.kind === action.kind && o.target === action.target);
    switch (action.kind) {
      case 'prune-rows': {
        const m = opp ? /prune (\d+)% of rows/.exec(opp.title) : null;
        return { method: 'prune-rows', settings: { table: action.target, sparsity: m ? Number(m[1]) / 100 : 0.5 } };
      }
      case 'prune-weights':
        return { method: 'prune-magnitude', settings: { tensors: [action.target], sparsity: 0.5, scope: 'layer' } };
      case 'prune-neurons': {
        const outputs = t && t.shape.length >= 2 ? t.shape[t.transposed ? 0 : t.shape.length - 1] : 0;
        const dead = t?.deadNeurons ?? 0;
        const sparsity = outputs > 0 && dead > 0 ? Math.min(0.9, dead / outputs) : 0.25;
        return { method: 'prune-neurons', settings: { layers: [t?.layer ?? action.target], sparsity } };
      }
      case 'quantize-int8':
        return { method: 'quantize', settings: { dtype: isOnnx(model) ? 'int8' : 'uint8', tensors: [action.target] } };
      case 'quantize-float16':
        return { method: 'quantize', settings: { dtype: 'float16', tensors: [action.target] } };
      case 'factorize': {
        const rank = t?.spectrum?.rankFor95 ?? undefined;
        return { method: 'factorize', settings: rank ? { tensors: [action.target], rank } : { tensors: [action.target], energy: 0.95 } };
      }
      default:
        return undefined;
    }
  }

  async runFinding(model: vscode.Uri, action: FindingAction, args: CompressArgs = {}): Promise<CompressJobResult | undefined> {
    const step = this.findingStep(model, action);
    if (!step) {
      void vscode.window.showInformationMessage('PruneScope: this finding is a note; there is no job to run for it.');
      return undefined;
    }
    return this.compress(model, step.method, step.settings, { evaluate: args.evaluate, ...args, settings: step.settings });
  }

  /** Writes `<model>.recipe.json` with the steps of the given findings and opens it. */
  async writeRecipe(model: vscode.Uri, actions: FindingAction[]): Promise<vscode.Uri | undefined> {
    if (!(await ensureTrusted('Writing a recipe file'))) return undefined;
    const steps = actions.map((a) => this.findingStep(model, a)).filter((s): s is CompressStep => s !== undefined);
    if (steps.length === 0) return undefined;
    const dir = isOnnx(model) ? dirname(model.fsPath) : dirname(dirname(model.fsPath));
    const stem = isOnnx(model) ? basename(model.fsPath).replace(/\.onnx$/i, '') : basename(dirname(model.fsPath));
    let file = join(dir, `${stem}.recipe.json`);
    for (let i = 2; existsSync(file); i++) file = join(dir, `${stem}-${i}.recipe.json`);
    const recipe: RecipeFile = relativeRecipe({ version: RECIPE_SCHEMA_VERSION, model: model.fsPath, steps }, dir);
    const uri = vscode.Uri.file(file);
    await vscode.workspace.fs.writeFile(uri, Buffer.from(recipeText(recipe), 'utf8'));
    await vscode.window.showTextDocument(uri, { preview: false });
    return uri;
  }

  async runRecipe(uri?: vscode.Uri, args: CompressArgs = {}): Promise<CompressJobResult | undefined> {
    let recipeUri = uri ?? vscode.window.activeTextEditor?.document.uri;
    if (!recipeUri || !/\.recipe\.json$/i.test(recipeUri.fsPath)) {
      const found = await vscode.workspace.findFiles('**/*.recipe.json', '**/node_modules/**', 200);
      const pick = await vscode.window.showQuickPick(found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })), { title: 'PruneScope: Run Recipe', placeHolder: 'Recipe file' });
      recipeUri = pick?.uri;
    }
    if (!recipeUri) return undefined;
    const text = Buffer.from(await vscode.workspace.fs.readFile(recipeUri)).toString('utf8');
    let recipe: RecipeFile;
    try {
      recipe = parseRecipe(text, recipeUri.fsPath);
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
      return undefined;
    }
    // the recipe's relative paths (model, output, candidates, datasets in settings) are relative to its folder
    const abs = absoluteRecipe(recipe, dirname(recipeUri.fsPath));
    let model = abs.model ? vscode.Uri.file(abs.model) : undefined;
    model = await this.pickModel(model, 'Run Recipe');
    if (!model) return undefined;
    const first = abs.steps[0];
    return this.compress(
      model,
      first.method,
      first.settings,
      {
        ...args,
        output: args.output ?? abs.output,
        candidates: args.candidates ?? abs.candidates,
        k: args.k ?? abs.k,
        settings: first.settings,
      },
      abs.steps,
    );
  }
}

/** The finding kinds that have a job behind them (all compression methods are in the engine). */
export function availableActions(): OpportunityKind[] {
  return ['prune-rows', 'prune-weights', 'prune-neurons', 'quantize-int8', 'quantize-float16', 'factorize'];
}

function activeCustomEditorUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input.uri : undefined;
}

export type AnalyzeResult = JobResultMap['analyze'];
