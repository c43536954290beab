// The settings half of the method registry: every compression method's name, title, description
// and settings, declared once as small typed field specs. Validation (types, ranges, choices,
// unknown keys, required and mutually exclusive keys), defaults, JSON Schema and help text all
// derive from the same spec. No engine imports (types only): the extension host reads this file
// for recipe diagnostics and dialogs without loading TF.js; registry.ts adds each method's run.

import { closestName } from '../closest-name.js';
import { COMPRESS_METHODS, type CompressMethod } from '../jobs/job-types.js';
import type { DistillSettings } from './distill.js';
import type { FactorizeSettings } from './factorize.js';
import type { FinetuneSettings } from './finetune.js';
import type { PruneDimsSettings } from './prune-dims.js';
import type { PruneFieldsSettings } from './prune-fields.js';
import type { PruneMagnitudeSettings } from './prune-magnitude.js';
import type { PruneNeuronsSettings } from './prune-neurons.js';
import type { PruneRowsSettings } from './prune-rows.js';
import type { QuantizeSettings } from './quantize.js';

// ---------------- field specs ----------------

interface SpecBase {
  description?: string;
  /** filled in when the key is absent (only for unconditional defaults) */
  default?: unknown;
  required?: boolean;
}
export interface NumberSpec extends SpecBase {
  kind: 'number' | 'integer';
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}
export interface BooleanSpec extends SpecBase {
  kind: 'boolean';
}
/** a non-empty string */
export interface StringSpec extends SpecBase {
  kind: 'string';
}
export interface EnumSpec extends SpecBase {
  kind: 'enum';
  choices: readonly string[];
}
/** a JSON array; lists of numbers also take typed arrays (they cross a worker boundary intact) */
export interface ListSpec extends SpecBase {
  kind: 'list';
  items: SettingSpec;
  minItems?: number;
}
/** an object of values by free names (e.g. per-layer sparsities) */
export interface MapSpec extends SpecBase {
  kind: 'map';
  values: SettingSpec;
}
/** keys of which at most one may be given; with `required`, exactly one */
export interface ExclusiveGroup {
  keys: readonly string[];
  required?: boolean;
}
export interface ObjectSpec extends SpecBase {
  kind: 'object';
  fields: Record<string, SettingSpec>;
  exclusive?: readonly ExclusiveGroup[];
}
/** the first option whose JSON type fits the value decides */
export interface EitherSpec extends SpecBase {
  kind: 'either';
  options: readonly SettingSpec[];
}
export type SettingSpec = NumberSpec | BooleanSpec | StringSpec | EnumSpec | ListSpec | MapSpec | ObjectSpec | EitherSpec;

/** One problem with a settings object, at a path inside it ("samplePruning.keep", "hidden[1]"; "" = the object). */
export interface SettingsProblem {
  path: string;
  message: string;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !ArrayBuffer.isView(x);
}

function isNumberArray(x: unknown): x is ArrayLike<number> {
  return ArrayBuffer.isView(x) && !(x instanceof DataView) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array);
}

const quote = (s: string): string => JSON.stringify(s);
const joinPath = (path: string, key: string): string => (path ? `${path}.${key}` : key);

function rangeText(s: NumberSpec): string {
  const lo = s.min !== undefined, hi = s.max !== undefined;
  if (lo && hi) return ` in ${s.exclusiveMin ? '(' : '['}${s.min}, ${s.max}${s.exclusiveMax ? ')' : ']'}`;
  if (lo) return ` ${s.exclusiveMin ? '>' : '>='} ${s.min}`;
  if (hi) return ` ${s.exclusiveMax ? '<' : '<='} ${s.max}`;
  return '';
}

function itemsText(s: SettingSpec): string {
  if (s.kind === 'string') return 'strings';
  if (s.kind === 'number' || s.kind === 'integer') return `${s.kind === 'integer' ? 'integers' : 'numbers'}${rangeText(s)}`;
  return describeSpec(s);
}

