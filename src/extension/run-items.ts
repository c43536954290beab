// How a run history record looks in the Models tree: title, size ratio and metric change in the
// description, every figure in the tooltip.

import * as vscode from 'vscode';
import type { RunRecord } from '../shared/protocol.js';

const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%`;

/** "12.3x smaller", from the record's bytes (before / after). */
export function runRatio(r: RunRecord): string {
  if (r.kind === 'compare' || !(r.bytes.after > 0)) return '';
  return `${(r.bytes.before / r.bytes.after).toFixed(1)}x smaller`;
}

/** "NDCG@10 0.4120 → 0.4090 (−0.7%)" when both sides were measured. */
export function runMetricChange(r: RunRecord): string {
  const [name, p] =
    r.ndcg ? [`NDCG@${r.k ?? 10}`, r.ndcg]
    : r.hr ? [`HR@${r.k ?? 10}`, r.hr]
    : r.auc ? ['AUC', r.auc]
    : r.accuracy ? ['accuracy', r.accuracy]
    : r.rmse ? ['RMSE', r.rmse]
    : ['', undefined];
  if (!p || p.before === null || p.after === null) return '';
  const change = p.before !== 0 ? ` (${pct(p.after / p.before - 1)})` : '';
  return `${name} ${p.before.toFixed(4)} → ${p.after.toFixed(4)}${change}`;
}

export function runDescription(r: RunRecord): string {
  return [runRatio(r), runMetricChange(r)].filter(Boolean).join(' · ');
}

function pair(name: string, p: { before: number | null; after: number | null } | undefined): string {
  if (!p) return '';
  const f = (x: number | null) => (x === null ? '–' : x.toFixed(4));
  return `| ${name} | ${f(p.before)} → ${f(p.after)} |\n`;
}

export function runTooltip(r: RunRecord): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendText(`${r.title}\n\n`);
  const rows = [
    `| | |\n|---|---|\n`,
    `| kind | ${r.kind} |\n`,
    `| started | ${r.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} (${r.seconds.toFixed(1)} s) |\n`,
    `| size on disk | ${r.bytes.before.toLocaleString('en-US')} → ${r.bytes.after.toLocaleString('en-US')} bytes |\n`,
    r.params ? `| parameters | ${r.params.before.toLocaleString('en-US')} → ${r.params.after.toLocaleString('en-US')} |\n` : '',
    pair(`NDCG@${r.k ?? 10}`, r.ndcg),
    pair(`HR@${r.k ?? 10}`, r.hr),
    pair('AUC', r.auc),
    pair('accuracy', r.accuracy),
    pair('RMSE', r.rmse),
    ...(r.latency ?? []).map((l) => `| p50 latency, batch ${l.batch} | ${l.p50Before.toFixed(3)} → ${l.p50After.toFixed(3)} ms |\n`),
    r.backend ? `| backend | ${escape(r.backend)} |\n` : '',
    r.dataset ? `| measured on | ${escape(r.dataset)} |\n` : '',
    r.outputs.length ? `| wrote | ${r.outputs.map(escape).join(', ')} |\n` : '',
    r.recipe ? `| recipe | ${r.recipe.map((s) => escape(s.method)).join(' → ')} |\n` : '',
    r.front ? `| front | ${r.front.length} points |\n` : '',
  ];
  md.appendMarkdown(rows.join(''));
  return md;
}

/** Table cells hold file names and backends: no markdown or pipes from them. */
function escape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

export function runTreeItem(r: RunRecord, model: vscode.Uri): vscode.TreeItem {
  const item = new vscode.TreeItem(r.title, vscode.TreeItemCollapsibleState.None);
  item.id = `${model.toString()}#run:${r.id}`;
  item.description = runDescription(r);
  item.tooltip = runTooltip(r);
  item.iconPath = new vscode.ThemeIcon(r.kind === 'compress-plan' ? 'target' : r.kind === 'compare' ? 'diff' : 'history');
  item.contextValue = 'prunescope.run';
  item.command = { command: 'prunescope.openRun', title: 'Open Run', arguments: [{ kind: 'run', model, record: r }] };
  return item;
}
