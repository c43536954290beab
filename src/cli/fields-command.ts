// `prunescope fields MODEL --data VALID.csv [--json]`: permutation importance of every input
// field of a DeepFM-style model (shuffle one field's column, see how much AUC / logloss loses).
// `prunescope fields MODEL (--drop 0.3 --data VALID.csv | --remove noise_a,noise_b) --out PATH`:
// removes the weakest (or the named) fields, writes the smaller model (temp file + rename, by the
// format writers) and, with --data, prints AUC / logloss before and after.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { modelOutputPath } from '../core/jobs/output-files.js';
import { readModel } from '../core/model/read-model.js';
import { fieldImportance, FieldImportanceReport } from '../core/compress/field-importance.js';
import { pruneFields, PruneFieldsSettings } from '../core/compress/prune-fields.js';
import { evaluateModel } from '../core/eval/evaluate.js';
import { UsageError } from './args.js';
import { FIELDS } from './command-specs.js';
import { createProgressBar } from './progress.js';

function formatImportance(r: FieldImportanceReport): string {
  const lines = [`${r.model}: permutation importance on ${r.data} (${r.rows} rows, ${r.repeats} repeats, runtime ${r.runtime})`];
  lines.push(`baseline ${r.metric} ${r.baseline.toFixed(4)}`);
  const w = Math.max(5, ...r.fields.map((f) => f.field.length));
  lines.push(`${'field'.padEnd(w)}  column  ${'drop'.padStart(9)}  ${'spread'.padStart(8)}  ${r.metric} shuffled`);
  for (const f of r.fields) {
    const within = Math.abs(f.drop) <= 2 * f.spread ? '  (within noise of 0)' : '';
    const mean = f.metrics.reduce((a, b) => a + b, 0) / f.metrics.length;
    lines.push(`${f.field.padEnd(w)}  ${String(f.column).padStart(6)}  ${f.drop.toFixed(5).padStart(9)}  ${f.spread.toFixed(5).padStart(8)}  ${mean.toFixed(4)}${within}`);
  }
  return lines.join('\n');
}

export async function fieldsCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = FIELDS.parse(argv);
  const model = resolve(positionals[0]);
  const data = o.data ? resolve(o.data) : undefined;
  const { metric, repeats, seed } = o;
  const json = o.json;
  const bar = createProgressBar('fields', process.stderr, o.progress);
  try {
    if (o.drop === undefined && o.remove === undefined) {
      if (!data) throw new UsageError('--data VALID.csv is required (labelled rows with the field columns)');
      if (o.out !== undefined) throw new UsageError('--out needs --drop FRACTION or --remove FIELD,FIELD');
      const r = await fieldImportance(model, { data, metric, repeats, seed }, { onProgress: (f, d) => bar.update(f, d) });
      bar.done();
      process.stdout.write((json ? JSON.stringify(r, null, 2) : formatImportance(r)) + '\n');
      return 0;
    }
    const outArg = o.out;
    if (!outArg) throw new UsageError('--out PATH is required when removing fields');
    const out = modelOutputPath(model, outArg, 'fields');
    if (out === model) throw new UsageError('--out must not be the input model');
    // a TF.js output is model.json in its own folder, which the writer creates; an ONNX file's folder must exist
    const folder = out.toLowerCase().endsWith('.json') ? dirname(dirname(out)) : dirname(out);
    if (!existsSync(folder)) throw new UsageError(`the output folder ${folder} does not exist`);
    if (existsSync(out) && !o.force) throw new UsageError(`${out} exists; pass --force to replace it`);
    // the spec checked --drop's range and that --data came with it
    const fields: PruneFieldsSettings['fields'] = o.drop !== undefined ? { drop: o.drop, data: data!, metric, repeats, seed } : o.remove!;
    const ir = await readModel(model);
    const outcome = await pruneFields(ir, { fields, compensate: !o['no-compensate'] }, { onProgress: (f, d) => bar.update(0.8 * f, d) });
    bar.update(0.85, 'writing');
    await outcome.write(out);
    let before: Awaited<ReturnType<typeof evaluateModel>> | undefined;
    let after: typeof before;
    if (data) {
      bar.update(0.9, 'evaluating');
      before = await evaluateModel(model, { data });
      after = await evaluateModel(out, { data });
    }
    bar.done();
    const result = {
      model,
      out,
      method: outcome.method,
      settings: outcome.settings,
      changes: outcome.changes,
      notes: outcome.notes,
      ...(before && after
        ? {
            evaluation: {
              data,
              before: { auc: before.auc ?? null, logloss: before.logloss ?? null, bytes: before.bytes, gzipBytes: before.gzipBytes },
              after: { auc: after.auc ?? null, logloss: after.logloss ?? null, bytes: after.bytes, gzipBytes: after.gzipBytes },
            },
          }
        : {}),
    };
    if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else {
      const lines = [`${model} -> ${out}`, ...outcome.notes.map((n) => `  ${n}`)];
      if (before && after) {
        const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(4));
        lines.push(`  on ${data}: AUC ${f(before.auc)} -> ${f(after.auc)}, logloss ${f(before.logloss)} -> ${f(after.logloss)}, size ${before.bytes} -> ${after.bytes} bytes`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  } finally {
    bar.done();
  }
}
