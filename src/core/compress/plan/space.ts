// The compress-to-target search space, per tensor, and the order rules that turn a choice per
// tensor into the steps of a recipe. Both live here and nowhere else.
//
// Units: each embedding table alone (tables hold most of a recommender's bytes), the dense
// kernels together (small: a dtype, a low rank or fewer neurons for all), and a DeepFM-style
// model's fields (dropped by permutation importance on the training data, when given). Options
// per table: the storage dtype (float32 / float16 / int8 / int4 / int3 / int2 per row, int4 / int3
// / int2 with byte scales, "int4byte", or with per-column scales, "int4col", on ONNX; float16 /
// uint8 on TF.js, whose
// manifests have no 4-bit type), a low rank from the table's spectrum (energy kept), dims or rows
// pruning, and their combinations with a dtype.
//
// Order rules: fields first (a dropped field takes its tables with it), then neurons, rows, dims
// (they change shapes; rows are chosen on the full width), then low rank (factorize what stays),
// then fine-tuning (structure held; it cannot train integer weights), then quantization last (it
// stores what the steps before made).

import { subgraphLookups } from '../subgraph-lookups.js';
import type { ModelIR, ModelTensor } from '../../model/ir.js';
import { COLUMN_SCALES_MAX_BYTES, lowBitsOf, NARROW_TABLE_COLS, packsSmallerThanInt8 } from '../quantize-math.js';
import { scaleLevelCount } from '../../model/packed-codes.js';

export type StorageDtype = 'float32' | 'float16' | 'int8' | 'int4' | 'int3' | 'int2' | 'uint8';

export interface UnitOption {
  /** short label, unique within a unit: "int8", "r0.9+int4", "rows0.5+int8" */
  id: string;
  dtype: StorageDtype;
  /** factorize keeping this share of the spectrum's energy */
  energy?: number;
  /** keep this share of the table's rows (by frequency in the training data, else norm) */
  rowsKeep?: number;
  /** keep this share of the table's columns */
  dimsKeep?: number;
  /**
   * int4/int3/int2 with one scale and zero point per column instead of per row (id suffix "col"),
   * or one byte per row for its zero point and scale level (id suffix "byte", scale-levels.ts)
   */
  scales?: 'column' | 'byte';
  /** dense unit: keep this share of each hidden layer's neurons */
  neuronsKeep?: number;
  /** fields unit: drop this share of the input fields (weakest by permutation importance on the data) */
  fieldsDrop?: number;
}

export interface SearchUnit {
  /** the table's tensor name, 'dense' or 'fields' */
  name: string;
  kind: 'table' | 'dense' | 'fields';
  /** float32 bytes today (what the unit weighs before any option) */
  bytes: number;
  rows?: number;
  cols?: number;
  /** the tensors of a dense unit */
  tensors: string[];
  options: UnitOption[];
}

/** A choice of one option per unit (by unit name; missing = float32, unchanged). */
export type Assignment = Record<string, string>;

export interface SpaceOptions {
  /** labelled training data: DeepFM-style fields can be ranked on it (and dropped) */
  data?: string;
}

const ENERGIES = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5];
const LOW_BITS: StorageDtype[] = ['int4', 'int3', 'int2'];
const SHARES = [0.75, 0.5];

function optionId(o: Omit<UnitOption, 'id'>): string {
  const parts: string[] = [];
  if (o.fieldsDrop !== undefined) parts.push(`drop${o.fieldsDrop}`);
  if (o.neuronsKeep !== undefined) parts.push(`neurons${o.neuronsKeep}`);
  if (o.rowsKeep !== undefined) parts.push(`rows${o.rowsKeep}`);
  if (o.dimsKeep !== undefined) parts.push(`dims${o.dimsKeep}`);
  if (o.energy !== undefined) parts.push(`r${o.energy}`);
  if ((o.dtype !== 'float32' && o.fieldsDrop === undefined) || parts.length === 0) parts.push(o.fieldsDrop !== undefined ? 'none' : `${o.dtype}${layoutSuffix(o.scales)}`);
  return parts.join('+');
}

