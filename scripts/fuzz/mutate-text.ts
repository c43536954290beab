// Mutations of TF.js model.json files (structural JSON edits in the spirit of fast-check's
// `fc.json()`: wrong types, huge or negative shapes, missing keys, hostile paths, odd dtypes,
// quantization with non-finite scales, deep nesting), of weight shards (sizes that disagree with
// the manifest) and of interaction CSV files.

import { Rng } from './rng.js';
import { Mutated, concat, plainMutation } from './mutate-bytes.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Raw JSON text spliced in where JSON.stringify cannot go (1e999 parses to Infinity). */
class RawJson {
  constructor(readonly text: string) {}
}

type J = null | boolean | number | string | RawJson | J[] | { [k: string]: J };

function stringify(v: J): string {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map(stringify).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${stringify(x)}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

const NUMBERS: J[] = [0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 1e308, -1e308, new RawJson('1e999'), new RawJson('-1e999'), new RawJson('-0'), 1e-320, 3e9];
const STRINGS: J[] = [
  '',
  '..',
  '../x.bin',
  '../../etc/passwd',
  '/etc/passwd',
  'C:\\x.bin',
  'http://example.com/w.bin',
  'https://example.com/../w.bin',
  'file:///etc/passwd',
  'data:application/octet-stream;base64,AAAA',
  '%2e%2e/x.bin',
  'sub/../group1-shard1of1.bin',
  'group1-shard1of1.bin',
  '<script>alert(1)</script>',
  'x'.repeat(20000),
  'float32',
  'int32',
  'bool',
  'string',
  'complex64',
  'uint8',
  'uint16',
  'float16',
  'int64',
  'bfloat16',
  'NaN',
  '__proto__',
  'constructor',
];

function randomJson(rng: Rng, depth: number): J {
  const k = rng.int(depth > 3 ? 4 : 7);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.bool();
    case 2:
      return rng.pick(NUMBERS);
    case 3:
      return rng.pick(STRINGS);
    case 4:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
    case 5: {
      const o: { [k: string]: J } = {};
      for (let i = rng.int(4); i > 0; i--) o[rng.pick(['name', 'shape', 'dtype', 'paths', 'weights', 'quantization', 'scale', 'min', 'config', 'class_name', 'x'])] = randomJson(rng, depth + 1);
      return o;
    }
    default:
      return [rng.pick(NUMBERS), rng.pick(NUMBERS)];
  }
}

interface Slot {
  parent: J[] | { [k: string]: J };
  key: string | number;
  path: string;
}

function slots(v: J, path: string, out: Slot[]): void {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i, path: `${path}[${i}]` }), slots(x, `${path}[${i}]`, out)));
  else if (v !== null && typeof v === 'object' && !(v instanceof RawJson)) {
    for (const k of Object.keys(v)) {
      out.push({ parent: v, key: k, path: `${path}.${k}` });
      slots(v[k], `${path}.${k}`, out);
    }
  }
}

function deepNest(depth: number, inner: string): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth);
}

function manifestEdit(rng: Rng, doc: { [k: string]: J }): string | undefined {
  const wm = doc.weightsManifest;
  if (!Array.isArray(wm) || wm.length === 0) return undefined;
  const group = rng.pick(wm) as { [k: string]: J };
  if (group === null || typeof group !== 'object' || Array.isArray(group)) return undefined;
  const weights = group.weights;
  const k = rng.int(8);
  if (k === 0) {
    const paths = group.paths;
    if (!Array.isArray(paths)) return undefined;
    const p = rng.pick(STRINGS.slice(0, 14)) as string;
    if (paths.length === 0 || rng.bool(0.2)) paths.push(p);
    else paths[rng.int(paths.length)] = p;
    return `paths -> ${JSON.stringify(paths).slice(0, 120)}`;
  }
  if (!Array.isArray(weights) || weights.length === 0) return undefined;
  const w = rng.pick(weights) as { [k: string]: J };
  if (w === null || typeof w !== 'object' || Array.isArray(w)) return undefined;
  if (k === 1) {
    const shape = Array.isArray(w.shape) ? w.shape.slice() : [];
    const v = rng.pick([-1, 0, 2 ** 31, 2 ** 40, 2 ** 53, 1.5, new RawJson('1e999'), '3', null, 3e9]);
    if (shape.length === 0 || rng.bool(0.3)) shape.push(v);
    else shape[rng.int(shape.length)] = v;
    w.shape = shape;
    return `weight ${String(w.name)} shape -> ${stringify(shape)}`;
  }
  if (k === 2) {
    w.dtype = rng.pick([...STRINGS.slice(15, 26), 5, null]);
    return `weight ${String(w.name)} dtype -> ${stringify(w.dtype)}`;
  }
  if (k === 3) {
    w.quantization = {
      dtype: rng.pick(['uint8', 'uint16', 'float16', 'int8', 'float32', 7]),
      scale: rng.pick([0.01, 0, -1, new RawJson('1e999'), 'NaN', null, 1e308]),
      min: rng.pick([0, -1, new RawJson('-1e999'), 'x', null]),
      original_dtype: rng.pick(['float32', 'int32', 'string', 'bool', 'bogus']),
    };
    if (rng.bool(0.3)) delete (w.quantization as { [k: string]: J }).scale;
    return `weight ${String(w.name)} quantization -> ${stringify(w.quantization)}`;
  }
  if (k === 4) {
    // duplicate or drop weights: the byte layout no longer matches the shards
    if (rng.bool()) weights.splice(rng.int(weights.length + 1), 0, w);
    else weights.splice(rng.int(weights.length), 1);
    return `weights count -> ${weights.length}`;
  }
  if (k >= 6) {
    // a self-consistent reshape / retype: same number of bytes, so the shards still match
    const shape = Array.isArray(w.shape) ? (w.shape as number[]) : [];
    const n = shape.reduce((a, b) => a * (typeof b === 'number' ? b : 1), 1);
    const options: number[][] = [[n], [1, n], [n, 1], [1, 1, n]];
    if (n % 2 === 0) options.push([2, n / 2], [n / 2, 2]);
    w.shape = rng.pick(options);
    if (rng.bool(0.4) && w.dtype === 'float32' && !w.quantization) w.dtype = rng.pick(['int32', 'float32']);
    if (rng.bool(0.3) && w.quantization && typeof w.quantization === 'object') {
      const q = w.quantization as { [k: string]: J };
      q.scale = rng.pick([0, 1e-45, 1e30, -0.5, 1]);
      q.min = rng.pick([0, -1e30, 1e38]);
    }
    return `weight ${String(w.name)} reshaped ${stringify(w.shape)} ${String(w.dtype)}`;
  }
  w.name = rng.pick(STRINGS) as string;
  return `weight name -> ${String(w.name).slice(0, 30)}`;
}