/** What a spec accepts, in words: "a number in [0, 1]", 'one of "l2", "l2xnext"'. */
export function describeSpec(s: SettingSpec): string {
  switch (s.kind) {
    case 'number':
    case 'integer':
      return `${s.kind === 'integer' ? 'an integer' : 'a number'}${rangeText(s)}`;
    case 'boolean':
      return 'true or false';
    case 'string':
      return 'a non-empty string';
    case 'enum':
      return s.choices.length === 1 ? quote(s.choices[0]) : `one of ${s.choices.map(quote).join(', ')}`;
    case 'list':
      return `a list of ${itemsText(s.items)}`;
    case 'map':
      return `an object of ${itemsText(s.values)} by name`;
    case 'object':
      return `an object { ${Object.keys(s.fields).join(', ')} }`;
    case 'either':
      return s.options.map(describeSpec).join(' or ');
  }
}

function shown(v: unknown): string {
  if (typeof v === 'string') return quote(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return 'a list';
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}

function wrong(s: SettingSpec, v: unknown, path: string, problems: SettingsProblem[]): unknown {
  problems.push({ path, message: `must be ${describeSpec(s)}, got ${shown(v)}` });
  return v;
}

function numberOk(s: NumberSpec, v: unknown): boolean {
  if (typeof v !== 'number' || !Number.isFinite(v) || (s.kind === 'integer' && !Number.isInteger(v))) return false;
  if (s.min !== undefined && (s.exclusiveMin ? v <= s.min : v < s.min)) return false;
  return !(s.max !== undefined && (s.exclusiveMax ? v >= s.max : v > s.max));
}

function checkList(s: ListSpec, v: unknown, path: string, problems: SettingsProblem[]): unknown {
  const numeric = s.items.kind === 'number' || s.items.kind === 'integer';
  if (!Array.isArray(v) && !(numeric && isNumberArray(v))) return wrong(s, v, path, problems);
  const list = v as ArrayLike<unknown>;
  if (list.length < (s.minItems ?? 0)) problems.push({ path, message: `must have at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}` });
  const out: unknown[] = [];
  for (let i = 0; i < list.length; i++) {
    const before = problems.length;
    out.push(checkValue(s.items, list[i], `${path}[${i}]`, problems));
    if (problems.length > before) return v; // the first bad item is enough
  }
  return Array.isArray(v) ? out : v;
}

function checkMap(s: MapSpec, v: unknown, path: string, problems: SettingsProblem[]): unknown {
  if (!isRecord(v)) return wrong(s, v, path, problems);
  // fromEntries defines own properties: a "__proto__" key stays a plain key
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, checkValue(s.values, x, joinPath(path, k), problems)]));
}

function unknownKey(key: string, known: string[]): string {
  const near = closestName(key, known);
  const hint = near ? `, did you mean ${quote(near)}?` : '';
  return `unknown setting ${quote(key)}${hint} (known: ${known.join(', ')})`;
}

function checkExclusive(groups: readonly ExclusiveGroup[], v: Record<string, unknown>, path: string, problems: SettingsProblem[]): void {
  for (const g of groups) {
    const given = g.keys.filter((k) => v[k] !== undefined);
    if (given.length > 1) problems.push({ path, message: `give only one of ${g.keys.join(', ')} (got ${given.join(' and ')})` });
    else if (given.length === 0 && g.required) problems.push({ path, message: `give one of ${g.keys.join(', ')}` });
  }
}

function checkObject(s: ObjectSpec, v: unknown, path: string, problems: SettingsProblem[]): unknown {
  if (!isRecord(v)) return wrong(s, v, path, problems);
  const known = Object.keys(s.fields);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!Object.hasOwn(s.fields, k)) problems.push({ path: joinPath(path, k), message: unknownKey(k, known) });
    else if (x !== undefined) out[k] = checkValue(s.fields[k], x, joinPath(path, k), problems);
  }
  for (const [k, f] of Object.entries(s.fields)) {
    if (v[k] !== undefined) continue;
    if (f.required) problems.push({ path: joinPath(path, k), message: `is required (${describeSpec(f)})` });
    else if (f.default !== undefined) out[k] = f.default;
  }
  checkExclusive(s.exclusive ?? [], v, path, problems);
  return out;
}

