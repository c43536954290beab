// Interaction files (CSV or TSV with a header) read into typed columns, streaming: the file is
// split into lines chunk by chunk (no whole-file string, no per-line regex), numbers parsed by
// hand. Every error names the file and the line (1-based, the header is line 1).
//
// Columns: `user`, `item` (0-based embedding rows; other names via options, and the names other
// tools write are recognised: COLUMN_ALIASES), optional `label` or `rating`, `timestamp`, and
// extra integer columns (DeepFM fields beyond user and item, in file order) when asked for.

import * as fs from 'node:fs';
import { ioReason, ModelFileError } from '../model/ir.js';
import type { FieldColumns } from '../model/field-columns.js';

export interface InteractionColumnNames {
  /** default 'user', else the one column named like a user id (COLUMN_ALIASES) */
  user?: string;
  /** default 'item', else the one column named like an item id */
  item?: string;
  /** default 'label', then 'rating', else the one column named like a click label */
  label?: string;
  /** default 'timestamp', else the one column named like a time */
  timestamp?: string;
}

/**
 * Column names that other tools and public datasets write, compared with case, spaces, '-' and
 * '_' ignored: MovieLens' ratings.csv (userId, movieId, rating, timestamp), click logs (click),
 * pandas exports (user_id, item_id). A file with two columns that both fit one role is refused,
 * naming them: guessing could train on the wrong ids. No short or common word stands for the
 * timestamp ('time', 'ts' may be a DeepFM field, which must stay a field).
 */
export const COLUMN_ALIASES = {
  user: ['user', 'userid', 'uid', 'users', 'customerid', 'visitorid', 'sessionuser'],
  item: ['item', 'itemid', 'iid', 'items', 'movieid', 'movie', 'productid', 'product', 'articleid', 'videoid', 'songid', 'trackid', 'bookid'],
  label: ['label', 'click', 'clicked', 'isclick', 'clicklabel'],
  rating: ['rating', 'ratings', 'stars'],
  timestamp: ['timestamp', 'unixtime', 'unixtimestamp'],
} as const;

/** A header cell as COLUMN_ALIASES compares it. */
const normalizedColumn = (name: string): string => name.toLowerCase().replace(/[\s_\-.]/g, '');

export interface ReadInteractionsOptions {
  columns?: InteractionColumnNames;
  /**
   * Extra integer columns to read, in this order: 'all' = every column that is not user, item,
   * label/rating or timestamp, in file order; a list = those names. Default: none.
   */
  extraColumns?: 'all' | string[];
  /** embedding rows of the model: ids must be below these */
  userVocab?: number;
  itemVocab?: number;
  /** per extra column, its vocabulary (same order as the extra columns read) */
  extraVocab?: number[];
  /** the vocabulary of an extra column by name, when extraVocab is not given (undefined: unchecked) */
  extraVocabOf?: (column: string) => number | undefined;
  /**
   * With extraColumns 'all': which column of the model's fields input each file column feeds, by
   * its name (model/field-columns.ts). Named columns are read in the model's order, whatever their
   * order in the file; the others fill, in file order, the columns no table reads (a removed
   * field's). Where a column the model reads is left to an unnamed file column, or user / item
   * are not columns 0 / 1, the file is refused: feeding a column to the wrong field would give
   * wrong scores without an error.
   */
  fieldColumns?: FieldColumns;
  /** require a label (or rating) column */
  requireLabel?: boolean;
}

export interface InteractionTable {
  file: string;
  rows: number;
  delimiter: ',' | '\t' | ';';
  header: string[];
  user: Int32Array;
  item: Int32Array;
  /** the label or rating column, when the file has one */
  label?: Float32Array;
  /** which column `label` came from (its name in the header) */
  labelColumn?: string;
  /** a rating (RMSE and MAE, regression) or a 0/1 label (AUC, logloss, binary cross-entropy) */
  labelKind?: 'label' | 'rating';
  /** the header's names of the user and item columns read */
  userColumn: string;
  itemColumn: string;
  timestamp?: Float64Array;
  extra: Array<{ name: string; values: Int32Array }>;
}