export function mutateModelJson(rng: Rng, text: Uint8Array): Mutated {
  const k = rng.int(10);
  if (k === 0) return plainMutation(rng, text);
  let doc: J;
  try {
    doc = JSON.parse(dec.decode(text)) as J;
  } catch {
    return plainMutation(rng, text);
  }
  if (k <= 3 && doc !== null && typeof doc === 'object' && !Array.isArray(doc)) {
    const d = manifestEdit(rng, doc as { [k: string]: J });
    if (d) return { bytes: enc.encode(stringify(doc)), desc: d };
  }
  const all: Slot[] = [];
  slots(doc, '$', all);
  if (all.length === 0) return plainMutation(rng, text);
  const s = rng.pick(all);
  const mode = rng.int(6);
  let desc: string;
  if (mode === 0) {
    if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
    else delete s.parent[s.key as string];
    desc = `delete ${s.path}`;
  } else if (mode === 1 && Array.isArray(s.parent)) {
    const n = rng.bool(0.9) ? 1 : 10000;
    s.parent.splice(s.key as number, 0, ...Array.from({ length: n }, () => (s.parent as J[])[s.key as number]));
    desc = `duplicate ${s.path} x${n}`;
  } else if (mode === 2) {
    const depth = rng.pick([100, 5000, 100000]);
    const marker = new RawJson(deepNest(depth, '0'));
    (s.parent as Record<string | number, J>)[s.key] = rng.bool(0.5) ? marker : new RawJson(`{"a":${deepNest(Math.min(depth, 20000), '{}')}}`);
    desc = `nest ${s.path} depth ${depth}`;
  } else {
    const v = randomJson(rng, 0);
    (s.parent as Record<string | number, J>)[s.key] = v;
    desc = `set ${s.path} = ${stringify(v).slice(0, 80)}`;
  }
  return { bytes: enc.encode(stringify(doc)), desc };
}

// ---------------------------------------------------------------------------------------------
// Shards

export type ShardAction =
  | { kind: 'bytes'; name: string; bytes: Uint8Array }
  | { kind: 'delete'; name: string }
  | { kind: 'folder'; name: string }
  | { kind: 'sparse'; name: string; size: number }
  | { kind: 'symlink'; name: string; target: string }
  /** a named pipe: opening it for reading would wait for a writer forever */
  | { kind: 'fifo'; name: string };

