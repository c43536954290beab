// Interaction data shaped for training: the table read from a CSV, batches of model inputs, and
// the per-epoch sampler (negatives redrawn every epoch for implicit data).

import { ModelFileError, type ModelIR } from '../../model/ir.js';
import { fieldColumns } from '../../model/field-columns.js';
import { modelVocab } from '../../eval/evaluate.js';
import type { Rng } from '../../samples/prng.js';
import { readInteractions } from '../../eval/interactions.js';
import type { OutputKind } from './output-kind.js';
import { columnFeedNames, inputFeedsOf } from './input-feed.js';

/** Rows of an interactions CSV, in columns. */
export interface InteractionTable {
  file: string;
  user: Int32Array;
  item: Int32Array;
  label: Float32Array;
  /** row-major [rows, extraNames.length]: integer columns other than user/item/label/rating/timestamp, in file order */
  extra: Int32Array;
  extraNames: string[];
  /** true when the file has no 0 labels (only positives, or ratings): negatives must be sampled */
  implicit: boolean;
  /** the rating column's values, when the file has ratings (rating models train on them; others take them as positives) */
  rating?: Float32Array;
  /** the rating column taken as implicit positives (every rated pair), when it was */
  ratingsAsPositives?: string;
}

/**
 * The note for ratings taken as implicit positives by a model that outputs a probability or a
 * logit: every rated pair became a positive, whatever its rating, and negatives were sampled.
 */
export function ratingsAsPositivesNote(table: Pick<InteractionTable, 'file' | 'ratingsAsPositives'>, kind: OutputKind): string[] {
  if (!table.ratingsAsPositives || kind === 'rating') return [];
  return [
    `${table.file}: its '${table.ratingsAsPositives}' column holds ratings, and this model outputs a ${kind}: every rated pair was trained as a positive (implicit feedback, the NCF convention) and negatives were sampled. For explicit negatives give a 0/1 label column.`,
  ];
}

/**
 * The note for sampled negatives asked for (`negatives` given) on data that has its own: they are
 * not drawn, and the user should know the setting did nothing.
 */
export function unusedNegativesNote(table: Pick<InteractionTable, 'file' | 'implicit'>, asked: number | undefined): string[] {
  if (asked === undefined || table.implicit) return [];
  return [`negatives ${asked} was not used: ${table.file} has its own negatives (rows labelled 0), so its rows were trained as they are.`];
}

/**
 * Reads `user,item[,label|rating][,timestamp][,extra...]` with the evaluation's streaming reader
 * (delimiter sniffed, errors name the line) and shapes it for training. Ratings are taken as
 * implicit positives (the NCF convention); a 0/1 label column with zeros gives explicit negatives.
 * With `model`, ids are checked against its tables while reading (an error names the line) and
 * DeepFM field columns are read in the order its fields input takes them (by name).
 */
