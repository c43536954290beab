import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fieldsMatrix, MAX_LINE_CHARS, readInteractions, sniffDelimiter, splitQuoted } from '../../src/core/eval/interactions.js';
import { execFileSync } from 'node:child_process';
import { gzipBufferSize, gzipFileSize } from '../../src/core/eval/size.js';
import { leaveOneOut, MovieLensRatings } from '../../scripts/bench/movielens.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-eval-csv-'));
function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

test('reads CSV columns into typed arrays; CRLF, blank last line, BOM', async () => {
  const f = write('a.csv', '\ufeffuser,item,label,timestamp\r\n0,5,1,100\r\n2,3,0,101.5\r\n\r\n');
  const t = await readInteractions(f);
  assert.equal(t.rows, 2);
  assert.equal(t.delimiter, ',');
  assert.deepEqual([...t.user], [0, 2]);
  assert.deepEqual([...t.item], [5, 3]);
  assert.deepEqual([...t.label!], [1, 0]);
  assert.equal(t.labelColumn, 'label');
  assert.deepEqual([...t.timestamp!], [100, 101.5]);
  assert.ok(t.user instanceof Int32Array && t.label instanceof Float32Array);
});

test('sniffs TSV from the header; rating as label; other column names; extra columns as fields', async () => {
  assert.equal(sniffDelimiter('user\titem\trating'), '\t');
  assert.equal(sniffDelimiter('user;item'), ';');
  assert.equal(sniffDelimiter('user,item'), ',');
  const f = write('b.tsv', 'uid\tmovie\trating\tgenre\tcity\n1\t2\t4.5\t7\t9\n3\t4\t1\t8\t0\n');
  const t = await readInteractions(f, { columns: { user: 'uid', item: 'movie' }, extraColumns: 'all' });
  assert.equal(t.delimiter, '\t');
  assert.equal(t.labelColumn, 'rating');
  assert.deepEqual([...t.label!], [4.5, 1]);
  assert.deepEqual(t.extra.map((e) => e.name), ['genre', 'city']);
  assert.deepEqual([...fieldsMatrix(t)], [1, 2, 7, 9, 3, 4, 8, 0]);
  const picked = await readInteractions(f, { columns: { user: 'uid', item: 'movie' }, extraColumns: ['city'] });
  assert.deepEqual([...picked.extra[0].values], [9, 0]);
});

test('column names other tools write are recognised; two columns that fit one role are refused by name', async () => {
  // MovieLens' ratings.csv (ml-latest), as downloaded
  const ml = await readInteractions(write('ratings.csv', 'userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n'));
  assert.equal(ml.userColumn, 'userId');
  assert.equal(ml.itemColumn, 'movieId');
  assert.equal(ml.labelColumn, 'rating');
  assert.equal(ml.labelKind, 'rating');
  assert.deepEqual([...ml.item], [1, 3]);
  assert.deepEqual([...ml.label!], [4, 4.5]);
  assert.deepEqual([...ml.timestamp!], [964982703, 964981247]);
  // a pandas export with click labels, case and separators as written
  const clicks = await readInteractions(write('clicks.csv', 'User_ID,Item-ID,Clicked\n0,2,1\n1,0,0\n'), { requireLabel: true });
  assert.deepEqual([clicks.userColumn, clicks.itemColumn, clicks.labelColumn, clicks.labelKind], ['User_ID', 'Item-ID', 'Clicked', 'label']);
  assert.deepEqual([...clicks.user, ...clicks.item, ...clicks.label!], [0, 1, 2, 0, 1, 0]);
  // the exact default name wins over an alias; the alias column is then an extra column
  const both = await readInteractions(write('both.csv', 'user,user_id,item,label\n0,7,1,1\n'), { extraColumns: 'all' });
  assert.equal(both.userColumn, 'user');
  assert.deepEqual(both.extra.map((e) => e.name), ['user_id']);
  // a named column is read as named, aliases or not
  const named = await readInteractions(write('named.csv', 'userId,uid,movieId,label\n0,5,1,1\n'), { columns: { user: 'uid' }, extraColumns: 'all' });
  assert.deepEqual([...named.user], [5]);
  assert.deepEqual(named.extra.map((e) => e.name), ['userId']);
  await assert.rejects(
    readInteractions(write('two-users.csv', 'userId,uid,movieId,label\n0,5,1,1\n')),
    /two-users\.csv: line 1: columns 'userId' and 'uid' could each be the user column: rename all but one \(or name it: --user-column\)/,
  );
  await assert.rejects(readInteractions(write('two-labels.csv', 'user,item,click,is_click\n0,1,1,1\n')), /columns 'click' and 'is_click' could each be the label column/);
  await assert.rejects(readInteractions(write('dup-label.csv', 'user,item,label,label\n0,1,1,0\n')), /dup-label\.csv: line 1: the header names column 'label' twice/);
  // a rating named as the label column is still a rating; any other label column holds 0/1 labels
  const asNamed = await readInteractions(write('stars.csv', 'user,item,stars,label\n0,1,5,1\n'), { columns: { label: 'stars' } });
  assert.equal(asNamed.labelKind, 'rating');
  assert.equal(asNamed.labelColumn, 'stars');
});