/** The id suffix of a low-bit layout: "col" (per column), "byte" (byte scales), "" (per row). */
export function layoutSuffix(scales: unknown): string {
  return scales === 'column' ? 'col' : scales === 'byte' ? 'byte' : '';
}

/** A stored form's dtype and layout: "int4col" -> int4 per column, "int3byte" -> int3 with byte scales. */
export function splitForm(form: string): { dtype: string; scales?: 'column' | 'byte' } {
  const m = /^(.*?)(col|byte)$/.exec(form);
  if (!m) return { dtype: form };
  return { dtype: m[1], scales: m[2] === 'col' ? 'column' : 'byte' };
}

function opt(o: Omit<UnitOption, 'id'>): UnitOption {
  return { id: optionId(o), ...o };
}

/** The dtypes a table can be stored in, for this format (TF.js: no integer rows, no 4 bits). */
export function tableDtypes(format: ModelIR['format']): StorageDtype[] {
  return format === 'onnx' ? ['float32', 'float16', 'int8', 'int4', 'int3', 'int2'] : ['float32', 'float16', 'uint8'];
}

function tableOptions(format: ModelIR['format'], t: ModelTensor): UnitOption[] {
  // a 2-wide table's int3 rows take 2 bytes, as int8's do: not offered (quantize would store int8)
  const dtypes = tableDtypes(format).filter((d) => {
    const bits = lowBitsOf(d);
    return bits === undefined || packsSmallerThanInt8(t.shape[1], bits);
  });
  const small = dtypes.filter((d) => d !== 'float32' && d !== 'float16' && d !== 'int2');
  const out = dtypes.map((dtype) => opt({ dtype }));
  const cols = t.shape[1];
  // per-column scales (3 bytes less per row) for tables wide enough to have per-row ones, and not
  // so big that fitting them per column would not fit in memory
  const columnScales = format === 'onnx' && cols >= NARROW_TABLE_COLS && t.shape[0] * cols * 4 <= COLUMN_SCALES_MAX_BYTES;
  if (columnScales) for (const dtype of LOW_BITS) out.push(opt({ dtype, scales: 'column' }));
  // byte scales (2 bytes less per row than per-row scales, about the same total error): a table
  // wide enough for per-row ones, with rows enough that the saving pays for the levels (4 bytes each)
  const byteScales = (dtype: StorageDtype) => format === 'onnx' && cols >= NARROW_TABLE_COLS && 2 * t.shape[0] > 4 * scaleLevelCount(lowBitsOf(dtype)!);
  for (const dtype of LOW_BITS) if (byteScales(dtype)) out.push(opt({ dtype, scales: 'byte' }));
  // narrow tables have too few columns to factorize; factors take 2 bits too (low-rank tables
  // that feed an MLP often lose nothing at 2 bits)
  if (cols >= 8) {
    const lowRank = dtypes.filter((d) => d !== 'float16');
    for (const energy of ENERGIES) {
      for (const dtype of lowRank) out.push(opt({ dtype, energy }));
      // a factor under NARROW_TABLE_COLS wide is per column anyway: quantizeSteps folds the two
      if (columnScales) for (const dtype of LOW_BITS.filter((d) => d !== 'int2')) out.push(opt({ dtype, energy, scales: 'column' }));
      // a factor is as wide as its rank: one at 70% of the energy or less is mostly under 8 wide, per column anyway
      if (byteScales('int4') && energy >= 0.8) out.push(opt({ dtype: 'int4', energy, scales: 'byte' }));
    }
  }
  for (const share of SHARES) {
    for (const dtype of small) {
      out.push(opt({ dtype, rowsKeep: share }));
      if (cols >= 4) out.push(opt({ dtype, dimsKeep: share }));
    }
  }
  return out;
}

/** A float32 table of two rows or more; a 1-wide one (a per-item bias, a narrow student's branch) takes int8 and row cuts. */
function isFloat32Table(t: ModelTensor): boolean {
  return t.role === 'embedding' && t.dtype === 'float32' && t.shape.length === 2 && t.shape[0] > 1 && t.shape[1] >= 1;
}

