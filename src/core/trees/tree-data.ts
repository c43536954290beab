// Feature rows for tree ensembles from CSV: a header naming the columns, one row per line.
// Columns `f0, f1, ...` (or any names) are the features in order; the column named `label`
// (anywhere; case-insensitive) is the target. Empty cells, `NaN`, `nan` and `NA` are missing
// values (NaN), which the trees route by nodes_missing_value_tracks_true.

import { readFile, stat } from 'node:fs/promises';
import { ioReason, ModelFileError } from '../model/ir.js';
import type { FeatureMatrix } from './tree-eval.js';
import type { LabeledRows } from './tree-prune.js';

const MAX_CSV_BYTES = 2 ** 31 - 1;

export function parseTreeCsv(file: string, text: string): LabeledRows & { featureNames: string[] } {
  const lines = text.split(/\r?\n/);
  let li = 0;
  while (li < lines.length && lines[li].trim() === '') li++;
  if (li >= lines.length) throw new ModelFileError(file, 'empty CSV: expected a header like f0,f1,...,label');
  const header = lines[li].split(',').map((h) => h.trim());
  const labelCol = header.findIndex((h) => h.toLowerCase() === 'label');
  if (labelCol < 0) throw new ModelFileError(file, `no 'label' column in the header (${header.slice(0, 8).join(',')}${header.length > 8 ? ',...' : ''})`);
  const featureNames = header.filter((_, i) => i !== labelCol);
  const F = featureNames.length;
  if (F === 0) throw new ModelFileError(file, 'no feature columns');
  const body = lines.slice(li + 1).filter((l) => l.trim() !== '');
  const rows = body.length;
  if (rows * F > 2 ** 30) throw new ModelFileError(file, `${rows} rows x ${F} features is too large`);
  const data = new Float32Array(rows * F);
  const labels = new Float32Array(rows);
  const cell = (s: string, r: number, c: number): number => {
    const t = s.trim();
    if (t === '' || t === 'NaN' || t === 'nan' || t === 'NA') return NaN;
    const v = Number(t);
    if (Number.isNaN(v)) throw new ModelFileError(file, `line ${li + 2 + r}, column ${c + 1} ('${header[c]}'): '${t}' is not a number`);
    return v;
  };
  body.forEach((line, r) => {
    const cells = line.split(',');
    if (cells.length !== header.length) throw new ModelFileError(file, `line ${li + 2 + r} has ${cells.length} cells, the header has ${header.length}`);
    let k = 0;
    for (let c = 0; c < cells.length; c++) {
      const v = cell(cells[c], r, c);
      if (c === labelCol) {
        if (Number.isNaN(v)) throw new ModelFileError(file, `line ${li + 2 + r}: missing label`);
        labels[r] = v;
      } else data[r * F + k++] = v;
    }
  });
  const X: FeatureMatrix = { data, rows, features: F };
  return { X, labels, featureNames };
}

export async function readTreeCsv(file: string): Promise<LabeledRows & { featureNames: string[] }> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    throw new ModelFileError(file, `cannot open: ${ioReason(e)}`);
  }
  if (size > MAX_CSV_BYTES) throw new ModelFileError(file, `${size} bytes is too large for a CSV dataset`);
  return parseTreeCsv(file, await readFile(file, 'utf8'));
}

/** CSV text with header f0..f{F-1},label (the format readTreeCsv reads). */
export function formatTreeCsv(rows: LabeledRows): string {
  const F = rows.X.features;
  const out: string[] = [[...Array.from({ length: F }, (_, i) => `f${i}`), 'label'].join(',')];
  for (let r = 0; r < rows.X.rows; r++) {
    const cells: string[] = [];
    for (let f = 0; f < F; f++) {
      const v = rows.X.data[r * F + f];
      // the double text of a float32 reads back to the same float32
      cells.push(Number.isNaN(v) ? '' : String(v));
    }
    cells.push(String(rows.labels[r]));
    out.push(cells.join(','));
  }
  return out.join('\n') + '\n';
}