test('ISO 8601 timestamps read as Unix seconds; UTF-16 and CR-only files get an error that says what they are', async () => {
  const iso = await readInteractions(write('iso.csv', 'user,item,label,timestamp\n0,1,1,2024-03-01T00:00:00Z\n0,2,0,2024-03-01\n1,2,1,2024-03-01T00:00:01.5+00:00\n'));
  assert.deepEqual([...iso.timestamp!], [1709251200, 1709251200, 1709251201.5]);
  await assert.rejects(readInteractions(write('bad-time.csv', 'user,item,timestamp\n0,1,yesterday\n')), /bad-time\.csv: line 2: timestamp 'yesterday' is neither a number nor an ISO 8601 date-time/);
  const utf16 = path.join(dir, 'utf16.csv');
  fs.writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('user\titem\tlabel\r\n0\t1\t1\r\n', 'utf16le')]));
  await assert.rejects(readInteractions(utf16), /utf16\.csv: line 1: the file is UTF-16 text \(Excel's 'Unicode Text'\?\), not UTF-8: save it as 'CSV UTF-8'/);
  await assert.rejects(readInteractions(write('cr.csv', 'user,item,label\r0,1,1\r1,2,0\r')), /cr\.csv: line 1: its lines end in a carriage return alone/);
});

test('quoted cells (RFC 4180): every value quoted, a quoted delimiter, a doubled quote; an unclosed quote names the line', async () => {
  const f = write('quoted.csv', '"user","item","label","note"\n"0","5","1","a, b"\n2,"3",0,"say ""hi"""\n');
  const t = await readInteractions(f);
  assert.deepEqual([...t.user], [0, 2]);
  assert.deepEqual([...t.item], [5, 3]);
  assert.deepEqual([...t.label!], [1, 0]);
  assert.deepEqual(t.header, ['user', 'item', 'label', 'note']);
  assert.deepEqual(splitQuoted('"a,b",c,"say ""hi""",', ','), ['a,b', 'c', 'say "hi"', '']);
  assert.equal(splitQuoted('"open,1', ','), undefined);
  await assert.rejects(readInteractions(write('unclosed.csv', 'user,item\n0,1\n"2,3\n')), /unclosed\.csv: line 3: a quoted value has no closing quote/);
});