const CHUNK = 1 << 20;
/** A date, optionally with a time and zone: 2024-03-01, 2024-03-01 12:30:00, 2024-03-01T12:30:00.5Z, ...+02:00 */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
/** No interaction row is this long; a longer one means a wrong or hostile file. */
export const MAX_LINE_CHARS = 16 << 20;

/** A cell quoted in an error message, cut so that a huge cell cannot make a huge message. */
function quote(cell: string): string {
  return cell.length > 40 ? `${cell.slice(0, 40)}…` : cell;
}

/** Grows by doubling; `view()` is the filled part (a copy trimmed to size). */
class GrowingInt32 {
  buf = new Int32Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const b = new Int32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
  view(): Int32Array {
    return this.buf.slice(0, this.n);
  }
}

class GrowingFloat64 {
  buf = new Float64Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const b = new Float64Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
}

/** The delimiter of a header line: the most frequent of tab, comma, semicolon (tab wins ties). */
export function sniffDelimiter(headerLine: string): ',' | '\t' | ';' {
  const count = (c: string) => headerLine.split(c).length - 1;
  const tabs = count('\t');
  const commas = count(',');
  const semis = count(';');
  if (tabs >= commas && tabs >= semis && tabs > 0) return '\t';
  if (semis > commas) return ';';
  return ',';
}

/**
 * The cells of a line with RFC 4180 quotes (`"a"`, `"a,b"`, `"say ""hi"""`), for the lines that
 * hold a quote (spreadsheets and pandas' `quoting=csv.QUOTE_ALL` write them); the others are split
 * on the delimiter directly. Undefined for an unterminated quote.
 */
export function splitQuoted(line: string, delimiter: string): string[] | undefined {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (c === delimiter) {
      cells.push(cell);
      cell = '';
    } else {
      cell += c;
    }
  }
  if (quoted) return undefined;
  cells.push(cell);
  return cells;
}

/** A non-negative integer written in decimal (no sign, no exponent, no fraction), or -1. */
function parseId(s: string): number {
  const n = s.length;
  if (n === 0 || n > 10) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v <= 0x7fffffff ? v : -1;
}

/** Number() trims and reads '' and '  ' as 0: an empty cell must be an error instead. */
function parseNumber(s: string): number {
  const v = Number(s);
  return v === 0 && s.trim() === '' ? NaN : v;
}

/**
 * Calls `onLine(text, lineNumber)` for every line of the file, streaming. Lines end with \n or
 * \r\n; a final line without newline counts.
 */
export async function forEachLine(file: string, onLine: (line: string, lineNumber: number) => void): Promise<void> {
  const stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: CHUNK });
  // the unfinished line, in pieces: joining it with every chunk and searching it again from the
  // start would make one very long line quadratic
  let pending: string[] = [];
  let pendingLength = 0;
  let lineNumber = 0;
  const emit = (line: string) => onLine(line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line, ++lineNumber);
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf('\n', start);
        if (nl < 0) break;
        const piece = chunk.slice(start, nl);
        if (pending.length > 0) {
          pending.push(piece);
          emit(pending.join(''));
          pending = [];
          pendingLength = 0;
        } else emit(piece);
        start = nl + 1;
      }
      if (start < chunk.length) {
        pending.push(chunk.slice(start));
        pendingLength += chunk.length - start;
        if (pendingLength > MAX_LINE_CHARS) {
          throw new ModelFileError(file, `line ${lineNumber + 1} is longer than ${MAX_LINE_CHARS} characters: not an interaction file`);
        }
      }
    }
  } finally {
    stream.destroy();
  }
  if (pending.length > 0) emit(pending.join(''));
}

function openError(file: string, e: unknown): ModelFileError {
  return new ModelFileError(file, `cannot read: ${ioReason(e)}`, { cause: e });
}

