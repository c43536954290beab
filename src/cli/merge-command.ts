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
import { modelInputs, type CommandInput } from './output-checks.js';

export async function mergeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = MERGE.parse(argv);
  const [model, ...files] = positionals.map((p) => resolve(p));
  const out = o.out ? resolve(o.out) : undefined;
  const shardInputs: CommandInput[] = files.map((f) => ({ path: f, what: 'a shard report being merged' }));
  if (out) checkReportFileFree(out, o.force, [{ path: model, what: 'the original model' }, ...shardInputs]);
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
  const ir = await readModel(model);
  const inputs = [...modelInputs(ir), ...shardInputs];
  if (out) checkReportFileFree(out, o.force, inputs);
  const report = await mergeShards(ir, shards);
  const json = JSON.stringify(report, null, 2);
  if (out) await writeReportFile(out, json + '\n', o.force, inputs);
  if (o.json) process.stdout.write(json + '\n');
  else process.stdout.write(formatReport(report, { top: o.top, tensors: o.tensors }) + '\n');
  return 0;
}
