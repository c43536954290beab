// A candidates file checked for one positive per user right after it is read, the error naming
// the file and its exact lines (the header is line 1), whatever blank lines it has: the ranking
// would otherwise fail later, on rows it can only count.

import { ModelFileError } from '../model/ir.js';
import { forEachLine, type InteractionTable } from './interactions.js';
import { checkOnePositivePerUser, TwoPositivesError } from './metrics.js';

class Found extends Error {}

/**
 * The file lines (1-based, the header is line 1) of data rows `rows` (0-based, in reading order).
 * The interaction reader skips blank lines (empty or only spaces) and takes every other line after
 * the header as a row; so does this count.
 */
export async function fileLinesOfRows(file: string, rows: readonly number[]): Promise<number[]> {
  const want = new Map(rows.map((r, i) => [r, i]));
  const lines = rows.map(() => 0);
  let left = want.size;
  let row = -1;
  try {
    await forEachLine(file, (line, ln) => {
      if (ln === 1 || line.trim() === '') return;
      const at = want.get(++row);
      if (at === undefined) return;
      lines[at] = ln;
      // every wanted line is known: stop reading
      if (--left === 0) throw new Found();
    });
  } catch (e) {
    if (!(e instanceof Found)) throw e;
  }
  return lines;
}

/** Throws a ModelFileError naming the file and the two lines when a user has two positive rows. */
export async function checkCandidatesFile(table: Pick<InteractionTable, 'file' | 'user' | 'label'>): Promise<void> {
  if (!table.label) return;
  try {
    checkOnePositivePerUser(table.user, table.label);
  } catch (e) {
    if (!(e instanceof TwoPositivesError)) throw e;
    const [a, b] = await fileLinesOfRows(table.file, e.rows);
    throw new ModelFileError(table.file, new TwoPositivesError(e.user, e.rows, [a, b]).message);
  }
}
