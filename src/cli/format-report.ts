// The human-readable form of an analysis report: a layer table, totals, and the biggest
// opportunities. Plain text with aligned columns (no colours: it must read the same in a CI log).

import { constantOnlyLayers, type ModelReport } from '../shared/report.js';
import { formatBytes } from '../core/analysis/opportunities.js';

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(digits)}%`;
}

function table(head: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (rightAlign[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatReport(r: ModelReport, opts: { top?: number; tensors?: boolean } = {}): string {
  const top = opts.top ?? 3;
  const out: string[] = [];
  out.push(`${r.path}`);
  out.push(
    `format ${r.format} · ${formatCount(r.totalParams)} params (${formatCount(r.trainableParams)} trainable, ${formatCount(r.constantParams)} in constants) · ${formatBytes(r.fileBytes)} on disk`,
  );
  const trainableZeros = r.trainableZeros;
  out.push(
    `zeros: ${formatCount(r.totalZeros)} in all tensors; ${formatCount(trainableZeros)} of the trainable weights (${pct(r.trainableParams ? trainableZeros / r.trainableParams : null)}) · near-zero means |w| <= ${r.epsilon}`,
  );
  const nonFinite = r.tensors.filter((t) => t.nonFinite > 0);
  if (nonFinite.length) {
    const n = nonFinite.reduce((a, t) => a + t.nonFinite, 0);
    out.push(
      `warning: ${formatCount(n)} NaN or infinite value${n === 1 ? '' : 's'} in ${nonFinite.map((t) => `${t.name} (${formatCount(t.nonFinite)})`).join(', ')}: ` +
        'the model computes NaN wherever they are read (a diverged training run?); statistics leave them out',
    );
  }
  out.push('');

  const tensorsByName = new Map(r.tensors.map((t) => [t.name, t]));
  const weightless = r.layers.filter((l) => l.params === 0).length;
  // layers that hold only constants (shapes, indices, axes of an exporter's graph, the shifts of
  // packed tables): one line for all of them, not a row each
  const onlyConstants = constantOnlyLayers(r);
  const constantValues = onlyConstants.reduce((a, l) => a + l.params, 0);
  const layerRows = [...r.layers]
    .filter((l) => l.params > 0 && !onlyConstants.includes(l))
    .sort((a, b) => b.params - a.params)
    .map((l) => {
      const ts = l.tensors.map((n) => tensorsByName.get(n)).filter((t) => t !== undefined);
      const roles = [...new Set(ts.map((t) => t.role))].join(',');
      const shapes = ts.filter((t) => t.trainable).map((t) => `[${t.shape.join('x')}]`).join(' ');
      const rowsInfo = ts.find((t) => t.rows)?.rows;
      const near = rowsInfo ? `${pct(rowsInfo.nearZeroRows / Math.max(1, rowsInfo.rows))} rows` : pct(nearZeroShare(ts));
      return [l.name, l.kind, roles, shapes || '-', formatCount(l.params), pct(l.share), pct(l.sparsity), near];
    });
  out.push(table(['layer', 'kind', 'role', 'shape', 'params', 'share', 'sparsity', 'near-zero'], layerRows, [false, false, false, false, true, true, true, true]));
  if (onlyConstants.length) {
    out.push(`(${onlyConstants.length} layer${onlyConstants.length === 1 ? '' : 's'} holding only constants, ${formatCount(constantValues)} value${constantValues === 1 ? '' : 's'}, not shown: --tensors lists them)`);
  }
  if (weightless) out.push(`(${weightless} layer${weightless === 1 ? '' : 's'} without weights not shown)`);

  if (opts.tensors) {
    out.push('');
    const rows = r.tensors.map((t) => [
      t.name,
      t.role,
      `[${t.shape.join('x')}]`,
      t.storedDtype === t.dtype ? t.dtype : `${t.dtype}<-${t.storedDtype}`,
      formatCount(t.params),
      formatCount(t.zeros),
      t.spectrum?.rankFor95 != null ? `${t.spectrum.rankFor95}/${t.spectrum.fullRank}` : '-',
      t.quantError?.int8.relRmse != null ? `${(t.quantError.int8.relRmse * 100).toFixed(2)}%` : '-',
    ]);
    out.push(table(['tensor', 'role', 'shape', 'dtype', 'params', 'zeros', 'rank95', 'int8 err'], rows, [false, false, false, false, true, true, true, true]));
  }

  out.push('');
  const ops = r.opportunities.slice(0, top);
  if (r.opportunities.length === 0) {
    out.push('No compression opportunity found.');
  } else if (ops.length === 0) {
    out.push(`${r.opportunities.length} compression opportunit${r.opportunities.length === 1 ? 'y' : 'ies'} found (--top N lists them).`);
  } else {
    out.push(`Biggest opportunities (of ${r.opportunities.length}):`);
    ops.forEach((o, i) => {
      const saving = o.estimatedSavingBytes > 0 ? ` (saves ~${formatBytes(o.estimatedSavingBytes)})` : '';
      out.push(`  ${i + 1}. ${o.title}${saving}`);
      if (o.detail) out.push(`     ${o.detail}`);
    });
  }
  return out.join('\n');
}

function nearZeroShare(ts: { trainable: boolean; params: number; nearZeros: number }[]): number | null {
  const tr = ts.filter((t) => t.trainable);
  const n = tr.reduce((s, t) => s + t.params, 0);
  return n ? tr.reduce((s, t) => s + t.nearZeros, 0) / n : null;
}