function fits(s: SettingSpec, v: unknown): boolean {
  switch (s.kind) {
    case 'number':
    case 'integer':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
    case 'enum':
      return typeof v === 'string';
    case 'list':
      return Array.isArray(v) || isNumberArray(v);
    case 'map':
    case 'object':
      return isRecord(v);
    case 'either':
      return s.options.some((o) => fits(o, v));
  }
}

function checkEither(s: EitherSpec, v: unknown, path: string, problems: SettingsProblem[]): unknown {
  for (const o of s.options.filter((x) => fits(x, v))) {
    const found: SettingsProblem[] = [];
    const out = checkValue(o, v, path, found);
    if (found.length === 0) return out;
    // inside a list or an object the nested path says more than "must be X or Y"
    if (o.kind === 'list' || o.kind === 'map' || o.kind === 'object') {
      problems.push(...found);
      return v;
    }
  }
  return wrong(s, v, path, problems);
}

/** Checks one value against its spec; returns it with defaults filled in (problems appended). */
export function checkValue(s: SettingSpec, v: unknown, path: string, problems: SettingsProblem[]): unknown {
  switch (s.kind) {
    case 'number':
    case 'integer':
      return numberOk(s, v) ? v : wrong(s, v, path, problems);
    case 'boolean':
      return typeof v === 'boolean' ? v : wrong(s, v, path, problems);
    case 'string':
      return typeof v === 'string' && v.length > 0 ? v : wrong(s, v, path, problems);
    case 'enum':
      return typeof v === 'string' && s.choices.includes(v) ? v : wrong(s, v, path, problems);
    case 'list':
      return checkList(s, v, path, problems);
    case 'map':
      return checkMap(s, v, path, problems);
    case 'object':
      return checkObject(s, v, path, problems);
    case 'either':
      return checkEither(s, v, path, problems);
  }
}

// ---------------- JSON Schema (draft-07) ----------------

export type JsonSchema = Record<string, unknown>;

function pairs(keys: readonly string[]): string[][] {
  return keys.flatMap((a, i) => keys.slice(i + 1).map((b) => [a, b]));
}

function exclusiveSchema(groups: readonly ExclusiveGroup[]): JsonSchema {
  const rules = groups.map((g): JsonSchema => {
    if (g.required) return { oneOf: g.keys.map((k) => ({ required: [k] })) };
    const p = pairs(g.keys);
    return { not: p.length === 1 ? { required: p[0] } : { anyOf: p.map((x) => ({ required: x })) } };
  });
  return rules.length === 0 ? {} : rules.length === 1 ? rules[0] : { allOf: rules };
}

function numberSchema(s: NumberSpec): JsonSchema {
  return {
    type: s.kind,
    ...(s.min !== undefined ? (s.exclusiveMin ? { exclusiveMinimum: s.min } : { minimum: s.min }) : {}),
    ...(s.max !== undefined ? (s.exclusiveMax ? { exclusiveMaximum: s.max } : { maximum: s.max }) : {}),
  };
}

function objectSchema(s: ObjectSpec): JsonSchema {
  const required = Object.entries(s.fields).filter(([, f]) => f.required).map(([k]) => k);
  return {
    type: 'object',
    ...(required.length ? { required } : {}),
    properties: Object.fromEntries(Object.entries(s.fields).map(([k, f]) => [k, specJsonSchema(f)])),
    additionalProperties: false,
    ...exclusiveSchema(s.exclusive ?? []),
  };
}

function typeSchema(s: SettingSpec): JsonSchema {
  switch (s.kind) {
    case 'number':
    case 'integer':
      return numberSchema(s);
    case 'boolean':
      return { type: 'boolean' };
    case 'string':
      return { type: 'string', minLength: 1 };
    case 'enum':
      return { enum: s.choices };
    case 'list':
      return { type: 'array', items: specJsonSchema(s.items), ...(s.minItems ? { minItems: s.minItems } : {}) };
    case 'map':
      return { type: 'object', additionalProperties: specJsonSchema(s.values) };
    case 'object':
      return objectSchema(s);
    case 'either':
      return { anyOf: s.options.map(specJsonSchema) };
  }
}