export function mutateShards(rng: Rng, shards: Array<{ name: string; bytes: Uint8Array }>): { actions: ShardAction[]; desc: string } {
  const s = rng.pick(shards);
  const k = rng.int(9);
  switch (k) {
    case 0:
    case 1: {
      const m = plainMutation(rng, s.bytes);
      return { actions: [{ kind: 'bytes', name: s.name, bytes: m.bytes }], desc: `${s.name}: ${m.desc}` };
    }
    case 2: {
      const cut = rng.pick([0, 1, 3, 4, Math.max(0, s.bytes.length - 1), rng.int(s.bytes.length + 1)]);
      return { actions: [{ kind: 'bytes', name: s.name, bytes: s.bytes.slice(0, cut) }], desc: `${s.name}: truncate to ${cut}` };
    }
    case 3: {
      const extra = rng.pick([1, 4, 1000]);
      return { actions: [{ kind: 'bytes', name: s.name, bytes: concat(s.bytes, new Uint8Array(extra)) }], desc: `${s.name}: +${extra} bytes` };
    }
    case 4:
      return { actions: [{ kind: 'delete', name: s.name }], desc: `${s.name}: missing` };
    case 5:
      return { actions: [{ kind: 'folder', name: s.name }], desc: `${s.name}: a folder` };
    case 6: {
      const size = rng.pick([s.bytes.length + 4, 300 * 1024 * 1024, 3 * 1024 ** 3]);
      return { actions: [{ kind: 'sparse', name: s.name, size }], desc: `${s.name}: sparse file of ${size} bytes` };
    }
    case 7: {
      if (shards.length < 2) return { actions: [{ kind: 'bytes', name: s.name, bytes: new Uint8Array(0) }], desc: `${s.name}: empty` };
      const t = rng.pick(shards.filter((x) => x !== s));
      return {
        actions: [
          { kind: 'bytes', name: s.name, bytes: t.bytes },
          { kind: 'bytes', name: t.name, bytes: s.bytes },
        ],
        desc: `swap ${s.name} and ${t.name}`,
      };
    }
    default:
      if (rng.bool(0.2)) return { actions: [{ kind: 'fifo', name: s.name }], desc: `${s.name}: a named pipe` };
      return { actions: [{ kind: 'symlink', name: s.name, target: rng.pick(['/etc/passwd', '/dev/zero', '../outside.bin', '/proc/self/mem']) }], desc: `${s.name}: symlink out` };
  }
}

// ---------------------------------------------------------------------------------------------
// CSV

const CSV_VALUES = ['', '-1', '0', '2147483647', '2147483648', '-2147483649', '99999999999999999999', '1e309', 'NaN', 'Infinity', '0x10', ' 3', '3.5', '"3"', '"', 'abc', '\u0000', '1,2', '1e5', '+4', '٣'];

export function mutateCsv(rng: Rng, text: Uint8Array): Mutated {
  const k = rng.int(8);
  if (k <= 1) return plainMutation(rng, text);
  const s = dec.decode(text);
  const nl = s.includes('\r\n') ? '\r\n' : '\n';
  const lines = s.split(nl);
  const delim = lines[0].includes('\t') ? '\t' : lines[0].includes(';') ? ';' : ',';
  let desc: string;
  if (k === 2) {
    const li = rng.int(lines.length);
    const cells = lines[li].split(delim);
    const ci = rng.int(cells.length);
    cells[ci] = rng.pick(CSV_VALUES);
    lines[li] = cells.join(delim);
    desc = `line ${li + 1} cell ${ci} = ${JSON.stringify(cells[ci])}`;
  } else if (k === 3) {
    const li = rng.int(lines.length);
    const cells = lines[li].split(delim);
    if (rng.bool()) cells.splice(rng.int(cells.length), 1);
    else for (let i = rng.pick([1, 3, 5000]); i > 0; i--) cells.push(rng.pick(CSV_VALUES));
    lines[li] = cells.join(delim);
    desc = `line ${li + 1} now ${cells.length} cells`;
  } else if (k === 4) {
    const cells = lines[0].split(delim);
    const ci = rng.int(cells.length);
    cells[ci] = rng.pick(['', 'user', 'item', 'label', 'rating', 'timestamp', '"user"', 'USER', '\ufeffuser', 'x'.repeat(10000)]);
    lines[0] = cells.join(delim);
    desc = `header cell ${ci} = ${cells[ci].slice(0, 20)}`;
  } else if (k === 5) {
    const what = rng.int(5);
    if (what === 0) lines.splice(1);
    else if (what === 1) lines.splice(0, 1);
    else if (what === 2) lines.unshift('\ufeff' + lines.shift());
    else if (what === 3) lines.splice(1 + rng.int(lines.length), 0, '', '', delim.repeat(3));
    else lines.splice(1 + rng.int(lines.length), 0, '9'.repeat(rng.pick([100, 2_000_000])));
    desc = `lines edit ${what}`;
  } else if (k === 6) {
    const li = rng.int(lines.length);
    lines[li] = lines[li] + rng.pick(['\r', '"', '\r\r', '\u2028', '\0', '\t', ';']);
    desc = `line ${li + 1} trailing char`;
  } else {
    const li = 1 + rng.int(Math.max(1, lines.length - 1));
    const n = rng.pick([2, 100]);
    lines.splice(li, 0, ...Array.from({ length: n }, () => lines[li] ?? ''));
    desc = `line ${li + 1} repeated x${n}`;
  }
  return { bytes: enc.encode(lines.join(rng.bool(0.1) ? (nl === '\n' ? '\r\n' : '\n') : nl)), desc };
}