/** The units of a model and their options. Tables smaller than 1 KiB stay as they are. */
export function searchSpace(ir: ModelIR, opts: SpaceOptions = {}): SearchUnit[] {
  const units: SearchUnit[] = [];
  // tables read inside a subgraph (the Loop of an nn.EmbeddingBag export): quantization rewrites
  // row lookups one level down, the structural methods (rows, dims, low rank) do not; a table
  // read there otherwise stays as it is, so it is no unit
  const inSubgraphs = subgraphLookups(ir);
  for (const t of ir.tensors) {
    if (!isFloat32Table(t)) continue;
    const bytes = t.shape[0] * t.shape[1] * 4;
    if (bytes < 1024) continue;
    const readInSubgraph = inSubgraphs.reads.has(t.name);
    if (readInSubgraph && inSubgraphs.refusal(t.name) !== undefined) continue;
    // a table stored [dim, ids] (ONNX Gather on axis 1): the row methods rewrite lookups of rows only
    const all = tableOptions(ir.format, t);
    const options = t.transposed
      ? all.filter((o) => o.id === 'float32' || o.id === 'float16')
      : readInSubgraph
        ? all.filter((o) => o.energy === undefined && o.rowsKeep === undefined && o.dimsKeep === undefined)
        : all;
    units.push({ name: t.name, kind: 'table', bytes, rows: t.shape[t.transposed ? 1 : 0], cols: t.shape[t.transposed ? 0 : 1], tensors: [t.name], options });
  }
  const dense = ir.tensors.filter((t) => t.role === 'dense-kernel' && t.dtype === 'float32');
  const denseBytes = dense.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (dense.length > 0 && denseBytes >= 1024) {
    const dtypes: StorageDtype[] = ir.format === 'onnx' ? ['float32', 'float16', 'int8'] : ['float32', 'float16', 'uint8'];
    const options = dtypes.map((dtype) => opt({ dtype }));
    for (const dtype of dtypes.filter((d) => d !== 'float16')) {
      for (const energy of [0.9, 0.7]) options.push(opt({ dtype, energy }));
      for (const neuronsKeep of SHARES) options.push(opt({ dtype, neuronsKeep }));
    }
    units.push({ name: 'dense', kind: 'dense', bytes: denseBytes, tensors: dense.map((t) => t.name), options });
  }
  if (opts.data && hasFieldsInput(ir)) {
    // shares that remove at least one of the F fields (prune-fields rounds down): 0.2 of 4 removes none
    const F = ir.graph.inputs[0].shape![1] as number;
    const drops = [0.2, 0.4].filter((d) => Math.floor(d * F + 1e-9) >= 1);
    if (drops.length) units.unshift({ name: 'fields', kind: 'fields', bytes: 0, tensors: [], options: [opt({ dtype: 'float32' }), ...drops.map((fieldsDrop) => opt({ dtype: 'float32', fieldsDrop }))] });
  }
  return units;
}

/** One input of shape [batch, F > 1] holding every field's id (DeepFM-style). */
function hasFieldsInput(ir: ModelIR): boolean {
  const ins = ir.graph.inputs;
  return ins.length === 1 && ins[0].shape?.length === 2 && typeof ins[0].shape[1] === 'number' && ins[0].shape[1] > 1;
}

export function optionOf(unit: SearchUnit, a: Assignment): UnitOption {
  const id = a[unit.name];
  const o = id === undefined ? unit.options[0] : unit.options.find((x) => x.id === id);
  if (!o) throw new Error(`unit ${unit.name} has no option ${id}`);
  return o;
}

/** A stable key of an assignment (units in space order, float32 units left out). */
export function assignmentKey(units: readonly SearchUnit[], a: Assignment): string {
  return units
    .map((u) => [u.name, optionOf(u, a).id] as const)
    .filter(([, id]) => id !== 'float32')
    .map(([n, id]) => `${n}=${id}`)
    .join(' ') || 'original';
}

/**
 * assignmentKey as the quantization steps store it: a table (or its low-rank lookup factor) too
 * narrow to pack its low-bit dtype smaller than int8 rows is stored int8 (quantizeSteps), and
 * its part of the key says int8, so that a label names what the file holds.
 */