/** The JSON Schema of a spec (typed arrays, accepted in code, have no JSON form). */
export function specJsonSchema(s: SettingSpec): JsonSchema {
  return { ...typeSchema(s), ...(s.description ? { description: s.description } : {}), ...(s.default !== undefined ? { default: s.default } : {}) };
}

// ---------------- the methods' settings ----------------

/** Each method's settings type, as its run function takes them. */
export interface MethodSettingsMap {
  'prune-magnitude': PruneMagnitudeSettings;
  'prune-rows': PruneRowsSettings;
  'prune-dims': PruneDimsSettings;
  'prune-neurons': PruneNeuronsSettings;
  'prune-fields': PruneFieldsSettings;
  quantize: QuantizeSettings;
  factorize: FactorizeSettings;
  distill: DistillSettings;
  finetune: FinetuneSettings;
}

export interface MethodSettingsDeclaration<S> {
  name: CompressMethod;
  /** a short label (quick picks, help) */
  title: string;
  /** one sentence a user reads */
  description: string;
  settings: Record<string, SettingSpec>;
  exclusive?: readonly ExclusiveGroup[];
  /** put under the given settings when a compress job runs the method (the job compares the models itself) */
  jobDefaults?: Partial<S>;
}

const fraction = (description: string, extra: Partial<NumberSpec> = {}): NumberSpec => ({ kind: 'number', min: 0, max: 1, description, ...extra });
const count = (description: string, extra: Partial<NumberSpec> = {}): NumberSpec => ({ kind: 'integer', min: 1, description, ...extra });
const text = (description: string, required = false): StringSpec => ({ kind: 'string', description, ...(required ? { required } : {}) });
const choice = (choices: readonly string[], description: string, extra: Partial<EnumSpec> = {}): EnumSpec => ({ kind: 'enum', choices, description, ...extra });
const names = (description: string): ListSpec => ({ kind: 'list', items: { kind: 'string' }, minItems: 1, description });
/**
 * "no tensor named ..." for names a model lacks. A keyword written as a list (`"tensors":
 * ["embeddings"]` in a recipe) is read as a tensor name, as a tensor may be named so: the message
 * says how to write the keyword.
 */
export function unknownTensorNames(missing: readonly string[], keywords: readonly string[], known?: readonly string[]): string {
  const kw = missing.filter((m) => keywords.includes(m));
  const hint = kw.length ? `; a list holds tensor names: for the keyword write "tensors": "${kw[0]}", not ["${kw[0]}"]` : '';
  const list = known && known.length <= 40 ? ` (tensors: ${known.join(', ')})` : '';
  return `no tensor named ${missing.map((m) => `"${m}"`).join(', ')}${hint}${hint ? '' : list}`;
}

const tensorsOrNames = (keywords: readonly string[], what: string, dflt: string): EitherSpec => ({
  kind: 'either',
  options: [{ kind: 'enum', choices: keywords }, { kind: 'list', items: { kind: 'string' }, minItems: 1 }],
  description: `Which tensors: ${what}, or a list of tensor names.`,
  default: dflt,
});
const keepOrSparsity = (what: string): Record<string, SettingSpec> => ({
  keep: fraction(`Fraction of the ${what} kept (give keep or sparsity).`),
  sparsity: fraction(`Fraction of the ${what} removed (give keep or sparsity).`),
});
const KEEP_OR_SPARSITY: readonly ExclusiveGroup[] = [{ keys: ['keep', 'sparsity'], required: true }];