export async function readInteractionTable(
  file: string,
  opts: { userColumn?: string; itemColumn?: string; model?: ModelIR; /** refuse labels with no positive: nothing to learn from */ training?: boolean } = {},
): Promise<InteractionTable> {
  const vocab = opts.model ? modelVocab(opts.model) : undefined;
  // extra columns feed a fields input (DeepFM); a model without one ignores them (a title, a
  // genre name), as evaluation does. A model whose inputs are not known reads them.
  // An input per field reads the column of its name, in input order.
  const inputs = opts.model?.graph.inputs.filter((i) => !opts.model!.tensors.some((t) => t.name === i.name)) ?? [];
  const feeds = inputFeedsOf(inputs);
  const takesFields = inputs.length === 0 || feeds.some((f) => f?.kind === 'fields');
  const columns = columnFeedNames(feeds);
  const t = await readInteractions(file, {
    columns: { user: opts.userColumn, item: opts.itemColumn },
    extraColumns: takesFields ? 'all' : columns.length > 0 ? columns : undefined,
    ...(vocab && opts.model
      ? { userVocab: vocab.user, itemVocab: vocab.item, extraVocabOf: (c: string) => vocab.ofColumn(c), fieldColumns: fieldColumns(opts.model) }
      : {}),
  });
  const n = t.rows;
  const label = new Float32Array(n);
  let implicit = true;
  // a "rating" column that holds only 0 and 1 is a label column by another name
  const zeroOneRatings = t.label !== undefined && t.labelKind === 'rating' && t.label.every((v) => v === 0 || v === 1) && t.label.some((v) => v === 0);
  if (t.label && (t.labelKind !== 'rating' || zeroOneRatings)) {
    for (let r = 0; r < n; r++) {
      const l = t.label[r];
      // the reader counts lines from 1 with the header first: data row r is on line r + 2
      if (!(l >= 0 && l <= 1)) throw new ModelFileError(file, `line ${r + 2}: ${t.labelColumn} '${l}' is not in [0, 1]`);
      label[r] = l;
      if (l === 0) implicit = false;
    }
    if (opts.training && !label.some((l) => l > 0)) throw new ModelFileError(file, `no positive row (every ${t.labelColumn} is 0): there is nothing to learn from`);
  } else {
    label.fill(1);
  }
  const rating = t.label && t.labelKind === 'rating' ? Float32Array.from(t.label) : undefined;
  const E = t.extra.length;
  const extra = new Int32Array(n * E);
  t.extra.forEach((col, e) => {
    for (let r = 0; r < n; r++) extra[r * E + e] = col.values[r];
  });
  const asPositives = rating && !zeroOneRatings ? { ratingsAsPositives: t.labelColumn } : {};
  return { file, user: t.user, item: t.item, label, extra, extraNames: t.extra.map((c) => c.name), implicit, ...(rating ? { rating } : {}), ...asPositives };
}

/** One batch of model inputs: ids, and all field columns (user, item, extras) when the model takes `fields`. */
export interface Batch {
  user: Int32Array;
  item: Int32Array;
  extra: Int32Array;
  extraCount: number;
  label: Float32Array;
}

/**
 * Training rows for one epoch: the table as is when it has explicit negatives; otherwise its
 * positives plus `negatives` sampled items per positive (uniform over the items seen, not a
 * positive of that user), redrawn every epoch. Extra columns of a negative come from the item
 * when the column is an item attribute in the data, from the user when it is a user attribute,
 * else from the positive's row.
 */
export class EpochSampler {
  private readonly positivesOf = new Map<number, Set<number>>();
  private readonly itemCount: number;
  private readonly itemAttr: Int32Array | undefined;
  private readonly userAttr: Int32Array | undefined;
  private readonly source: Int32Array[] = [];

  /**
   * `rows`: table rows to draw from (training-sample pruning: the kept subset); default all.
   * Negatives still avoid every positive of the user in the whole table, and come from all items.
   */
  constructor(private readonly table: InteractionTable, private readonly negatives: number, private readonly rows?: Int32Array) {
    let maxItem = 0;
    let maxUser = 0;
    for (let i = 0; i < table.item.length; i++) {
      maxItem = Math.max(maxItem, table.item[i]);
      maxUser = Math.max(maxUser, table.user[i]);
    }
    this.itemCount = maxItem + 1;
    if (!table.implicit) return;
    for (let i = 0; i < table.user.length; i++) {
      let s = this.positivesOf.get(table.user[i]);
      if (!s) this.positivesOf.set(table.user[i], (s = new Set()));
      s.add(table.item[i]);
    }
    const E = table.extraNames.length;
    if (E > 0) {
      // per column: 0 = item attribute, 1 = user attribute, 2 = per row
      const itemAttr = new Int32Array(this.itemCount * E).fill(-1);
      const userAttr = new Int32Array((maxUser + 1) * E).fill(-1);
      const kind = new Int32Array(E);
      for (let e = 0; e < E; e++) {
        let byItem = true;
        let byUser = true;
        for (let i = 0; i < table.user.length && (byItem || byUser); i++) {
          const v = table.extra[i * E + e];
          const a = table.item[i] * E + e;
          const b = table.user[i] * E + e;
          if (itemAttr[a] === -1) itemAttr[a] = v;
          else if (itemAttr[a] !== v) byItem = false;
          if (userAttr[b] === -1) userAttr[b] = v;
          else if (userAttr[b] !== v) byUser = false;
        }
        kind[e] = byItem ? 0 : byUser ? 1 : 2;
      }
      this.itemAttr = itemAttr;
      this.userAttr = userAttr;
      this.source.push(kind);
    }
  }

