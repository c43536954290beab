// Findings as diagnostics in model.json, on the exact weight entry of the weights manifest
// (e.g. "item_embedding holds 84% of the parameters; 61% of its rows have near-zero norm"), with
// quick fixes that start the matching job or write a recipe; recipe files get their problems.

import * as vscode from 'vscode';
import { stat } from 'node:fs/promises';
import type { FindingAction } from '../shared/protocol.js';
import type { ModelReport, Opportunity, TensorReport } from '../shared/report.js';
import { checkRecipe } from '../core/jobs/recipe-file.js';
import { runJobWithProgress } from './job-bridge.js';
import type { Commands } from './commands.js';
import { readSettings } from './settings.js';
import { log } from './log.js';

export const DIAGNOSTIC_SOURCE = 'PruneScope';

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The finding in words, led by the share of the parameters the tensor's layer holds. */
export function findingMessage(o: Opportunity, report: ModelReport): string {
  const t = report.tensors.find((x) => x.name === o.target);
  if (!t) return o.title;
  const share = report.trainableParams > 0 ? t.params / report.trainableParams : 0;
  const who = t.layer || t.name;
  const holds = `${who} holds ${pct(share)} of the parameters`;
  switch (o.kind) {
    case 'prune-rows':
      return t.rows ? `${holds}; ${pct(t.rows.nearZeroRows / Math.max(1, t.rows.rows))} of its rows have near-zero norm` : o.title;
    case 'factorize':
      return t.spectrum && t.spectrum.rankFor95 !== null ? `${who} keeps 95% of its energy at rank ${t.spectrum.rankFor95} of ${t.spectrum.fullRank}` : o.title;
    case 'prune-neurons':
      return `${who}: ${t.deadNeurons ?? 0} output neuron(s) have only zero weights`;
    case 'quantize-int8':
      return `${holds}; int8 would keep its relative error at ${((t.quantError?.int8.relRmse ?? 0) * 100).toFixed(2)}% and save ${Math.round(o.estimatedSavingBytes / 1024)} KB`;
    case 'quantize-float16':
      return `${holds}; float16 would keep its relative error at ${((t.quantError?.float16.relRmse ?? 0) * 100).toFixed(3)}%`;
    default:
      return `${holds}; ${o.title.replace(`${t.name}: `, '')}`;
  }
}

/** The short label of the job a finding starts. */
export function actionTitle(o: Opportunity, t: TensorReport | undefined, onnx: boolean): string | undefined {
  const name = t?.layer || o.target;
  switch (o.kind) {
    case 'prune-rows': {
      const m = /prune (\d+)% of rows/.exec(o.title);
      return `Prune ${m ? m[1] : 50}% of rows of ${name}`;
    }
    case 'prune-weights':
      return `Prune 50% of the weights of ${name}`;
    case 'prune-neurons':
      return `Remove the dead neurons of ${name}`;
    case 'quantize-int8':
      return `Quantize ${name} to ${onnx ? 'int8' : 'uint8'}`;
    case 'quantize-float16':
      return `Quantize ${name} to float16`;
    case 'factorize':
      return `Factorize ${name} to rank ${t?.spectrum?.rankFor95 ?? '(95% energy)'}`;
    default:
      return undefined;
  }
}

/** Where a weight is named in a model.json: its entry in weightsManifest, else any mention. */
export function findWeightEntry(text: string, name: string): { start: number; end: number } | undefined {
  const literal = JSON.stringify(name);
  const manifest = text.indexOf('"weightsManifest"');
  const searchFrom = (from: number): number => {
    for (let i = text.indexOf(literal, from); i >= 0; i = text.indexOf(literal, i + 1)) {
      // the weight's own "name": "<weight>" entry, not a mention inside another string
      const before = text.slice(Math.max(0, i - 40), i);
      if (/"name"\s*:\s*$/.test(before)) return i;
    }
    return -1;
  };
  let at = manifest >= 0 ? searchFrom(manifest) : -1;
  if (at < 0) at = searchFrom(0);
  if (at < 0) at = text.indexOf(literal);
  return at < 0 ? undefined : { start: at, end: at + literal.length };
}

interface FindingDiagnostic extends vscode.Diagnostic {
  action?: FindingAction;
  actionTitle?: string;
}