const pruneMagnitudeFields: Record<string, SettingSpec> = {
  sparsity: fraction('Fraction of the chosen weights set to zero.', { required: true }),
  scope: choice(['global', 'layer'], "'global': one |w| threshold over all chosen tensors; 'layer': every tensor pruned to its own sparsity.", { default: 'global' }),
  perLayer: { kind: 'map', values: { kind: 'number', min: 0, max: 1 }, description: "Sparsity by tensor or layer name (with scope 'layer')." },
  tensors: tensorsOrNames(['embeddings+dense'], "'embeddings+dense' (embedding tables and dense kernels)", 'embeddings+dense'),
  granularity: choice(['element', 'column'], "'element': single weights; 'column': whole embedding dimensions of the chosen tables.", { default: 'element' }),
};

const trainingFields = (defaults: { epochs: number; lr: number }): Record<string, SettingSpec> => ({
  data: text('Interactions CSV (user,item[,label][,timestamp][,fields]) to train on.', true),
  epochs: count('Training epochs.', { default: defaults.epochs }),
  batchSize: count('Rows per batch.', { default: 512 }),
  lr: { kind: 'number', min: 0, exclusiveMin: true, default: defaults.lr, description: 'Learning rate (Adam).' },
  negatives: count('Sampled negatives per positive when the data has only positives.', { default: 4, min: 0 }),
  seed: count('Seed of the sampling and initialisation.', { default: 7, min: 0 }),
  candidates: text('Leave-one-out candidates CSV: HR/NDCG@k before and after go into the notes.'),
  k: count('The k of HR@k and NDCG@k on the candidates.', { default: 10 }),
  samplePruning: {
    kind: 'object',
    description: "After the warm-up, train on the hardest 'keep' fraction of the rows.",
    fields: {
      keep: fraction('Fraction of the training rows kept after the warm-up.', { required: true, exclusiveMin: true }),
      by: choice(['loss', 'gradnorm'], 'How rows are scored.', { default: 'loss' }),
      warmupEpochs: count('Epochs on all rows before scoring.', { default: 1 }),
    },
  },
  outputKind: choice(['auto', 'probability', 'logit', 'rating'], "What the model's output is (picks the loss); 'auto' reads the graph, else the scores on the data.", { default: 'auto' }),
  engine: choice(['auto', 'compiled', 'tape'], "Training engine: 'auto' (compiled when the graph and backend allow), 'compiled' or 'tape'.", { default: 'auto' }),
});

const scheduledPruning = (epochsKey: 'rampEpochs' | 'regrowEpochs', description: string, epochsText: string): ObjectSpec => ({
  kind: 'object',
  description,
  fields: {
    prune: { kind: 'object', fields: pruneMagnitudeFields, required: true, description: 'The magnitude pruning (as prune-magnitude settings).' },
    [epochsKey]: count(epochsText, { min: epochsKey === 'rampEpochs' ? 0 : 1, required: true }),
    frequency: count('Optimizer steps between two mask updates.', { default: 100 }),
  },
});

const gradual = scheduledPruning('rampEpochs', 'Magnitude pruning that ramps up during this training (TFMOT-style).', 'Epochs of the ramp; 0 prunes to the targets before the first step.');
const dynamic = scheduledPruning('regrowEpochs', 'Magnitude pruning held at its target while pruned weights learn in a shadow copy and the masks may change.', 'Epochs during which the masks are chosen again; then fixed.');

