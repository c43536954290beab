// Which training engine runs a model: the compiled fast engine (compiled-step.ts) when every op
// or layer of the graph is in its set, else the TF.js tape (loop.ts). The ONNX check reads no
// tensor values, so a graph the fast engine cannot run is never loaded twice.

import * as tf from '@tensorflow/tfjs';
import { ModelFileError, ModelIR } from '../../model/ir.js';
import { fileSystemLoadHandler } from '../../model/tfjs-io.js';
import { compileLayers, compileOnnx, FastEngine, planFastEngine, UnsupportedGraphError } from './compiled-step.js';

export type EnginePreference = 'auto' | 'compiled' | 'tape';

export type EngineChoice = { kind: 'compiled'; engine: FastEngine } | { kind: 'tape'; reason: string };

/** The fast engine for `ir` (masks are set later with setKeepZeros), or why the tape runs it. */
export async function chooseTrainingEngine(ir: ModelIR, prefer: EnginePreference = 'auto', blocker?: string): Promise<EngineChoice> {
  if (prefer === 'tape') return { kind: 'tape', reason: 'the TF.js tape engine was asked for' };
  const refuse = (reason: string): EngineChoice => {
    if (prefer === 'compiled') throw new ModelFileError(ir.path, `the compiled training engine cannot run this job: ${reason}`);
    return { kind: 'tape', reason };
  };
  if (blocker) return refuse(blocker);
  if (ir.format === 'onnx') {
    const plan = planFastEngine(ir);
    if ('unsupported' in plan) return refuse(plan.unsupported);
    try {
      return { kind: 'compiled', engine: await compileOnnx(ir, { keepZeros: false }) };
    } catch (e) {
      if (e instanceof UnsupportedGraphError) return refuse(e.message);
      throw e;
    }
  }
  if (ir.format === 'tfjs-layers') {
    const model = await tf.loadLayersModel(fileSystemLoadHandler(ir.path));
    const irNames = new Set(ir.tensors.map((t) => t.name));
    try {
      const engine = compileLayers(model, {
        keepZeros: false,
        nameOf: (w) => {
          const n = (w as unknown as { originalName?: string }).originalName ?? w.name;
          if (!irNames.has(n)) throw new ModelFileError(ir.path, `weight '${n}' of the loaded model is not in the manifest`);
          return n;
        },
      });
      return { kind: 'compiled', engine };
    } catch (e) {
      if (e instanceof UnsupportedGraphError) return refuse(e.message);
      throw e;
    } finally {
      // the engine copied every weight out of TF.js
      model.dispose();
    }
  }
  return refuse(`${ir.format} models train on the tape`);
}

/** "row-wise lazy Adam on 3 tables, touched rows 41,233 of 2,100,000" */
export function optimizerSummary(engine: FastEngine): string {
  const touched = engine.tables.reduce((a, t) => a + t.touchedRows, 0);
  const rows = engine.tables.reduce((a, t) => a + t.rows, 0);
  const n = (x: number) => x.toLocaleString('en-US');
  return `row-wise lazy Adam on ${engine.tables.length} table${engine.tables.length === 1 ? '' : 's'}, touched rows ${n(touched)} of ${n(rows)}; Adam on ${engine.dense.length} dense tensors`;
}