/** Reads an interaction file into columns; throws ModelFileError naming the file and the line. */
export async function readInteractions(file: string, opts: ReadInteractionsOptions = {}): Promise<InteractionTable> {
  try {
    const st = await fs.promises.stat(file);
    if (st.isDirectory()) throw new ModelFileError(file, 'is a folder, not an interaction file');
    // a named pipe would wait forever for a writer, a device never ends: regular files only
    if (!st.isFile()) throw new ModelFileError(file, 'is not a regular file');
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw openError(file, e);
  }
  const names = {
    user: opts.columns?.user ?? 'user',
    item: opts.columns?.item ?? 'item',
    timestamp: opts.columns?.timestamp ?? 'timestamp',
  };
  let labelKind: 'label' | 'rating' | undefined;
  for (const [what, v] of [['user', opts.userVocab], ['item', opts.itemVocab]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new Error(`readInteractions: ${what}Vocab must be a positive integer, got ${v}`);
  }

  let header: string[] | undefined;
  let delimiter: ',' | '\t' | ';' = ',';
  let userAt = -1;
  let itemAt = -1;
  let labelAt = -1;
  let labelColumn: string | undefined;
  let timeAt = -1;
  let extraAt: number[] = [];
  let extraNames: string[] = [];
  const user = new GrowingInt32();
  const item = new GrowingInt32();
  const label = new GrowingFloat64();
  const time = new GrowingFloat64();
  let extra: GrowingInt32[] = [];
  let extraVocab: Array<number | undefined> = [];

  const fail = (line: number, reason: string): never => {
    throw new ModelFileError(file, `line ${line}: ${reason}`);
  };

  const onHeader = (line: string, ln: number) => {
    if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    // UTF-16 read as UTF-8: a NUL between every character (Excel's "Unicode Text" export)
    if (line.includes('\u0000')) fail(ln, "the file is UTF-16 text (Excel's 'Unicode Text'?), not UTF-8: save it as 'CSV UTF-8'");
    // lines ended by CR alone (classic Mac) arrive as one line
    if (line.includes('\r')) fail(ln, 'its lines end in a carriage return alone (classic Mac line endings): convert them to LF or CRLF');
    delimiter = sniffDelimiter(line);
    const cols = line.includes('"') ? splitQuoted(line, delimiter) : line.split(delimiter);
    if (!cols) return fail(ln, 'a quoted column name has no closing quote');
    header = cols.map((h) => h.trim());
    const find = (name: string) => header!.indexOf(name);
    /** the column given by name, else the default name, else the one column that fits an alias */
    const resolve = (role: keyof typeof COLUMN_ALIASES, given: string | undefined, fallback: string): number => {
      if (given !== undefined) return find(given);
      const exact = find(fallback);
      if (exact >= 0) return exact;
      const aliases: readonly string[] = COLUMN_ALIASES[role];
      const fits = header!.map((h, i) => (aliases.includes(normalizedColumn(h)) ? i : -1)).filter((i) => i >= 0);
      if (fits.length > 1) fail(ln, `columns ${fits.map((i) => `'${header![i]}'`).join(' and ')} could each be the ${role === 'label' || role === 'rating' ? 'label' : role} column: rename all but one${role === 'timestamp' ? '' : ` (or name it: --${role === 'rating' ? 'label' : role}-column)`}`);
      return fits.length === 1 ? fits[0] : -1;
    };
    userAt = resolve('user', opts.columns?.user, 'user');
    itemAt = resolve('item', opts.columns?.item, 'item');
    const missing = [userAt < 0 ? names.user : '', itemAt < 0 ? names.item : ''].filter(Boolean);
    if (missing.length > 0) {
      fail(ln, `header has no column ${missing.map((m) => `'${m}'`).join(' or ')} (columns: ${header.join(', ')}; the header is required)`);
    }
    names.user = header[userAt];
    names.item = header[itemAt];
    if (opts.columns?.label !== undefined) {
      labelAt = find(opts.columns.label);
      if (labelAt < 0) fail(ln, `header has no label column '${opts.columns.label}'`);
    } else {
      labelAt = resolve('label', undefined, 'label');
      if (labelAt < 0) labelAt = resolve('rating', undefined, 'rating');
    }
    labelColumn = labelAt >= 0 ? header[labelAt] : undefined;
    labelKind = labelColumn === undefined ? undefined : (COLUMN_ALIASES.rating as readonly string[]).includes(normalizedColumn(labelColumn)) ? 'rating' : 'label';
    if (opts.requireLabel && labelAt < 0) fail(ln, `header has no 'label' or 'rating' column (columns: ${header.join(', ')})`);
    timeAt = resolve('timestamp', opts.columns?.timestamp, 'timestamp');
    if (timeAt >= 0) names.timestamp = header[timeAt];
    for (const at of [userAt, itemAt, labelAt]) {
      if (at >= 0 && header.indexOf(header[at], at + 1) >= 0) fail(ln, `the header names column '${header[at]}' twice`);
    }
    const used = new Set([userAt, itemAt, labelAt, timeAt]);
    if (opts.extraColumns === 'all') {
      extraAt = header.map((_, i) => i).filter((i) => !used.has(i));
    } else if (opts.extraColumns) {
      extraAt = opts.extraColumns.map((name) => {
        const at = find(name);
        if (at < 0) fail(ln, `header has no column '${name}'`);
        return at;
      });
    }
    if (opts.extraColumns === 'all' && opts.fieldColumns && extraAt.length > 0) extraAt = inModelOrder(extraAt, opts.fieldColumns, ln);
    else if (opts.extraColumns === 'all' && opts.fieldColumns && [...opts.fieldColumns.read].some((c) => c >= 2)) {
      // a DeepFM's file with user and item only (another model's candidates): name what is missing
      const fc = opts.fieldColumns;
      const missing = [...fc.read].filter((x) => x >= 2).sort((a, b) => a - b).map((x) => `'${fc.nameOf(x) ?? `column ${x}`}'`);
      fail(ln, `the model's fields input takes user, item and ${Math.max(...fc.read) - 1} more columns; the file has none: no column ${missing.join(', ')}`);
    }
    extraNames = extraAt.map((i) => header![i]);
    if (opts.extraVocab && opts.extraVocab.length !== extraAt.length) {
      fail(ln, `${extraAt.length} extra columns (${extraNames.join(', ')}) but the model has ${opts.extraVocab.length} extra fields`);
    }
    extra = extraAt.map(() => new GrowingInt32());
    extraVocab = opts.extraVocab ?? (opts.extraVocabOf ? extraNames.map((n) => opts.extraVocabOf!(n)) : []);
  };

  /** the extra columns in the order of the model's fields input (see fieldColumns) */
  const inModelOrder = (at: number[], fc: FieldColumns, ln: number): number[] => {
    const where = (i: number) => fc.at(header![i]);
    for (const [i, want] of [[userAt, 0], [itemAt, 1]] as const) {
      const got = where(i);
      if (got !== undefined && got !== want) fail(ln, `the model reads '${header![i]}' from column ${got} of its fields input; PruneScope feeds user and item as columns 0 and 1`);
    }
    const cols = at.map(where);
    if (cols.every((c) => c === undefined)) return at; // the model names none of them: file order
    /** the file has fewer field columns than the model reads: the ones missing, by name */
    const missingFields = (): never => {
      const named = new Set(cols.filter((x) => x !== undefined));
      const missing = [...fc.read].filter((x) => x >= 2 && !named.has(x)).sort((a, b) => a - b).map((x) => `'${fc.nameOf(x) ?? `column ${x}`}'`);
      return fail(ln, `the model's fields input takes user, item and ${Math.max(...fc.read) - 1} more columns; the file has ${at.length} (${at.map((x) => `'${header![x]}'`).join(', ')})${missing.length ? `: no column ${missing.join(', ')}` : ''}`);
    };
    if (fc.read.size > 0 && Math.max(...fc.read) >= 2 + at.length) missingFields();
    const slot: Array<number | undefined> = new Array(at.length).fill(undefined); // extra column j of the model <- file column
    at.forEach((i, j) => {
      const c = cols[j];
      if (c === undefined) return;
      if (c < 2) fail(ln, `column '${header![i]}' feeds column ${c} of the model's fields input, which takes user and item there`);
      if (slot[c - 2] !== undefined) fail(ln, `columns '${header![slot[c - 2]!]}' and '${header![i]}' both feed column ${c} of the model's fields input`);
      slot[c - 2] = i;
    });
    const unnamed = at.filter((_, j) => cols[j] === undefined);
    const guessed = slot.map((s, j) => (s === undefined && fc.read.has(2 + j) ? 2 + j : -1)).filter((c) => c >= 0);
    if (guessed.length > 0) {
      if (unnamed.length === 0) missingFields();
      fail(ln, `the model has no field table named after column(s) ${unnamed.map((i) => `'${header![i]}'`).join(', ')}, and it reads column(s) ${guessed.join(', ')} of its fields input: which file column feeds which is unknown (name each column after its table, <column>_embedding)`);
    }
    // the unnamed columns feed columns no table reads (their values change nothing): file order
    let next = 0;
    return slot.map((s) => s ?? unnamed[next++]);
  };

  const idOf = (cell: string, what: string, ln: number, vocab: number | undefined): number => {
    let v = parseId(cell);
    // trimming only on the slow path: most files have no spaces around values
    if (v < 0) v = parseId(cell.trim());
    if (v < 0 && /^\s*\d+\s*$/.test(cell)) {
      // digits only: many leading zeros (read as the number), or more than an id holds
      const n = Number(cell.trim());
      if (n > 0x7fffffff) fail(ln, `${what} ${quote(cell.trim())} is too large for an id (at most 2147483647)`);
      v = n;
    }
    if (v < 0) fail(ln, `${what} '${quote(cell)}' is not a non-negative integer`);
    if (vocab !== undefined && v >= vocab) {
      fail(ln, `${what} ${v} is outside the model's embedding table (${vocab} rows, ids 0..${vocab - 1})`);
    }
    return v;
  };

  try {
    await forEachLine(file, (line, ln) => {
      if (header === undefined) {
        if (line.trim() === '') fail(ln, 'empty line where the header was expected');
        onHeader(line, ln);
        return;
      }
      if (line.length === 0) return;
      const cells = line.includes('"') ? splitQuoted(line, delimiter) ?? fail(ln, 'a quoted value has no closing quote') : line.split(delimiter);
      if (cells.length !== header.length) {
        if (line.trim() === '') return;
        fail(ln, `${cells.length} columns, the header has ${header.length}`);
      }
      user.push(idOf(cells[userAt], names.user, ln, opts.userVocab));
      item.push(idOf(cells[itemAt], names.item, ln, opts.itemVocab));
      if (labelAt >= 0) {
        const v = parseNumber(cells[labelAt]);
        if (!Number.isFinite(v)) fail(ln, `${labelColumn} '${quote(cells[labelAt])}' is not a number`);
        label.push(v);
      }
      if (timeAt >= 0) {
        let v = parseNumber(cells[timeAt]);
        // an ISO 8601 date-time (pandas' and most databases' export) is read as Unix seconds
        if (!Number.isFinite(v) && ISO_TIME.test(cells[timeAt].trim())) v = Date.parse(cells[timeAt].trim()) / 1000;
        if (!Number.isFinite(v)) fail(ln, `${names.timestamp} '${quote(cells[timeAt])}' is neither a number nor an ISO 8601 date-time`);
        time.push(v);
      }
      for (let e = 0; e < extraAt.length; e++) {
        extra[e].push(idOf(cells[extraAt[e]], extraNames[e], ln, extraVocab[e]));
      }
    });
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw openError(file, e);
  }
  if (header === undefined) throw new ModelFileError(file, 'the file is empty (a header line is required)');
  if (user.n === 0) throw new ModelFileError(file, 'no data rows after the header');
  return {
    file,
    rows: user.n,
    delimiter,
    header,
    user: user.view(),
    item: item.view(),
    label: labelAt >= 0 ? Float32Array.from(label.buf.subarray(0, label.n)) : undefined,
    labelColumn,
    labelKind,
    userColumn: names.user,
    itemColumn: names.item,
    timestamp: timeAt >= 0 ? time.buf.slice(0, time.n) : undefined,
    extra: extra.map((g, i) => ({ name: extraNames[i], values: g.view() })),
  };
}

/** Row-major [rows, 2 + extra] fields: user, item, then the extra columns (the DeepFM `fields` input). */
export function fieldsMatrix(t: InteractionTable): Int32Array {
  const F = 2 + t.extra.length;
  const out = new Int32Array(t.rows * F);
  for (let r = 0; r < t.rows; r++) {
    const o = r * F;
    out[o] = t.user[r];
    out[o + 1] = t.item[r];
    for (let e = 0; e < t.extra.length; e++) out[o + 2 + e] = t.extra[e].values[r];
  }
  return out;
}
