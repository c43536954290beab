// Knowledge distillation: a teacher recommender (NeuMF, two-tower or DeepFM shaped; ONNX or
// TF.js) teaches a student of the same kind with a smaller embedding dimension and narrower MLP,
// built with the sample builders. Loss = alpha * T^2 * BCE(student_T, teacher_T) +
// (1 - alpha) * BCE(student, label), on the data's rows (positives + sampled negatives).
// The student is written in the teacher's format with the teacher's input and output names.
//
// The architecture is read from the IR: embedding tables (shapes; names say gmf/mlp, user/item,
// `<field>_embedding` / `<field>_linear`) and the chain of dense kernels.

import * as tf from '@tensorflow/tfjs';
import { onnx } from 'onnx-proto';
import { ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { fieldColumns, tableBase } from '../model/field-columns.js';
import { writeOnnxFile } from '../model/onnx/build.js';
import { fileSystemSaveHandler } from '../model/tfjs-io.js';
import { initTfjs } from '../runtime/tfjs-backend.js';
import { buildDeepFM, buildNeuMF, buildTwoTower, SampleKind, SampleOutput } from '../samples/models.js';
import { layersModelToOnnx } from '../samples/to-onnx.js';
import { EpochSampler, readInteractionTable, trainingTable, unusedNegativesNote, ratingsAsPositivesNote } from './train/interaction-table.js';
import { layersTrainee, loadTrainee, traineeOutputKind } from './train/trainee.js';
import { CandidateMetrics, evaluateCandidates } from './train/candidate-metrics.js';
import { checkAbort, trainLoop, TrainLoopOptions, TrainLoopResult } from './train/loop.js';
import { lossName } from './train/loss.js';
import { tapeTeacher, teacherLoss, teacherScorer, type TeacherScorer } from './train/teacher.js';

export { distillationLoss } from './train/teacher.js';
import type { OutputKind, OutputSemantics } from './train/output-kind.js';
import { compileLayers, FastEngine, UnsupportedGraphError } from './train/compiled-step.js';
import type { EnginePreference } from './train/engine-choice.js';
import { fastTrainLoop } from './train/fast-loop.js';
import { distillationSeed } from './train/distill-gradient.js';
import { resolveSamplePruning, samplePruningNotes, SamplePruningReport, SamplePruningSettings, trainWithSamplePruning } from './sample-pruning.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';

export interface RecommenderArchitecture {
  kind: SampleKind;
  users: number;
  items: number;
  /** NeuMF: GMF and MLP embedding widths; two-tower / DeepFM: `dim` */
  gmfDim?: number;
  mlpDim?: number;
  dim?: number;
  hidden: number[];
  /** DeepFM: vocabulary and name per input column */
  fieldVocab?: number[];
  fieldNames?: string[];
}

function denseChain(kernels: Array<[number, number]>, input: number): number[] {
  const left = kernels.slice();
  const hidden: number[] = [];
  let width = input;
  for (;;) {
    const i = left.findIndex(([inp, out]) => inp === width && out > 1);
    if (i < 0) return hidden;
    const [, out] = left.splice(i, 1)[0];
    hidden.push(out);
    width = out;
  }
}

function kernelShapes(ir: ModelIR, only?: RegExp): Array<[number, number]> {
  return ir.tensors
    .filter((t) => t.role === 'dense-kernel' && t.shape.length === 2 && (!only || only.test(t.name)))
    .map((t) => (t.transposed ? [t.shape[1], t.shape[0]] : [t.shape[0], t.shape[1]]) as [number, number]);
}

/** Field order of a DeepFM teacher: which column of its fields input each `<field>_embedding` reads. */
function deepfmFieldOrder(ir: ModelIR, fields: string[]): string[] {
  const { at } = fieldColumns(ir);
  const ordered = fields.slice().sort((a, b) => (at(a) ?? Infinity) - (at(b) ?? Infinity));
  if (ordered.some((f) => at(f) === undefined)) {
    throw new ModelFileError(ir.path, `distill: cannot tell which input column each DeepFM field (${fields.join(', ')}) reads`);
  }
  return ordered;
}

/** Reads the teacher's architecture from its tensors (and, for DeepFM, its graph or topology). */
export async function identifyArchitecture(ir: ModelIR): Promise<RecommenderArchitecture> {
  const tables = ir.tensors.filter((t) => t.role === 'embedding' && t.shape.length === 2);
  const kernels = kernelShapes(ir);
  const found = `found embedding tables ${tables.map((t) => `${t.name} [${t.shape.join('x')}]`).join(', ') || 'none'}`;
  const linear = tables.filter((t) => t.shape[1] === 1);
  const wide = tables.filter((t) => t.shape[1] > 1);
  if (linear.length >= 2 && linear.length === wide.length) {
    const names = wide.map((t) => tableBase(t).replace(/_embedding$/, ''));
    const dims = new Set(wide.map((t) => t.shape[1]));
    if (dims.size !== 1) throw new ModelFileError(ir.path, `distill: DeepFM field embeddings of different widths are not supported (${found})`);
    const dim = wide[0].shape[1];
    const order = deepfmFieldOrder(ir, names);
    const vocab = order.map((f) => wide[names.indexOf(f)].shape[0]);
    return { kind: 'deepfm', users: vocab[0], items: vocab[1], dim, hidden: denseChain(kernels, order.length * dim), fieldVocab: vocab, fieldNames: order };
  }
  const isUser = (t: ModelTensor) => /user/i.test(t.name);
  if (wide.length === 4) {
    const gmf = wide.filter((t) => /gmf/i.test(t.name));
    const mlp = wide.filter((t) => /mlp/i.test(t.name));
    // without gmf/mlp names: the builder's order (GMF tables first)
    const g = gmf.length === 2 ? gmf : wide.slice(0, 2);
    const m = mlp.length === 2 ? mlp : wide.slice(2, 4);
    const users = (g.find(isUser) ?? g[0]).shape[0];
    const items = (g.find((t) => !isUser(t)) ?? g[1]).shape[0];
    const mlpDim = m[0].shape[1];
    return { kind: 'neumf', users, items, gmfDim: g[0].shape[1], mlpDim, hidden: denseChain(kernels, 2 * mlpDim) };
  }
  if (wide.length === 2) {
    const user = wide.find(isUser) ?? wide[0];
    const item = wide.find((t) => t !== user)!;
    if (user.shape[1] !== item.shape[1]) throw new ModelFileError(ir.path, `distill: two-tower tables of different widths (${found})`);
    // both towers have the same widths: read the user tower's (or half of the whole chain)
    const userKernels = kernelShapes(ir, /user/i);
    let hidden = denseChain(userKernels, user.shape[1]);
    if (hidden.length === 0) {
      const all = denseChain(kernels, user.shape[1]);
      hidden = all.slice(0, Math.ceil(all.length / 2));
    }
    return { kind: 'two-tower', users: user.shape[0], items: item.shape[0], dim: user.shape[1], hidden };
  }
  throw new ModelFileError(ir.path, `distill: cannot tell the architecture (NeuMF: 4 tables, two-tower: 2, DeepFM: a wide and a width-1 table per field); ${found}`);
}

function mlpParams(input: number, hidden: number[]): number {
  let p = 0;
  let w = input;
  for (const h of hidden) {
    p += w * h + h;
    w = h;
  }
  return p;
}

/** Trainable parameters of a model built by the sample builders with this architecture. */
export function architectureParams(a: RecommenderArchitecture): number {
  const last = (input: number) => (a.hidden.length ? a.hidden[a.hidden.length - 1] : input);
  switch (a.kind) {
    case 'neumf': {
      const g = a.gmfDim!;
      const m = a.mlpDim!;
      return (a.users + a.items) * (g + m) + mlpParams(2 * m, a.hidden) + g + last(2 * m) + 1;
    }
    case 'two-tower':
      return (a.users + a.items) * a.dim! + 2 * mlpParams(a.dim!, a.hidden) + 2;
    case 'deepfm': {
      const F = a.fieldVocab!.length;
      const vocab = a.fieldVocab!.reduce((x, y) => x + y, 0);
      return vocab * (a.dim! + 1) + mlpParams(F * a.dim!, a.hidden) + last(F * a.dim!) + 1;
    }
  }
}

function mainDim(a: RecommenderArchitecture): number {
  return a.kind === 'neumf' ? Math.max(a.gmfDim!, a.mlpDim!) : a.dim!;
}

/** The student for embedding width `d` (other widths scaled alike; hidden widths by the square root of the scale, as they cost little). */
function scaled(a: RecommenderArchitecture, d: number, hidden?: number[]): RecommenderArchitecture {
  const s = d / mainDim(a);
  const h = hidden ?? a.hidden.map((x) => Math.max(2, Math.round(x * Math.sqrt(s))));
  if (a.kind === 'neumf') return { ...a, gmfDim: Math.max(1, Math.round(a.gmfDim! * s)), mlpDim: Math.max(1, Math.round(a.mlpDim! * s)), hidden: h };
  return { ...a, dim: d, hidden: h };
}

/** The largest student with at most teacherParams / ratio parameters. */
export function studentArchitecture(
  teacher: RecommenderArchitecture,
  teacherParams: number,
  o: { studentDim?: number; ratio?: number; hidden?: number[]; gmfDim?: number; mlpDim?: number },
): RecommenderArchitecture {
  if (teacher.kind === 'neumf' && (o.gmfDim !== undefined || o.mlpDim !== undefined)) {
    const base = o.studentDim !== undefined ? scaled(teacher, o.studentDim, o.hidden) : scaled(teacher, mainDim(teacher), o.hidden);
    for (const [k, v] of [['gmfDim', o.gmfDim], ['mlpDim', o.mlpDim]] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`distill: ${k} must be a positive integer, got ${v}`);
    }
    const s = Math.max(o.gmfDim ?? 0, o.mlpDim ?? 0) / mainDim(teacher);
    const hidden = o.hidden ?? teacher.hidden.map((x) => Math.max(2, Math.round(x * Math.sqrt(s))));
    return { ...base, gmfDim: o.gmfDim ?? base.gmfDim, mlpDim: o.mlpDim ?? base.mlpDim, hidden };
  }
  if (o.studentDim !== undefined) {
    if (!Number.isInteger(o.studentDim) || o.studentDim < 1) throw new Error(`distill: studentDim must be a positive integer, got ${o.studentDim}`);
    return scaled(teacher, o.studentDim, o.hidden);
  }
  const ratio = o.ratio ?? 8;
  if (!(ratio >= 1)) throw new Error(`distill: ratio must be at least 1, got ${ratio}`);
  const budget = teacherParams / ratio;
  if (teacher.kind === 'neumf') {
    // Measured on the demo data (8x, 8 epochs): GMF 3 + MLP 1 kept 91% of the teacher's NDCG@10,
    // GMF 2 + MLP 2 only 80%: at small widths the dot product carries the signal better than a
    // narrow MLP. So the MLP embedding gets a quarter of the width, the GMF the rest.
    const width = teacher.gmfDim! + teacher.mlpDim!;
    for (let w = width; w >= 2; w--) {
      const mlpDim = Math.max(1, Math.floor(w / 4));
      const s = w / width;
      const hidden = o.hidden ?? teacher.hidden.map((x) => Math.max(2, Math.round(x * Math.sqrt(s))));
      const a: RecommenderArchitecture = { ...teacher, gmfDim: w - mlpDim, mlpDim, hidden };
      if (architectureParams(a) <= budget) return a;
    }
  }
  for (let d = mainDim(teacher); d >= 1; d--) {
    const s = scaled(teacher, d, o.hidden);
    if (architectureParams(s) <= budget) return s;
  }
  throw new Error(`distill: no student of this kind fits ${Math.floor(budget)} parameters (1/${ratio} of ${teacherParams}); the embedding tables alone need more`);
}