/** Every method's declaration (the run half is in registry.ts). */
export const METHOD_SETTINGS: { readonly [M in CompressMethod]: MethodSettingsDeclaration<MethodSettingsMap[M]> } = {
  'prune-magnitude': {
    name: 'prune-magnitude',
    title: 'Magnitude (unstructured weights)',
    description: 'Zero the smallest |w| of embedding tables and dense kernels: a smaller gzip size, the same raw size and speed.',
    settings: pruneMagnitudeFields,
  },
  'prune-rows': {
    name: 'prune-rows',
    title: 'Embedding rows (structured)',
    description: 'Remove the weakest ids of each table (lowest row norm or count); removed ids share one fallback row, and the file gets smaller.',
    settings: {
      table: text('The table (tensor or layer name); default every embedding table.'),
      ...keepOrSparsity('rows'),
      importance: {
        kind: 'either',
        options: [
          { kind: 'enum', choices: ['norm'] },
          { kind: 'object', fields: { counts: { kind: 'list', items: { kind: 'number', min: 0 }, minItems: 1, required: true, description: 'One count per row of the table.' } } },
        ],
        description: "Row importance: 'norm' (row L2 norm) or { \"counts\": [...] }, id frequencies on a dataset, one per row.",
        default: 'norm',
      },
      fallback: choice(['mean', 'zero'], "The row removed ids share: the 'mean' of the removed rows or 'zero'.", { default: 'mean' }),
    },
    exclusive: KEEP_OR_SPARSITY,
  },
  'prune-dims': {
    name: 'prune-dims',
    title: 'Embedding dimensions (structured)',
    description: 'Remove the weakest columns of the embedding tables and shrink the layers that read them.',
    settings: { ...keepOrSparsity('columns'), table: text('The table (tensor or layer name); default every table whose columns can be followed.') },
    exclusive: KEEP_OR_SPARSITY,
  },
  'prune-neurons': {
    name: 'prune-neurons',
    title: 'Dense neurons (structured)',
    description: 'Remove the weakest neurons of hidden dense layers and the inputs they feed.',
    settings: {
      ...keepOrSparsity("neurons of each layer"),
      layers: names('Dense layers to prune; default every hidden dense layer whose outputs can be followed.'),
      importance: choice(['l2', 'l2xnext'], "'l2': norm of a neuron's incoming weights and bias; 'l2xnext': that times the norm of its outgoing weights.", { default: 'l2' }),
    },
    exclusive: KEEP_OR_SPARSITY,
  },
  'prune-fields': {
    name: 'prune-fields',
    title: 'Input fields (DeepFM-style)',
    description: 'Remove named feature fields, or the ones that matter least by permutation importance on an interactions CSV.',
    settings: {
      fields: {
        kind: 'either',
        required: true,
        description: 'Field names (or column numbers as strings) to remove, or { "drop", "data" } to remove the weakest share of the fields.',
        options: [
          names('Field names.'),
          {
            kind: 'object',
            fields: {
              drop: fraction('Share of the fields removed.', { required: true, exclusiveMin: true, exclusiveMax: true }),
              data: text('Labelled CSV the importance is measured on.', true),
              metric: choice(['auc', 'logloss'], 'Metric of the permutation importance.', { default: 'auc' }),
              repeats: count('Shuffles per field.', { default: 3 }),
              seed: count('Seed of the shuffles.', { default: 1, min: 0 }),
            },
          },
        ],
      },
      compensate: { kind: 'boolean', default: true, description: "Fold the removed fields' mean embedding into the next dense bias." },
    },
  },
  quantize: {
    name: 'quantize',
    title: 'Quantization',
    description: 'Store weights in fewer bits: int8 / int4 / int3 / int2 with scales, float16, or TF.js uint8 / uint16 manifest quantization.',
    settings: {
      dtype: choice(['int8', 'int4', 'int3', 'int2', 'float16', 'uint8', 'uint16'], 'Storage type (uint8 / uint16: TF.js manifest quantization).', { required: true }),
      tensors: tensorsOrNames(['all', 'embeddings', 'dense'], "'all' (embedding tables and dense kernels, plus other float weights where the format allows), 'embeddings', 'dense'", 'all'),
      reduceRange: { kind: 'boolean', default: true, description: 'ONNX int8 dense kernels: 7-bit weights, so that x64 CPUs without VNNI cannot overflow.' },
      dense: choice(['weights-only', 'dynamic'], "ONNX int8 dense kernels: 'weights-only' (dequantized for the float MatMul) or 'dynamic' (integer MatMul).", { default: 'weights-only' }),
      lookup: choice(['compact', 'fast'], "ONNX int8 tables: 'compact' (float16 row scales) or 'fast' (float32 scales, one DequantizeLinear).", { default: 'compact' }),
      scales: choice(['row', 'byte', 'column'], "ONNX int4/int3/int2 tables: a float16 scale and uint8 zero point per 'row'; one 'byte' per row (its zero point and one of the table's shared scale levels: 2 bytes less per row, about the same total error); or one per 'column' for the whole table (3 bytes less per row; tables under 8 wide always per column).", { default: 'row' }),
      rounding: choice(
        ['nearest', 'output-aware'],
        "ONNX int4/int3/int2 tables: each value to its nearest code ('nearest'), or each row's codes chosen with error feedback so that the score moves least ('output-aware', measured on calibration pairs; the same size).",
        { default: 'nearest' },
      ),
      calibration: text("Output-aware rounding: a CSV of user,item[,fields] pairs (validation candidates or training interactions) on which the score's sensitivity to each table is measured; default random user x item pairs (a model with a fields input needs the file)."),
      verify: { kind: 'boolean', default: true, description: 'Run both models on the same generated inputs (a compress job compares them itself: off there unless asked).' },
      verifyRows: count('Rows for the check.', { default: 256 }),
      fromShards: names('ONNX int8: shard files of `quantize --shard I/N` (all N) whose table codes and scales are used instead of computed; the model is the same, byte for byte.'),
    },
    // a job compares the models itself after writing: the method's own check would run them twice
    jobDefaults: { verify: false },
  },
  factorize: {
    name: 'factorize',
    title: 'Low-rank factorization',
    description: 'Replace embedding tables and dense kernels by two thin factors (truncated SVD) where that saves parameters.',
    settings: {
      rank: count('The rank kept (with energy: the largest rank allowed).'),
      energy: fraction('Keep the smallest rank whose σ² sum reaches this share of the total; default 0.95 when no rank is given.', { exclusiveMin: true }),
      tensors: tensorsOrNames(['all', 'embeddings', 'dense'], "'all' (embedding tables and dense kernels), 'embeddings', 'dense'", 'all'),
      minSaving: { kind: 'number', max: 1, exclusiveMax: true, default: 0.1, description: 'Factorize a tensor only when the factors save at least this share of its parameters (negative: even when larger).' },
      fold: { kind: 'boolean', default: true, description: "Fold a factorized table's projection into the dense layers that read its vectors through concatenation only (no projection op, fewer parameters); off: the projection stays an op of its own." },
    },
  },
  distill: {
    name: 'distill',
    title: 'Knowledge distillation',
    description: "Train a smaller student of the teacher's kind on the interactions and the teacher's soft scores.",
    settings: {
      ...trainingFields({ epochs: 8, lr: 0.005 }),
      studentDim: count('Embedding width of the student (instead of ratio).'),
      ratio: { kind: 'number', min: 1, description: 'Teacher parameters / student parameters, at least; default 8 (ignored when studentDim is given).' },
      hidden: { kind: 'list', items: { kind: 'integer', min: 1 }, description: "Hidden layer widths of the student; default the teacher's, scaled." },
      gmfDim: count('NeuMF students: the GMF embedding width.'),
      mlpDim: count('NeuMF students: the MLP embedding width.'),
      alpha: fraction("Weight of the teacher's soft targets.", { default: 0.7 }),
      temperature: { kind: 'number', min: 0, exclusiveMin: true, default: 1, description: 'Softening temperature of the teacher scores.' },
    },
  },
  finetune: {
    name: 'finetune',
    title: 'Fine-tuning',
    description: 'Train the model further on an interactions CSV, keeping pruned zeros at zero, or pruning while it trains.',
    settings: {
      ...trainingFields({ epochs: 2, lr: 0.001 }),
      masks: choice(['keep-zeros', 'none'], "'keep-zeros': exact zeros stay zero (default when the model has them); 'none': all weights train."),
      gradual,
      dynamic,
      teacher: text("A model (usually the original of this compressed one) whose scores are soft targets, as in distillation; its output must be of this model's kind."),
      alpha: fraction("Weight of the teacher's soft targets (with a teacher; default 0.7)."),
      temperature: { kind: 'number', min: 0, exclusiveMin: true, description: "Softening temperature of the teacher's scores (with a teacher; default 1)." },
      quantAware: {
        kind: 'object',
        description: 'ONNX: train the embedding tables through the rounding of a low-bit dtype (fake quantization, straight-through gradient), for a quantize step of the same dtype and scales after.',
        fields: {
          dtype: choice(['int4', 'int3', 'int2'], 'The dtype the tables will be stored in.', { required: true }),
          scales: choice(['row', 'column'], "The layout 'quantize' will store: a scale per row, or per column (tables under 8 wide are per column either way).", { default: 'row' }),
        },
      },
    },
    exclusive: [{ keys: ['samplePruning', 'gradual', 'dynamic'] }, { keys: ['quantAware', 'gradual', 'dynamic'] }],
  },
};