export function storedAssignmentKey(units: readonly SearchUnit[], a: Assignment, steps: readonly PlanStep[]): string {
  const storedAs = new Map<string, string>();
  for (const s of steps) {
    if (s.method !== 'quantize') continue;
    const form = `${String(s.settings.dtype)}${layoutSuffix(s.settings.scales)}`;
    for (const t of (s.settings.tensors as string[] | undefined) ?? []) storedAs.set(t, form);
  }
  return units
    .map((u) => {
      const id = optionOf(u, a).id;
      const form = u.kind === 'table' ? storedAs.get(u.name) ?? storedAs.get(`${u.name}_lowrank`) : undefined;
      const parts = id.split('+');
      const last = parts[parts.length - 1];
      // a narrow factor's "int4" step is per column too: only a change of dtype is a change of label
      const dtypeOf = (x: string) => splitForm(x).dtype;
      if (form && /^(int[2348]|uint8|float16)(col|byte)?$/.test(last) && dtypeOf(last) !== dtypeOf(form)) parts[parts.length - 1] = form;
      return [u.name, parts.join('+')] as const;
    })
    .filter(([, id]) => id !== 'float32')
    .map(([n, id]) => `${n}=${id}`)
    .join(' ') || 'original';
}

/** One step of a recipe, as the job runner and `prunescope run` read it. */
export interface PlanStep {
  method: 'prune-fields' | 'prune-neurons' | 'prune-rows' | 'prune-dims' | 'factorize' | 'finetune' | 'distill' | 'quantize';
  settings: Record<string, unknown>;
}

/**
 * The structural steps of an assignment, in the order rules' order: rows, dims, low rank. The
 * quantization steps depend on the tensor names these steps leave and are built by
 * `quantizeSteps` from the model they produce.
 */
export function structuralSteps(units: readonly SearchUnit[], a: Assignment, rowCounts?: (table: string) => number[] | undefined, fieldsData?: string): PlanStep[] {
  const steps: PlanStep[] = [];
  const tables = units.filter((u) => u.kind === 'table');
  const fields = units.find((u) => u.kind === 'fields');
  const drop = fields ? optionOf(fields, a).fieldsDrop : undefined;
  if (drop !== undefined && fieldsData) steps.push({ method: 'prune-fields', settings: { fields: { drop, data: fieldsData } } });
  const dense = units.find((u) => u.kind === 'dense');
  const denseOption = dense ? optionOf(dense, a) : undefined;
  if (denseOption?.neuronsKeep !== undefined) steps.push({ method: 'prune-neurons', settings: { keep: denseOption.neuronsKeep } });
  for (const u of tables) {
    const o = optionOf(u, a);
    if (o.rowsKeep === undefined) continue;
    const counts = rowCounts?.(u.name);
    steps.push({ method: 'prune-rows', settings: { table: u.name, keep: o.rowsKeep, ...(counts ? { importance: { counts } } : {}) } });
  }
  for (const u of tables) {
    const o = optionOf(u, a);
    if (o.dimsKeep !== undefined) steps.push({ method: 'prune-dims', settings: { table: u.name, keep: o.dimsKeep } });
  }
  for (const u of tables) {
    const o = optionOf(u, a);
    if (o.energy !== undefined) steps.push({ method: 'factorize', settings: { tensors: [u.name], energy: o.energy } });
  }
  if (denseOption?.energy !== undefined) steps.push({ method: 'factorize', settings: { tensors: 'dense', energy: denseOption.energy } });
  return steps;
}

/** The table a structural step works on (prune-rows / prune-dims / one table's factorize). */
function stepTable(step: PlanStep): string | undefined {
  const s = step.settings;
  if (typeof s.table === 'string') return s.table;
  if (step.method === 'factorize' && Array.isArray(s.tensors) && s.tensors.length === 1) return String(s.tensors[0]);
  return undefined;
}

/**
 * The structural steps split where a field drop changes which tables exist: the field drop
 * first, then (given the model it leaves) the other steps on the tables that are still there.
 */
