// Which model input takes user ids, which item ids, which the `fields` matrix (DeepFM-like
// single-input models). Shared by the ORT and TF.js runners so both bind the same way.

export type InputRole = 'user' | 'item' | 'fields';

export interface ScoreBatch {
  user: Int32Array;
  item: Int32Array;
  /** row-major [rows, F] field ids (user, item, then extra fields), for `fields` inputs */
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
  for (const i of inputs) {
    if (!roles.has(i.name)) {
      throw new Error(`${what}: cannot tell what input '${i.name}' takes (inputs: ${names.join(', ')}); name it with --user-input / --item-input / --fields-input`);
    }
  }
  const r = taken();
  if (!r.has('fields') && !(r.has('user') && r.has('item'))) {
    throw new Error(`${what}: needs a user and an item input, or a fields input (inputs: ${names.join(', ')})`);
  }
  return roles;
}

/** The ids of `role` for rows [start, end): a subarray of the batch (no copy). */
export function idsFor(role: InputRole, batch: ScoreBatch, start: number, end: number, fieldCount: number): Int32Array {
  if (role === 'user') return batch.user.subarray(start, end);
  if (role === 'item') return batch.item.subarray(start, end);
  if (!batch.fields) throw new Error('the model takes a fields input but the data has no field columns');
  return batch.fields.subarray(start * fieldCount, end * fieldCount);
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
