// Tensor-to-tensor compression alone (no analysis, no comparison): read, plan, write, with the
// time of each phase and the peak RSS sampled every 20 ms. Run under /usr/bin/time -v for the
// kernel's figure.
//   node out/scripts/bench/stream.js quantize|rows|inline MODEL OUT
// `inline` rewrites a model with every tensor inline (one protobuf file), e.g. the scale
// fixture made from its external-data form.

import { rm } from 'node:fs/promises';
import { readModel } from '../../src/core/model/read-model.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { pruneRows } from '../../src/core/compress/prune-rows.js';
import type { CompressionOutcome } from '../../src/core/compress/types.js';

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
const t0 = Date.now();
const mark = (phase: string): void => {
  peak = Math.max(peak, process.memoryUsage.rss());
  console.log(`${phase.padEnd(8)} ${((Date.now() - t0) / 1000).toFixed(2)} s  peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);
};

async function main(): Promise<void> {
  const [what, model, out] = process.argv.slice(2);
  if (!what || !model || !out) throw new Error('usage: stream.js quantize|rows|inline MODEL OUT');
  const ir = await readModel(model);
  mark('read');
  if (what === 'inline') {
    await writeOnnxModel(ir, out, { externalData: false });
    mark('written');
    return;
  }
  let outcome: CompressionOutcome;
  if (what === 'quantize') outcome = await quantizeModel(ir, { dtype: 'int8', verify: false });
  else if (what === 'rows') outcome = await pruneRows(ir, { sparsity: 0.5 });
  else throw new Error(`unknown method ${what}`);
  mark('planned');
  await outcome.write(out);
  mark('written');
  if (process.env.KEEP_OUTPUT !== '1') await rm(out, { force: true }).then(() => rm(`${out}.data`, { force: true }));
}

main().then(
  () => clearInterval(sampler),
  (e: unknown) => {
    clearInterval(sampler);
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  },
);