/** The teacher's architecture and parameters, and the student these settings make of it (what distillModel trains). */
export async function studentOf(
  teacherIr: ModelIR,
  o: Parameters<typeof studentArchitecture>[2],
): Promise<{ teacher: RecommenderArchitecture; teacherParams: number; student: RecommenderArchitecture }> {
  const teacher = await identifyArchitecture(teacherIr);
  const teacherParams = teacherIr.tensors.filter((t) => t.trainable && t.role !== 'constant').reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  return { teacher, teacherParams, student: studentArchitecture(teacher, teacherParams, o) };
}

/** The student model; `output` 'logit' ends it in the raw score (for logit and rating teachers). */
export function buildStudent(a: RecommenderArchitecture, seed: number, output: SampleOutput = 'probability'): tf.LayersModel {
  switch (a.kind) {
    case 'neumf':
      return buildNeuMF({ users: a.users, items: a.items, gmfDim: a.gmfDim!, mlpDim: a.mlpDim!, hidden: a.hidden, seed, output });
    case 'two-tower':
      return buildTwoTower({ users: a.users, items: a.items, dim: a.dim!, hidden: a.hidden, seed, output });
    case 'deepfm':
      return buildDeepFM({ fieldVocab: a.fieldVocab!, fieldNames: a.fieldNames, dim: a.dim!, hidden: a.hidden, seed, output });
  }
}