export function splitAtFieldDrop(steps: readonly PlanStep[]): { first: PlanStep[]; rest: (after: ModelIR) => PlanStep[] } {
  const first = steps.filter((s) => s.method === 'prune-fields');
  const others = steps.filter((s) => s.method !== 'prune-fields');
  return {
    first,
    rest: (after) => {
      const names = new Set(after.tensors.map((t) => t.name));
      return others.filter((s) => {
        const table = stepTable(s);
        return table === undefined || names.has(table);
      });
    },
  };
}

/**
 * The quantization steps, one per dtype, naming the tensors of the model the structural steps
 * left: a table's own tensor, or its low-rank factors (`<table>_lowrank` stays a table and takes
 * the table's dtype; the projection `<table>_proj` is a dense kernel: int8 under integer rows,
 * float16 under float16). `outputAware`: low-bit tables are rounded output-aware
 * (output-aware-rounding.ts: the same size, less error in the score), on these calibration pairs
 * (default random ones).
 */
export function quantizeSteps(units: readonly SearchUnit[], a: Assignment, structured: ModelIR, opts: { outputAware?: { calibration?: string } } = {}): PlanStep[] {
  // one step per dtype and scale layout: "int4", "int4byte" (byte scales) and "int4col" (per-column scales)
  const byDtype = new Map<string, string[]>();
  const add = (d: StorageDtype, name: string, scales?: 'column' | 'byte') => {
    if (d === 'float32') return;
    const key = `${d}${layoutSuffix(scales)}`;
    const list = byDtype.get(key) ?? [];
    if (!list.includes(name)) list.push(name);
    byDtype.set(key, list);
  };
  const owned = new Set<string>();
  for (const u of units) {
    if (u.kind !== 'table') continue;
    const o = optionOf(u, a);
    for (const t of structured.tensors) {
      if (t.name !== u.name && !t.name.startsWith(`${u.name}_`)) continue;
      if (t.dtype !== 'float32' || t.shape.length !== 2) continue;
      owned.add(t.name);
      // tables (a factor) under NARROW_TABLE_COLS wide are per column whatever the step says; one
      // too narrow to pack smaller than int8 rows (a 2-wide factor at int3) is int8, as quantize stores it
      const bits = lowBitsOf(o.dtype);
      const dtype = t.role === 'embedding' && bits !== undefined && t.shape[1] > 0 && !packsSmallerThanInt8(t.shape[1], bits) ? 'int8' : o.dtype;
      if (t.role === 'embedding') add(dtype, t.name, dtype !== 'int8' && t.shape[1] >= NARROW_TABLE_COLS ? o.scales : undefined);
      else if (t.role === 'dense-kernel') add(o.dtype === 'float16' ? 'float16' : o.dtype === 'float32' ? 'float32' : structured.format === 'onnx' ? 'int8' : 'uint8', t.name);
    }
  }
  const dense = units.find((u) => u.kind === 'dense');
  if (dense) {
    // the dense kernels the steps left (a low-rank layer's two factors included), tables' own aside
    const o = optionOf(dense, a);
    for (const t of structured.tensors) if (t.role === 'dense-kernel' && t.dtype === 'float32' && !owned.has(t.name)) add(o.dtype, t.name);
  }
  const order = ['int2', 'int2byte', 'int2col', 'int3', 'int3byte', 'int3col', 'int4', 'int4byte', 'int4col', 'int8', 'uint8', 'float16'];
  return order.filter((k) => byDtype.has(k)).map((k) => {
    const { dtype, scales } = splitForm(k);
    return {
      method: 'quantize' as const,
      settings: {
        dtype,
        tensors: byDtype.get(k)!,
        ...(scales ? { scales } : {}),
        // low-bit tables (int8 has no such form): codes chosen so that the score moves least
        ...(opts.outputAware && lowBitsOf(dtype) !== undefined ? { rounding: 'output-aware', ...(opts.outputAware.calibration ? { calibration: opts.outputAware.calibration } : {}) } : {}),
      },
    };
  });
}
