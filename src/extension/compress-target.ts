// Compress to Target…: asks the budget (a share of NDCG@K to keep, or a size ratio; optionally
// "not slower"), the validation candidates and the training interactions, runs the planner as a
// 'compress-plan' job, writes the chosen model beside the original and sends the front to the
// panel. A front point clicked in the panel is written by a 'compress' job with its recipe.

import * as vscode from 'vscode';
import { basename, dirname, resolve } from 'node:path';
import type { CompressPlanJobSpec, CompressStep } from '../core/jobs/job-types.js';
import { outputPathFor, removeTemp, tempDirFor } from '../core/jobs/output-files.js';
import { planTitle } from '../core/jobs/run-records.js';
import type { CompressJobResult, PlanPointView, PlanView } from '../shared/protocol.js';
import { AnalysisPanel } from './analysis-panel.js';
import type { Commands } from './commands.js';
import { DataFiles } from './data-files.js';
import { inputBox, pickOne } from './dialogs.js';
import { runJobWithProgress } from './job-bridge.js';
import { log, showError } from './log.js';
import { freeOutputPath } from './output-paths.js';
import { readSettings } from './settings.js';
import { ensureTrusted } from './trust.js';

/** Answers Compress to Target accepts instead of asking (tests, other extensions). */
export interface CompressTargetArgs {
  /** relative metric drop allowed (0.01: keep >= 99%); with targetRatio, no budget dialog */
  maxDrop?: number;
  /** original bytes / output bytes to reach */
  targetRatio?: number;
  /** exclude candidates slower than the original */
  notSlower?: boolean;
  /** validation candidates CSV (default: prunescope.datasetPath, else asked) */
  candidates?: string;
  /** training interactions CSV; '' = training-free (default: the known training data) */
  data?: string;
  budgetMinutes?: number;
  holdout?: number;
  /** output path (absolute, or relative to the model's folder); default `<stem>-target` beside it */
  output?: string;
  overwrite?: boolean;
}

type Budget = { maxDrop: number } | { targetRatio: number };

