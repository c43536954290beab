import { readModel } from '../../src/core/model/read-model.js';
import { distillModel } from '../../src/core/compress/distill.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { createSampleModel } from '../../src/core/samples/sample-models.js';
(async () => {
  await initTfjs('auto');
  const s = await createSampleModel('neumf', '/tmp/dexp', { size: 'demo', formats: ['onnx'], seed: 5 });
  const ir = await readModel(s.onnxPath!);
  const runs: Array<Record<string, unknown>> = JSON.parse(process.argv[2]);
  for (const r of runs) {
    const o = await distillModel(ir, { data: s.interactionsCsv, candidates: s.candidatesCsv, ...r } as never);
    console.log(JSON.stringify(r), o.notes[0].slice(0, 160), '|', o.notes[o.notes.length - 1]);
  }
})();