test('errors name the file and the line', async () => {
  const cases: Array<[string, string, RegExp, object?]> = [
    ['bad-id.csv', 'user,item\n0,1\n1,abc\n', /bad-id\.csv: line 3: item 'abc' is not a non-negative integer/],
    ['neg.csv', 'user,item\n-1,1\n', /line 2: user '-1' is not a non-negative integer/],
    ['frac.csv', 'user,item\n1.5,1\n', /line 2: user '1.5' is not a non-negative integer/],
    ['huge.csv', 'user,item\n99999999999999999999,1\n', /line 2: user 99999999999999999999 is too large for an id \(at most 2147483647\)/],
    ['cols.csv', 'user,item,label\n0,1,1\n0,1\n', /cols\.csv: line 3: 2 columns, the header has 3/],
    ['missing.csv', 'u,item\n0,1\n', /missing\.csv: line 1: header has no column 'user'/],
    ['empty.csv', '', /empty\.csv: the file is empty/],
    ['header-only.csv', 'user,item\n', /header-only\.csv: no data rows/],
    ['label.csv', 'user,item,label\n0,1,x\n', /line 2: label 'x' is not a number/],
    ['vocab.csv', 'user,item\n0,1\n0,7\n', /vocab\.csv: line 3: item 7 is outside the model's embedding table \(5 rows, ids 0\.\.4\)/, { itemVocab: 5 }],
    ['nolabel.csv', 'user,item\n0,1\n', /nolabel\.csv: line 1: header has no 'label' or 'rating' column/, { requireLabel: true }],
  ];
  for (const [name, text, re, opts] of cases) {
    await assert.rejects(readInteractions(write(name, text), opts), re, name);
  }
  await assert.rejects(readInteractions(path.join(dir, 'nope.csv')), /nope\.csv: cannot read: no such file \(ENOENT\)/);
  // leading zeros beyond ten digits are still the number
  assert.deepEqual([...(await readInteractions(write('zeros.csv', 'user,item\n000000000007,1\n'))).user], [7]);
});

test('100k lines read into columns (a chunk boundary inside a line is handled)', async () => {
  const lines = ['user,item,label,timestamp'];
  for (let i = 0; i < 100_000; i++) lines.push(`${i % 943},${(i * 7) % 1682},${i % 2},${880000000 + i}`);
  const f = write('big.csv', lines.join('\n'));
  const t = await readInteractions(f, { userVocab: 943, itemVocab: 1682 });
  assert.equal(t.rows, 100_000);
  assert.equal(t.user[99_999], 99_999 % 943);
  assert.equal(t.item[54_321], (54_321 * 7) % 1682);
  assert.equal(t.timestamp![99_999], 880099999);
});

test('gzip size of a known buffer equals zlib level 6, file and buffer agree', async () => {
  const data = new Uint8Array(100_000); // all zeros: `head -c 100000 /dev/zero | gzip -6 | wc -c` says 132
  assert.equal(gzipBufferSize(data), 132);
  const f = path.join(dir, 'zeros.bin');
  fs.writeFileSync(f, data);
  assert.equal(await gzipFileSize(f), 132);
});

test('MovieLens leave-one-out: latest by timestamp, ties by larger item id, negatives never rated', () => {
  // user 0 rated items 0 (t=5), 3 (t=9), 1 (t=9): tie at t=9 -> item 3 is the test item
  // user 1 rated items 2 (t=1), 4 (t=2)
  const r: MovieLensRatings = {
    user: Int32Array.from([0, 0, 0, 1, 1]),
    item: Int32Array.from([0, 3, 1, 2, 4]),
    rating: Float32Array.from([5, 3, 1, 2, 4]),
    timestamp: Float64Array.from([5, 9, 9, 1, 2]),
    users: 2,
    items: 8,
  };
  const s = leaveOneOut(r, 4, 3);
  assert.deepEqual([...s.testItem], [3, 4]);
  assert.deepEqual([...s.train.user], [0, 0, 1]);
  assert.deepEqual([...s.train.item], [0, 1, 2]);
  for (const u of [0, 1]) {
    const c = s.candidates[u];
    assert.equal(c.length, 5);
    assert.equal(c[0], s.testItem[u]);
    const negs = [...c.slice(1)];
    assert.equal(new Set(negs).size, 4);
    for (const n of negs) assert.ok(!s.rated[u].includes(n), `negative ${n} was rated by user ${u}`);
  }
  assert.throws(() => leaveOneOut(r, 6, 3), /fewer than 6 left to sample/);
});

test('hostile interaction files: a named pipe, an endless line, a huge cell', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-csv-hostile-'));
  const fifo = path.join(dir, 'pipe.csv');
  execFileSync('mkfifo', [fifo]);
  await assert.rejects(readInteractions(fifo), /pipe\.csv: is not a regular file/);
  // one line of 17 M characters: refused once it passes the cap, not after reading it all twice
  const long = path.join(dir, 'long.csv');
  fs.writeFileSync(long, 'user,item\n' + '1'.repeat(MAX_LINE_CHARS + (1 << 20)));
  await assert.rejects(readInteractions(long), /long\.csv: line 2 is longer than 16777216 characters/);
  const huge = path.join(dir, 'huge.csv');
  fs.writeFileSync(huge, `user,item\n0,${'x'.repeat(1 << 20)}\n`);
  await assert.rejects(readInteractions(huge), (e: Error) => e.message.length < 200 && /huge\.csv: line 2: item 'x{40}…' is not a non-negative integer/.test(e.message));
});