export class CompressToTarget {
  readonly data: DataFiles;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly commands: Commands,
  ) {
    this.data = new DataFiles(context.workspaceState);
  }

  async run(uri?: vscode.Uri, args: CompressTargetArgs = {}): Promise<PlanView | undefined> {
    const model = await this.commands.pickModel(uri, 'Compress to Target');
    if (!model || model.scheme !== 'file') return undefined;
    if (!(await ensureTrusted('Compressing a model to a target'))) return undefined;
    const interactive = args.maxDrop === undefined && args.targetRatio === undefined;
    const budget = interactive ? await this.askBudget(model) : budgetOf(args);
    if (!budget) return undefined;
    const notSlower = args.notSlower ?? (interactive ? await askNotSlower() : false);
    if (notSlower === undefined) return undefined;
    const candidates = args.candidates ?? (await this.data.chooseCandidates(model, 'Compress to Target: validation candidates (user,item,label) the search measures on'));
    if (!candidates) return undefined;
    const data = args.data ?? (interactive ? await this.data.chooseTraining(model, 'Compress to Target: training interactions (fine-tuned and distilled candidates)', true) : this.data.knownTraining(model) ?? '');
    if (data === undefined) return undefined;
    return this.search(model, { ...args, ...budget, notSlower, candidates, data });
  }

  private async askBudget(model: vscode.Uri): Promise<Budget | undefined> {
    const k = readSettings(model).defaultK;
    const keep = (p: number) => ({ label: `Keep ≥ ${p}% of NDCG@${k}`, detail: `The smallest model within ${100 - p}% of the original's NDCG@${k}`, value: (100 - p) / 100 as number | 'ratio' });
    const items = [keep(99), keep(98), keep(95), { label: 'N times smaller…', detail: 'The most accurate model at least N times smaller on disk', value: 'ratio' as const }];
    const last = this.context.workspaceState.get<number | 'ratio'>('prunescope.last.targetBudget', 0.01);
    const pick = await pickOne(items, 'Compress to Target: budget', last);
    if (!pick) return undefined;
    await this.context.workspaceState.update('prunescope.last.targetBudget', pick.value);
    if (pick.value !== 'ratio') return { maxDrop: pick.value };
    const typed = await inputBox({
      title: 'Compress to Target: how many times smaller',
      value: '10',
      prompt: 'Original size / compressed size on disk, e.g. 10',
      validateInput: (v) => (Number(v.trim().replace(/x$/i, '')) > 1 ? undefined : 'a number greater than 1'),
    });
    return typed === undefined ? undefined : { targetRatio: Number(typed.trim().replace(/x$/i, '')) };
  }

  private async search(model: vscode.Uri, a: CompressTargetArgs & { candidates: string; data: string; notSlower: boolean }): Promise<PlanView | undefined> {
    const s = readSettings(model);
    const base = dirname(model.fsPath);
    const wanted = a.output ? resolve(base, a.output) : outputPathFor(model.fsPath, 'target', s.outputPattern);
    const out = a.overwrite ? wanted : freeOutputPath(wanted);
    const tempDir = tempDirFor(out);
    const spec: CompressPlanJobSpec = {
      kind: 'compress-plan',
      path: model.fsPath,
      candidates: resolve(base, a.candidates),
      ...(a.data ? { data: resolve(base, a.data) } : {}),
      ...(a.targetRatio !== undefined ? { targetRatio: a.targetRatio } : { maxDrop: a.maxDrop ?? 0.01 }),
      ...(a.notSlower ? { maxLatencyRatio: 1 } : {}),
      k: s.defaultK,
      budgetMinutes: a.budgetMinutes ?? s.compressBudgetMinutes,
      ...((a.holdout ?? s.compressHoldout) > 0 ? { holdout: a.holdout ?? s.compressHoldout } : {}),
      outPath: out,
      overwrite: a.overwrite === true,
      tempDir,
    };
    const panel = AnalysisPanel.show(this.context.extensionUri, model, this.commands);
    if (!panel.report) void this.commands.analyze(model, panel);
    log().info(`compress to target ${model.fsPath} -> ${out} ${JSON.stringify({ ...spec, tempDir: undefined })}`);
    const r = await runJobWithProgress(this.context.extensionUri, spec, {
      title: `compress ${basename(model.fsPath)} to target (${spec.budgetMinutes} min)${a.data ? '' : ', training-free'}`,
      onProgress: (p) => panel.post({ type: 'progress', fraction: p.fraction, phase: p.phase, detail: p.detail }),
      onAbandon: () => removeTemp(tempDir),
    });
    if (!r.ok) {
      panel.post({ type: 'error', message: r.cancelled ? 'Compress to Target cancelled; nothing was written.' : r.message });
      return undefined;
    }
    panel.post({ type: 'plan', result: r.value });
    this.announce(r.value);
    return r.value;
  }

  private announce(v: PlanView): void {
    for (const n of v.notes) log().info(`  ${n}`);
    const written = v.output ? `; wrote ${vscode.workspace.asRelativePath(v.output)}` : '; nothing written';
    const buttons = v.output ? ['Reveal in Explorer', 'Analyze Output'] : [];
    void vscode.window.showInformationMessage(`PruneScope: ${planTitle(v)}${written}`, ...buttons).then((b) => {
      if (!v.output) return;
      if (b === 'Reveal in Explorer') void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(v.output));
      if (b === 'Analyze Output') void this.commands.analyze(vscode.Uri.file(v.output));
    });
  }

  /** Writes one point of a plan's front (its recipe replayed from the original) and shows its before/after. */
  async writePoint(model: vscode.Uri, plan: PlanView, id: string): Promise<CompressJobResult | undefined> {
    const p = planPoint(plan, id);
    if (!p) {
      showError(`the last search of ${basename(model.fsPath)} has no point ${id}.`);
      return undefined;
    }
    if (p.recipe.length === 0) {
      void vscode.window.showInformationMessage('PruneScope: this point is the original model; there is nothing to write.');
      return undefined;
    }
    const steps = p.recipe as CompressStep[];
    const out = outputPathFor(model.fsPath, `target-${p.ratio.toFixed(1)}x`, readSettings(model).outputPattern);
    const first = steps[0];
    return this.commands.compress(model, first.method, first.settings, { output: out, candidates: plan.candidates, settings: first.settings }, steps, {
      label: `front point ${p.ratio.toFixed(1)}x (${p.label})`,
    });
  }
}

function budgetOf(args: CompressTargetArgs): Budget {
  return args.targetRatio !== undefined ? { targetRatio: args.targetRatio } : { maxDrop: args.maxDrop ?? 0.01 };
}

async function askNotSlower(): Promise<boolean | undefined> {
  const pick = await pickOne(
    [
      { label: 'Any speed', detail: 'Size and accuracy only', value: false },
      { label: 'Not slower than the original', detail: 'Exclude candidates whose p50 latency is above the original’s', value: true },
    ],
    'Compress to Target: latency',
    false,
  );
  return pick?.value;
}

/** The point of the plan with this id: the chosen one, on the front, or a trained candidate. */
export function planPoint(plan: PlanView, id: string): PlanPointView | undefined {
  return [plan.chosen, ...plan.front, ...plan.trained].find((p) => p.id === id);
}