/** Sampled negatives per positive of implicit data, by default. */
export const DISTILL_NEGATIVES = 4;

export interface DistillSettings {
  data: string;
  studentDim?: number;
  /** teacher params / student params, at least; default 8 (ignored when studentDim is given) */
  ratio?: number;
  hidden?: number[];
  /** NeuMF students: the GMF / MLP embedding widths (override studentDim / ratio for that branch) */
  gmfDim?: number;
  mlpDim?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** weight of the teacher's soft targets; default 0.7 */
  alpha?: number;
  temperature?: number;
  negatives?: number;
  seed?: number;
  candidates?: string;
  k?: number;
  /**
   * train the epochs after the warm-up on the `keep` fraction of rows the student finds hardest
   * (importance from the student's loss against the labels; sample-pruning.ts)
   */
  samplePruning?: SamplePruningSettings;
  /** what the teacher's output is; default 'auto' (output-kind.ts). The student outputs the same kind. */
  outputKind?: OutputKind | 'auto';
  /** training engine for the student: 'auto' (compiled on WASM/CPU), 'compiled' or 'tape' */
  engine?: EnginePreference;
}

/** The student on the compiled engine, or undefined (tape) where the backend or its layers do not allow it. */
async function compiledStudent(student: tf.LayersModel, backend: string, required: boolean, file: string): Promise<FastEngine | undefined> {
  if (backend !== 'wasm' && backend !== 'cpu') {
    if (required) throw new ModelFileError(file, `the compiled training engine runs on the WASM and CPU backends, not '${backend}'`);
    return undefined;
  }
  try {
    return compileLayers(student, { keepZeros: false, nameOf: (w) => (w as unknown as { originalName?: string }).originalName ?? w.name });
  } catch (e) {
    if (e instanceof UnsupportedGraphError && !required) return undefined;
    throw e;
  }
}