// ---------------- what everyone calls ----------------

export function isCompressMethod(x: unknown): x is CompressMethod {
  return typeof x === 'string' && Object.hasOwn(METHOD_SETTINGS, x);
}

/** A method's settings as one object spec. */
export function settingsSpec(method: CompressMethod): ObjectSpec {
  const d = METHOD_SETTINGS[method];
  return { kind: 'object', fields: d.settings, exclusive: d.exclusive };
}

export interface SettingsCheck<S> {
  /** the settings with defaults filled in; meaningful only without problems */
  settings: S;
  problems: SettingsProblem[];
}

/** Checks raw settings (undefined = {}) against a method's spec: types, ranges, choices, unknown, required and exclusive keys. */
export function validateSettings<M extends CompressMethod>(method: M, raw: unknown): SettingsCheck<MethodSettingsMap[M]> {
  if (!isCompressMethod(method)) {
    return { settings: {} as MethodSettingsMap[M], problems: [{ path: '', message: `unknown method ${quote(String(method))}; one of ${COMPRESS_METHODS.join(', ')}` }] };
  }
  const problems: SettingsProblem[] = [];
  const settings = checkValue(settingsSpec(method), raw ?? {}, '', problems) as MethodSettingsMap[M];
  return { settings, problems };
}

/** "path: message; path: message" ("" paths: the message alone). */
export function formatSettingsProblems(problems: readonly SettingsProblem[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
}

export class SettingsError extends Error {
  constructor(
    readonly method: string,
    readonly problems: SettingsProblem[],
  ) {
    super(`${method} settings: ${formatSettingsProblems(problems)}`);
    this.name = 'SettingsError';
  }
}

/** The checked settings with defaults filled in; throws SettingsError naming every bad setting. */
export function checkedSettings<M extends CompressMethod>(method: M, raw: unknown): MethodSettingsMap[M] {
  const r = validateSettings(method, raw);
  if (r.problems.length > 0) throw new SettingsError(String(method), r.problems);
  return r.settings;
}

/** The JSON Schema of a method's settings (recipes, editor completion). */
export function settingsJsonSchema(method: CompressMethod): JsonSchema {
  const d = METHOD_SETTINGS[method];
  return { title: d.title, ...specJsonSchema({ ...settingsSpec(method), description: d.description }) };
}

export interface SettingDescription {
  key: string;
  /** what it accepts, in words */
  accepts: string;
  description: string;
  required: boolean;
  default?: unknown;
}

export interface MethodDescription {
  name: CompressMethod;
  title: string;
  description: string;
  settings: SettingDescription[];
  /** e.g. "give exactly one of keep, sparsity" */
  rules: string[];
}

/** Every method with its settings in words, in COMPRESS_METHODS order (help, dialogs). */
export function describeMethods(): MethodDescription[] {
  return COMPRESS_METHODS.map((name) => {
    const d = METHOD_SETTINGS[name];
    return {
      name,
      title: d.title,
      description: d.description,
      settings: Object.entries(d.settings).map(([key, s]) => ({
        key,
        accepts: describeSpec(s),
        description: s.description ?? '',
        required: s.required === true,
        ...(s.default !== undefined ? { default: s.default } : {}),
      })),
      rules: (d.exclusive ?? []).map((g) => `give ${g.required ? 'exactly' : 'at most'} one of ${g.keys.join(', ')}`),
    };
  });
}