  /** rows per epoch */
  get size(): number {
    return this.table.implicit ? this.rowCount * (1 + this.negatives) : this.rowCount;
  }

  /** table rows per epoch (positives for implicit data) */
  get rowCount(): number {
    return this.rows ? this.rows.length : this.table.user.length;
  }

  /** rows per table row: 1 + negatives for implicit data, else 1 */
  get group(): number {
    return this.table.implicit ? 1 + this.negatives : 1;
  }

  /**
   * One epoch's rows. `shuffle` false (importance scoring): table row r's group (the row, then its
   * sampled negatives) is at [r * group, (r + 1) * group).
   */
  epoch(rng: Rng, shuffle = true): Batch {
    const t = this.table;
    const E = t.extraNames.length;
    const n = this.size;
    const out: Batch = { user: new Int32Array(n), item: new Int32Array(n), extra: new Int32Array(n * E), extraCount: E, label: new Float32Array(n) };
    let w = 0;
    const kind = this.source[0];
    const count = this.rowCount;
    for (let r = 0; r < count; r++) {
      const i = this.rows ? this.rows[r] : r;
      out.user[w] = t.user[i];
      out.item[w] = t.item[i];
      out.label[w] = t.label[i];
      out.extra.set(t.extra.subarray(i * E, i * E + E), w * E);
      w++;
      if (!t.implicit) continue;
      const pos = this.positivesOf.get(t.user[i])!;
      for (let k = 0; k < this.negatives; k++) {
        let neg = rng.int(this.itemCount);
        // a user with (almost) every item as positive: give up after a few tries
        for (let tries = 0; pos.has(neg) && tries < 50; tries++) neg = rng.int(this.itemCount);
        out.user[w] = t.user[i];
        out.item[w] = neg;
        out.label[w] = 0;
        for (let e = 0; e < E; e++) {
          const fromItem = this.itemAttr![neg * E + e];
          const v = kind[e] === 0 && fromItem >= 0 ? fromItem : kind[e] === 1 ? this.userAttr![t.user[i] * E + e] : t.extra[i * E + e];
          out.extra[w * E + e] = v;
        }
        w++;
      }
    }
    // shuffle in place (Fisher-Yates on all columns)
    for (let i = shuffle ? n - 1 : 0; i > 0; i--) {
      const j = rng.int(i + 1);
      swap(out.user, i, j);
      swap(out.item, i, j);
      swap(out.label, i, j);
      for (let e = 0; e < E; e++) swap(out.extra, i * E + e, j * E + e);
    }
    return out;
  }
}

function swap(a: Int32Array | Float32Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

export function sliceBatch(b: Batch, start: number, end: number): Batch {
  const E = b.extraCount;
  return {
    user: b.user.subarray(start, end),
    item: b.item.subarray(start, end),
    extra: b.extra.subarray(start * E, end * E),
    extraCount: E,
    label: b.label.subarray(start, end),
  };
}

export function tableAsBatch(t: InteractionTable): Batch {
  return { user: t.user, item: t.item, extra: t.extra, extraCount: t.extraNames.length, label: t.label };
}

/**
 * The table a model of output kind `kind` trains on: a rating model regresses the ratings (no
 * negatives are sampled); the others take the labels (ratings as implicit positives).
 */
export function trainingTable(t: InteractionTable, kind: OutputKind): InteractionTable {
  if (kind !== 'rating') return t;
  if (!t.rating) throw new ModelFileError(t.file, 'the model outputs a rating, but the data has no rating column to train it on');
  return { ...t, label: t.rating, implicit: false };
}