/** The report's sentence on why the student has this shape and this schedule (defaults and measurements behind them). */
function whyThisStudent(teacher: RecommenderArchitecture, student: RecommenderArchitecture, s: DistillSettings): string {
  const shape =
    s.studentDim !== undefined || s.gmfDim !== undefined || s.mlpDim !== undefined
      ? 'Student widths as given.'
      : `Student: the largest ${teacher.kind} within 1/${s.ratio ?? 8} of the teacher's parameters` +
        (teacher.kind === 'neumf'
          ? `, the GMF branch taking 3/4 of the embedding width and the MLP at least 1 (here GMF ${student.gmfDim}, MLP ${student.mlpDim}): at small widths the element-wise product carries the ranking better than a narrow MLP (GMF 3 + MLP 1 kept 91% of NDCG@10 at 8x on our demo data, GMF 2 + MLP 2 80%).`
          : '.');
  const defaults = [s.epochs === undefined && 'epochs 8', s.lr === undefined && 'lr 0.005', s.alpha === undefined && 'alpha 0.7', s.temperature === undefined && 'temperature 1'].filter(Boolean);
  const schedule = defaults.length
    ? ` Defaults used (${defaults.join(', ')}): chosen on a logit NeuMF teacher trained by PyTorch on MovieLens-100K, where they kept 90.9-92.7% of NDCG@10 at 8x over four seeds (alpha 0.5 or lr 0.01: as low as 88.5-89.6%; temperature 2, 6 or 12 epochs did worse).`
    : '';
  return shape + schedule;
}

