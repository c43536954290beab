// Which model input takes user ids, which item ids, which the `fields` matrix (DeepFM-like
// single-input models), and which one column of the data each (a DeepFM exported with one input
// per field: user, item, genre, year). Shared by the ORT and TF.js runners so both bind the same way.

/** 'column': an id input of its own, fed from the data column named like it */
export type InputRole = 'user' | 'item' | 'fields' | 'column';

export interface ScoreBatch {
  user: Int32Array;
  item: Int32Array;
  /**
   * row-major [rows, F] field ids (user, item, then extra fields), for a `fields` input; for
   * `column` inputs, user, item, then those inputs' columns in their order (columnInputs)
   */
  fields?: Int32Array;
}

export interface InputNameOptions {
  /** explicit input names (flags --user-input / --item-input / --fields-input) */
  userInput?: string;
  itemInput?: string;
  fieldsInput?: string;
}

export interface ModelInputInfo {
  name: string;
  /** dims; -1 or a string for unknown / symbolic */
  shape: Array<number | string>;
}

/**
 * Role per input. Explicit names first; then exact `user`/`user_id`, `item`/`item_id`,
 * `fields`; then names containing user / item / field; then a single input with a fixed second
 * dim > 1 is `fields`. Throws naming the input that nothing matches.
 */
export function bindInputs(inputs: ModelInputInfo[], opts: InputNameOptions, what: string): Map<string, InputRole> {
  const roles = new Map<string, InputRole>();
  const names = inputs.map((i) => i.name);
  const explicit: Array<[string | undefined, InputRole]> = [
    [opts.userInput, 'user'],
    [opts.itemInput, 'item'],
    [opts.fieldsInput, 'fields'],
  ];
  for (const [name, role] of explicit) {
    if (name === undefined) continue;
    if (!names.includes(name)) throw new Error(`${what} has no input '${name}' (inputs: ${names.join(', ')})`);
    roles.set(name, role);
  }
  const taken = () => new Set(roles.values());
  const rules: Array<[InputRole, (n: string) => boolean]> = [
    ['user', (n) => n === 'user' || n === 'user_id' || n === 'userid' || n === 'users'],
    ['item', (n) => n === 'item' || n === 'item_id' || n === 'itemid' || n === 'items'],
    ['fields', (n) => n === 'fields' || n === 'features'],
    ['user', (n) => n.includes('user')],
    ['item', (n) => n.includes('item')],
    ['fields', (n) => n.includes('field')],
  ];
  for (const [role, match] of rules) {
    if (taken().has(role)) continue;
    const hit = inputs.find((i) => !roles.has(i.name) && match(i.name.toLowerCase()));
    if (hit) roles.set(hit.name, role);
  }
  if (inputs.length === 1 && roles.size === 0) {
    const d = inputs[0].shape[1];
    if (inputs[0].shape.length === 2 && typeof d === 'number' && d > 1) roles.set(inputs[0].name, 'fields');
  }
  // with user and item bound, another input of one id per row reads the data column of its name
  const userItem = taken().has('user') && taken().has('item') && !taken().has('fields');
  for (const i of inputs) {
    if (roles.has(i.name)) continue;
    const perRow = i.shape.length === 1 || (i.shape.length === 2 && (i.shape[1] === 1 || typeof i.shape[1] !== 'number'));
    if (userItem && perRow) roles.set(i.name, 'column');
    else {
      throw new Error(
        `${what}: cannot tell what input '${i.name}' takes (inputs: ${names.join(', ')}): ` +
          (userItem ? `it is not one id per row (shape [${i.shape.join(', ')}])` : "name its user and item inputs or its fields input (eval and bench take --user-input / --item-input / --fields-input; an export can name them 'user' and 'item')"),
      );
    }
  }
  const r = taken();
  if (!r.has('fields') && !(r.has('user') && r.has('item'))) {
    throw new Error(`${what}: needs a user and an item input, or a fields input (inputs: ${names.join(', ')})`);
  }
  return roles;
}

/** The inputs that each read one data column, in input order: column k of them is field 2 + k of the batch. */
export function columnInputs(inputs: Array<{ name: string; role: InputRole }>): string[] {
  return inputs.filter((i) => i.role === 'column').map((i) => i.name);
}

/** Which extra data columns to read for these bound inputs: all (a fields input), the column inputs' names, or none. */
export function extraColumnsFor(inputs: Array<{ name: string; role: InputRole }>): 'all' | string[] | undefined {
  if (inputs.some((i) => i.role === 'fields')) return 'all';
  const cols = columnInputs(inputs);
  return cols.length > 0 ? cols : undefined;
}

/**
 * The ids of `role` for rows [start, end): a subarray of the batch (no copy), or for a `column`
 * input (field `field` of the batch's fields) a copy of that column.
 */
export function idsFor(role: InputRole, batch: ScoreBatch, start: number, end: number, fieldCount: number, field = -1): Int32Array {
  if (role === 'user') return batch.user.subarray(start, end);
  if (role === 'item') return batch.item.subarray(start, end);
  if (!batch.fields) throw new Error(`the model takes ${role === 'fields' ? 'a fields input' : 'an input per field'} but the data has no field columns`);
  if (role === 'fields') return batch.fields.subarray(start * fieldCount, end * fieldCount);
  if (!(field >= 2 && field < fieldCount)) throw new Error(`column input: field ${field} is outside the batch's ${fieldCount} fields`);
  const out = new Int32Array(end - start);
  for (let r = start; r < end; r++) out[r - start] = batch.fields[r * fieldCount + field];
  return out;
}

/** The field count of a `fields` batch, checked against the model's fixed dim when known. */
export function fieldCountOf(batch: ScoreBatch, modelDim: number | string | undefined, what: string): number {
  const n = batch.user.length;
  if (!batch.fields) throw new Error(`${what} takes a fields input but the data has no field columns`);
  const F = n > 0 ? batch.fields.length / n : typeof modelDim === 'number' ? modelDim : 0;
  if (!Number.isInteger(F)) throw new Error(`fields: ${batch.fields.length} values are not a multiple of ${n} rows`);
  if (typeof modelDim === 'number' && modelDim > 0 && n > 0 && F !== modelDim) {
    throw new Error(`${what} takes ${modelDim} fields per row but the data has ${F} (user, item and ${F - 2} extra columns)`);
  }
  return F;
}