export class ModelDiagnostics implements vscode.CodeActionProvider, vscode.Disposable {
  static readonly metadata: vscode.CodeActionProviderMetadata = { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] };
  readonly collection = vscode.languages.createDiagnosticCollection('prunescope');
  private readonly analysed = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly commands: Commands,
  ) {
    this.disposables.push(
      this.collection,
      vscode.workspace.onDidOpenTextDocument((d) => void this.update(d)),
      vscode.workspace.onDidSaveTextDocument((d) => void this.update(d, true)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        if (isRecipe(d.uri)) this.collection.delete(d.uri);
      }),
    );
    // a report made by the Analyze command refreshes the diagnostics of that model.json
    commands.onReport((uri, r) => {
      if (/model\.json$/i.test(uri.fsPath)) {
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === uri.fsPath);
        if (doc) this.setFromReport(doc, r);
      }
    });
    for (const d of vscode.workspace.textDocuments) void this.update(d);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  /** Analyses a model.json in the worker (once per modification) and sets its diagnostics. */
  update(doc: vscode.TextDocument, force = false): Promise<void> {
    if (isRecipe(doc.uri)) {
      this.setRecipeDiagnostics(doc);
      return Promise.resolve();
    }
    if (doc.uri.scheme !== 'file' || !/(^|[\\/])model\.json$/i.test(doc.uri.fsPath)) return Promise.resolve();
    const key = doc.uri.fsPath;
    const running = this.inFlight.get(key);
    if (running) return running;
    const p = (async () => {
      const st = await stat(key).catch(() => undefined);
      if (!st) return;
      if (!force && this.analysed.get(key) === st.mtimeMs && this.commands.lastReport(doc.uri)) {
        this.setFromReport(doc, this.commands.lastReport(doc.uri)!);
        return;
      }
      const r = await runJobWithProgress(
        this.context.extensionUri,
        { kind: 'analyze', path: key, epsilon: readSettings(doc.uri).nearZeroEpsilon },
        { title: `checking ${vscode.workspace.asRelativePath(doc.uri)}`, silent: true, quietErrors: true },
      );
      if (!r.ok) {
        // not every model.json is a TF.js model; a file that is not one gets no findings
        log().debug(`diagnostics: ${key}: ${r.message}`);
        this.collection.delete(doc.uri);
        return;
      }
      this.analysed.set(key, st.mtimeMs);
      this.commands.rememberReport(doc.uri, r.value);
      this.setFromReport(doc, r.value);
    })().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  private setFromReport(doc: vscode.TextDocument, report: ModelReport): void {
    const text = doc.getText();
    const diags: FindingDiagnostic[] = [];
    for (const o of report.opportunities) {
      const at = findWeightEntry(text, o.target);
      if (!at) continue;
      const range = new vscode.Range(doc.positionAt(at.start), doc.positionAt(at.end));
      const t = report.tensors.find((x) => x.name === o.target);
      const d: FindingDiagnostic = new vscode.Diagnostic(range, findingMessage(o, report), o.kind === 'note' ? vscode.DiagnosticSeverity.Hint : vscode.DiagnosticSeverity.Information);
      d.source = DIAGNOSTIC_SOURCE;
      d.code = o.kind;
      const title = actionTitle(o, t, false);
      if (title) {
        d.action = { kind: o.kind, target: o.target };
        d.actionTitle = title;
      }
      diags.push(d);
    }
    this.collection.set(doc.uri, diags);
  }

  private setRecipeDiagnostics(doc: vscode.TextDocument): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(doc.getText());
    } catch (e) {
      const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 1), `not valid JSON: ${(e as Error).message}`, vscode.DiagnosticSeverity.Error);
      d.source = DIAGNOSTIC_SOURCE;
      this.collection.set(doc.uri, [d]);
      return;
    }
    const text = doc.getText();
    const diags = checkRecipe(parsed).map((p) => {
      const m = /^steps\[(\d+)\]\.(\w+)$/.exec(p.path);
      let at = -1;
      if (m) {
        let seen = -1;
        for (let i = text.indexOf(`"${m[2]}"`); i >= 0; i = text.indexOf(`"${m[2]}"`, i + 1)) if (++seen === Number(m[1])) { at = i; break; }
      } else if (p.path) at = text.indexOf(`"${p.path.split(/[.[]/)[0]}"`);
      const start = at >= 0 ? doc.positionAt(at) : new vscode.Position(0, 0);
      const end = at >= 0 ? doc.lineAt(start.line).range.end : new vscode.Position(0, 1);
      const d = new vscode.Diagnostic(new vscode.Range(start, end), `${p.path ? `${p.path}: ` : ''}${p.message}`, vscode.DiagnosticSeverity.Error);
      d.source = DIAGNOSTIC_SOURCE;
      return d;
    });
    this.collection.set(doc.uri, diags);
  }

  provideCodeActions(doc: vscode.TextDocument, range: vscode.Range | vscode.Selection, ctx: vscode.CodeActionContext): vscode.CodeAction[] {
    const all = (this.collection.get(doc.uri) ?? []) as readonly FindingDiagnostic[];
    const here = ctx.diagnostics.length > 0
      ? all.filter((d) => ctx.diagnostics.some((c) => c.range.isEqual(d.range) && c.message === d.message))
      : all.filter((d) => d.range.intersection(range));
    const out: vscode.CodeAction[] = [];
    for (const d of here) {
      if (!d.action || !d.actionTitle) continue;
      const a = new vscode.CodeAction(d.actionTitle, vscode.CodeActionKind.QuickFix);
      a.diagnostics = [d];
      a.isPreferred = true;
      a.command = { command: 'prunescope.runFinding', title: d.actionTitle, arguments: [doc.uri, d.action] };
      out.push(a);
      const w = new vscode.CodeAction(`Write a recipe: ${d.actionTitle}`, vscode.CodeActionKind.QuickFix);
      w.diagnostics = [d];
      w.command = { command: 'prunescope.writeRecipe', title: 'Write recipe', arguments: [doc.uri, [d.action]] };
      out.push(w);
    }
    const every = all.filter((d) => d.action).map((d) => d.action as FindingAction);
    if (here.some((d) => d.action) && every.length > 1) {
      const w = new vscode.CodeAction(`Write a recipe with all ${every.length} PruneScope fixes`, vscode.CodeActionKind.QuickFix);
      w.command = { command: 'prunescope.writeRecipe', title: 'Write recipe', arguments: [doc.uri, every] };
      out.push(w);
    }
    return out;
  }
}

function isRecipe(uri: vscode.Uri): boolean {
  return /\.recipe\.json$/i.test(uri.fsPath);
}