/** Renames graph inputs/outputs (and every node input/output) of an ONNX model. */
function renameOnnxValues(proto: onnx.ModelProto, rename: Map<string, string>): void {
  const g = proto.graph!;
  const r = (s: string) => rename.get(s) ?? s;
  for (const v of [...(g.input ?? []), ...(g.output ?? [])]) v.name = r(v.name ?? '');
  for (const n of g.node ?? []) {
    n.input = (n.input ?? []).map(r);
    n.output = (n.output ?? []).map(r);
  }
}

export async function distillModel(teacherIr: ModelIR, settings: DistillSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  // Defaults measured on a logit NeuMF teacher trained by PyTorch on MovieLens-100K (GMF 32, MLP
  // 32, hidden 32-16; leave-one-out, 99 negatives), student 8.1x smaller, NDCG@10 kept:
  //   compiled engine (row-wise lazy Adam), alpha 0.7: lr 0.005: 91.6 / 91.8 / 92.7 / 90.9%
  //   (seeds 7, 2, 3, 11); lr 0.01: 92.1 / 90.4 / 88.5%; lr 0.02: 90.4%; 10 epochs at lr 0.01: 91.0 / 90.1%.
  //   tape engine (Adam on whole tables), lr 0.01: alpha 0.5: 90.8 / 89.6%; alpha 0.7: 91.2 / 92.1 /
  //   91.3%; alpha 0.9: 91.5%; alpha 0.7 at temperature 2: 89.8 / 88.5%; 6 epochs: 89.8 / 88.1%.
  // On the demo data: 91.6% after 8 epochs, 88% after 4.
  const epochs = settings.epochs ?? 8;
  const batchSize = settings.batchSize ?? 512;
  const lr = settings.lr ?? 0.005;
  const alpha = settings.alpha ?? 0.7;
  const T = settings.temperature ?? 1;
  const negatives = settings.negatives ?? DISTILL_NEGATIVES;
  const seed = settings.seed ?? 7;
  const k = settings.k ?? 10;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`distill: alpha must be in [0, 1], got ${alpha}`);
  if (!(T > 0)) throw new Error(`distill: temperature must be positive, got ${T}`);
  const sp = settings.samplePruning ? resolveSamplePruning(settings.samplePruning, epochs, 'distill') : undefined;
  if (teacherIr.format !== 'onnx' && teacherIr.format !== 'tfjs-layers') {
    throw new ModelFileError(teacherIr.path, `distill supports ONNX and TF.js layers teachers, not ${teacherIr.format}`);
  }
  const backend = await initTfjs();
  const { teacher: arch, teacherParams, student: studentArch } = await studentOf(teacherIr, settings);
  const read = await readInteractionTable(settings.data, { model: teacherIr, training: true });
  checkAbort(ctx, 'distillation');
  const teacher = await loadTrainee(teacherIr);
  let student: tf.LayersModel | undefined;
  let engineNote = '';
  let teacherFast: TeacherScorer | undefined;
  try {
    const output: OutputSemantics = await traineeOutputKind(teacherIr, teacher, read, settings.outputKind);
    const table = trainingTable(read, output.kind);
    student = buildStudent(studentArch, seed, output.kind === 'probability' ? 'probability' : 'logit');
    const st = layersTrainee(student, teacherIr.path, undefined, { lastLayerInput: sp?.by === 'gradnorm' });
    const studentParams = student.countParams();
    const teacherMetrics: CandidateMetrics | undefined = settings.candidates ? await evaluateCandidates(teacher, settings.candidates, k) : undefined;
    const sampler = new EpochSampler(table, negatives);
    // the teacher's scores as plain data: no gradient reaches the teacher
    const loss = teacherLoss(output.kind, alpha, T, tapeTeacher(teacher));
    const loopOptions: TrainLoopOptions = {
      epochs,
      batchSize,
      lr,
      seed,
      outputKind: output.kind,
      loss,
      ctx,
      progressSpan: [0.02, 0.95],
      what: 'distillation',
    };
    let result: TrainLoopResult;
    let pruning: SamplePruningReport | undefined;
    // the compiled engine (train/compiled-step.ts) when the backend and the student allow it
    const fast = sp || (settings.engine ?? 'auto') === 'tape' ? undefined : await compiledStudent(student, backend.backend, settings.engine === 'compiled', teacherIr.path);
    engineNote = fast ? `compiled (student tables outside the WASM heap, row-wise lazy Adam)` : `TF.js tape (${sp ? 'training-sample pruning runs on the tape' : settings.engine === 'tape' ? 'asked for' : `the compiled engine runs on WASM/CPU, not on '${backend.backend}'`})`;
    if (sp) {
      const r = await trainWithSamplePruning(st.variables, st, table, negatives, sp, loopOptions);
      result = r.training;
      pruning = r.report;
    } else if (fast) {
      try {
        teacherFast = await teacherScorer(teacherIr, teacher);
        result = await fastTrainLoop(fast, sampler, { epochs, batchSize, lr, seed, outputKind: output.kind, ctx, progressSpan: [0.02, 0.95], what: 'distillation', lossSeed: distillationSeed(output.kind, alpha, T, teacherFast.score) });
        // the trained values back into the student model (its writer and evaluation read them)
        const values = fast.values();
        for (const w of student.weights) {
          const v = values.get((w as unknown as { originalName?: string }).originalName ?? w.name);
          if (!v) continue;
          const t = tf.tensor(v, w.shape as number[], 'float32');
          w.write(t);
          t.dispose();
        }
      } finally {
        fast.dispose();
        teacherFast?.dispose();
      }
    } else {
      result = await trainLoop(st.variables, st.forward, sampler, loopOptions);
    }
    const studentMetrics = settings.candidates ? await evaluateCandidates(st, settings.candidates, k) : undefined;
    if (pruning && studentMetrics) pruning.metric = studentMetrics;

    // the student's artifacts now, so that `write` does not depend on live TF.js state
    const inputRename = new Map<string, string>();
    const teacherInputs = teacherIr.graph.inputs.map((i) => i.name);
    const pick = (re: RegExp) => teacherInputs.find((n) => re.test(n));
    for (const name of student.inputNames) {
      const t = name === 'fields' ? teacherInputs.find((n) => !/user|item/i.test(n)) ?? pick(/./) : pick(new RegExp(name, 'i'));
      if (t && t !== name) inputRename.set(name, t);
    }
    let write: (outPath: string) => Promise<void>;
    if (teacherIr.format === 'onnx') {
      // the student takes the teacher's id types: an int32 caller must not have to change
      const inputDtypes: Record<string, 'int32' | 'int64'> = {};
      for (const name of student.inputNames) {
        if (teacherIr.graph.inputs.find((i) => i.name === (inputRename.get(name) ?? name))?.dtype === 'int32') inputDtypes[name] = 'int32';
      }
      const proto = layersModelToOnnx(student, { graphName: `${arch.kind.replace('-', '_')}_student`, metadata: { distilled_from: teacherIr.path }, inputDtypes });
      const teacherOut = teacherIr.graph.outputs[0]?.name;
      if (teacherOut && teacherOut !== 'score') inputRename.set('score', teacherOut);
      renameOnnxValues(proto, inputRename);
      write = (outPath) => writeOnnxFile(outPath, proto);
    } else {
      let artifacts: tf.io.ModelArtifacts | undefined;
      await student.save(tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }));
      const saved = artifacts!;
      write = async (outPath) => {
        await fileSystemSaveHandler(outPath).save!(saved);
      };
    }

    const studentWeights = new Map(student.weights.map((w) => [(w as unknown as { originalName?: string }).originalName ?? w.name, w.shape as number[]]));
    const changes: TensorChange[] = teacherIr.tensors
      .filter((t) => t.trainable && t.role !== 'constant')
      .map((t) => {
        const after = studentWeights.get(t.name);
        return {
          tensor: t.name,
          action: after ? `student tensor [${after.join('x')}]` : 'not in the student',
          before: { shape: t.shape, dtype: t.dtype, bytes: t.storage.byteLength },
          after: after ? [{ name: t.name, shape: after, dtype: 'float32' as const, bytes: after.reduce((a, b) => a * b, 1) * 4 }] : [],
        };
      });
    const describe = (a: RecommenderArchitecture) =>
      a.kind === 'neumf' ? `GMF ${a.gmfDim}, MLP ${a.mlpDim}, hidden [${a.hidden.join(', ')}]` : `dim ${a.dim}, hidden [${a.hidden.join(', ')}]`;
    const notes = [
      `Distilled a ${arch.kind} teacher (${describe(arch)}, ${teacherParams} parameters) into a student (${describe(studentArch)}, ${studentParams} parameters): ${(teacherParams / studentParams).toFixed(1)}x fewer.`,
      `Teacher output: ${output.kind} (${output.reason}); the student outputs the same. Engine: ${engineNote}.`,
      `Loss = ${alpha} x soft targets (${output.kind === 'rating' ? 'teacher ratings, squared error' : `teacher probabilities${T !== 1 ? ` at temperature ${T}` : ''}, cross-entropy with the student's logit`}) + ${(1 - alpha).toFixed(2)} x labels (${lossName(output.kind)}), ${epochs} epochs: ${result.losses.map((l) => l.toFixed(4)).join(' -> ')}; ${Math.round(result.samplesPerSecond)} samples/s on '${backend.backend}'.`,
      'The student is a new model (smaller tables and layers): its file is smaller and its inference faster, unlike unstructured pruning.',
      whyThisStudent(arch, studentArch, settings),
      ...unusedNegativesNote(table, settings.negatives),
      ...ratingsAsPositivesNote(table, output.kind),
    ];
    if (teacherMetrics && studentMetrics) {
      notes.push(`On ${settings.candidates}: NDCG@${k} teacher ${teacherMetrics.ndcg.toFixed(4)}, student ${studentMetrics.ndcg.toFixed(4)} (${((100 * studentMetrics.ndcg) / Math.max(teacherMetrics.ndcg, 1e-12)).toFixed(1)}% kept).`);
    }
    if (pruning) notes.push(...samplePruningNotes(pruning, k));
    ctx?.onProgress?.(1, 'distilled');
    const outcome: CompressionOutcome & {
      distill: {
        teacherParams: number; studentParams: number; ratio: number; architecture: RecommenderArchitecture; student: RecommenderArchitecture;
        training: TrainLoopResult; outputKind: OutputSemantics; teacherMetrics?: CandidateMetrics; studentMetrics?: CandidateMetrics;
      };
      samplePruning?: SamplePruningReport;
    } = {
      method: 'distill',
      settings: {
        data: settings.data,
        outputKind: output.kind,
        ...(settings.studentDim !== undefined ? { studentDim: settings.studentDim } : { ratio: settings.ratio ?? 8 }),
        hidden: studentArch.hidden, epochs, batchSize, lr, alpha, temperature: T, negatives, seed,
        ...(sp ? { samplePruning: sp } : {}),
      },
      changes,
      notes,
      write,
      distill: {
        teacherParams, studentParams, ratio: teacherParams / studentParams, architecture: arch, student: studentArch,
        training: result, outputKind: output, teacherMetrics, studentMetrics,
      },
      trainingView: { method: 'distill', backend: backend.backend, engine: engineNote.startsWith('compiled') ? 'compiled' : 'tape', outputKind: output.kind, outputKindReason: output.reason, samplesPerSecond: result.samplesPerSecond, seconds: result.seconds, losses: result.losses },
      ...(pruning ? { samplePruning: pruning } : {}),
    };
    return outcome;
  } finally {
    teacher.dispose();
    student?.dispose();
  }
}
