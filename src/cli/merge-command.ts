// `prunescope merge <model> <shard.json>...`: the report of `analyze`, from the shard reports of
// `analyze --shard I/N` (made anywhere: a shell loop, a batch system, `prunescope worker`s).

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { readModel } from '../core/model/read-model.js';
import { ModelFileError } from '../core/model/ir.js';
import { asShardReport, mergeShards } from '../core/analysis/shards.js';
import { MERGE } from './command-specs.js';
import { formatReport } from './format-report.js';
import { checkReportFileFree, writeReportFile } from './report-file.js';

export async function mergeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = MERGE.parse(argv);
  const [model, ...files] = positionals.map((p) => resolve(p));
  const out = o.out ? resolve(o.out) : undefined;
  if (out) checkReportFileFree(out, o.force);
  const shards = [];
  for (const file of files) {
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new ModelFileError(file, `is not a readable JSON shard report: ${(e as Error).message}`);
    }
    shards.push({ file, report: asShardReport(doc, file) });
  }
  const report = await mergeShards(await readModel(model), shards);
  const json = JSON.stringify(report, null, 2);
  if (out) await writeReportFile(out, json + '\n', o.force);
  if (o.json) process.stdout.write(json + '\n');
  else process.stdout.write(formatReport(report, { top: o.top, tensors: o.tensors }) + '\n');
  return 0;
}
