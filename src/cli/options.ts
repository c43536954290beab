// The command line's one source: each command declares its positionals, options (kind, default,
// choices, range, description) and rules once; parsing, validation and `--help` derive from that,
// so the help cannot drift from what the parser accepts. Node's parseArgs does the tokenising
// (its messages, e.g. "Unknown option '--x'", are part of the contract); every problem is a
// UsageError (exit 2).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './args.js';
import { closestName } from '../core/closest-name.js';

export type OptionKind = 'string' | 'number' | 'integer' | 'boolean' | 'choice' | 'list' | 'path';

export interface OptionSpec {
  kind: OptionKind;
  description: string;
  /** applied when the option is absent, and shown in the help */
  default?: string | number | readonly (string | number)[];
  /** shown in the help when the default is not a plain value (e.g. "the method's, 8"); not applied */
  defaultText?: string;
  /** 'choice': the accepted values */
  choices?: readonly string[];
  /** 'list': the kind of each comma-separated item (default 'string') */
  of?: 'string' | 'number' | 'integer';
  /** 'number', 'integer' and numeric lists: the range */
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** the value's name in the help: FILE.csv, N, NAME */
  valueName?: string;
  /** the flag may be given more than once (the values are collected; list items are flattened) */
  repeatable?: boolean;
  /** the option must be given; a string is the message when it is not */
  required?: boolean | string;
  /** the message for a bad value, kept word for word where scripts rely on it */
  invalidMessage?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** Option relations the parser checks (on what was given, not on defaults). */
export type Rule =
  | { exclusive: readonly string[]; message?: string }
  | { requires: string; when: readonly string[]; message?: string }
  | { anyOf: readonly string[]; message?: string };

/** Options (and their rules) shared between commands. */
export interface OptionGroup<O extends OptionSpecs = OptionSpecs> {
  options: O;
  rules?: readonly Rule[];
}

export interface PositionalSpec {
  name: string;
  description: string;
  required?: boolean;
  /** the last positional only: it takes every remaining argument (one or more when required) */
  variadic?: boolean;
}

export interface CommandDefinition<O extends OptionSpecs, G extends readonly OptionGroup[]> {
  name: string;
  summary: string;
  positionals?: readonly PositionalSpec[];
  /** option sets shared with other commands, listed after `options` in the help */
  groups?: G;
  options?: O;
  rules?: readonly Rule[];
  examples?: readonly string[];
  /** extra lines under the options (what the rules in code check, modes) */
  notes?: readonly string[];
}

// ---------------- the typed values ----------------

type BaseValue<S> = S extends { kind: 'boolean' }
  ? boolean
  : S extends { kind: 'number' | 'integer' }
    ? number
    : S extends { kind: 'list'; of: 'number' | 'integer' }
      ? number[]
      : S extends { kind: 'list' }
        ? string[]
        : S extends { kind: 'choice'; choices: readonly (infer C)[] }
          ? C
          : string;
type Value<S> = S extends { repeatable: true } ? (S extends { kind: 'list' } ? BaseValue<S> : BaseValue<S>[]) : BaseValue<S>;
type AlwaysSet<S> = S extends { kind: 'boolean' } ? true : S extends { default: unknown } ? true : S extends { required: true | string } ? true : false;

/** The parsed values: options with a default (or required, or boolean) are always set. */
export type OptionValues<O> = { -readonly [K in keyof O]: AlwaysSet<O[K]> extends true ? Value<O[K]> : Value<O[K]> | undefined };

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type GroupOptions<G extends readonly OptionGroup[]> = G extends readonly [] ? unknown : UnionToIntersection<G[number]['options']>;

export interface Parsed<O> {
  values: OptionValues<O>;
  positionals: string[];
  /** the options given on the command line (defaults do not count) */
  given: ReadonlySet<string>;
}

export interface Command<O = OptionSpecs> {
  readonly name: string;
  readonly summary: string;
  readonly positionals: readonly PositionalSpec[];
  readonly options: OptionSpecs;
  readonly rules: readonly Rule[];
  parse(argv: string[]): Parsed<O>;
  /** one line: `prunescope NAME <positionals> --required X [options]` */
  usage(): string;
  help(): string;
}

export function defineGroup<const O extends OptionSpecs>(group: OptionGroup<O>): OptionGroup<O> {
  return group;
}

export function defineCommand<const O extends OptionSpecs = Record<never, never>, const G extends readonly OptionGroup[] = []>(
  def: CommandDefinition<O, G>,
): Command<O & GroupOptions<G>> {
  const groups: readonly OptionGroup[] = def.groups ?? [];
  // the command's own options first (the help lists them in this order), then the shared ones
  const options: OptionSpecs = { ...def.options };
  for (const g of groups) {
    for (const [n, o] of Object.entries(g.options)) {
      if (Object.hasOwn(options, n)) throw new Error(`${def.name}: --${n} is declared twice`);
      options[n] = o;
    }
  }
  const rules = [...(def.rules ?? []), ...groups.flatMap((g) => g.rules ?? [])];
  for (const r of rules) for (const n of ruleNames(r)) if (!Object.hasOwn(options, n)) throw new Error(`${def.name}: a rule names the unknown option --${n}`);
  const positionals = def.positionals ?? [];
  const cmd: Command<O & GroupOptions<G>> = {
    name: def.name,
    summary: def.summary,
    positionals,
    options,
    rules,
    parse: (argv) => parseWith(cmd, argv) as unknown as Parsed<O & GroupOptions<G>>,
    usage: () => usageLine(cmd),
    help: () => helpText(cmd, def),
  };
  return cmd;
}

// ---------------- parsing ----------------

function parseArgsConfig(options: OptionSpecs): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(Object.entries(options).map(([n, o]) => [n, { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.repeatable ? { multiple: true } : {}) }]));
}

function isNumeric(o: OptionSpec | undefined): boolean {
  return !!o && (o.kind === 'number' || o.kind === 'integer' || (o.kind === 'list' && o.of !== undefined && o.of !== 'string'));
}

/** `--min-saving -0.5` as `--min-saving=-0.5`: parseArgs takes a leading dash for an option. */
function joinNegativeNumbers(argv: string[], options: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : '';
    const next = argv[i + 1];
    if (argv[i] === '--') return [...out, ...argv.slice(i)];
    if (Object.hasOwn(options, name) && isNumeric(options[name]) && next !== undefined && /^-(\d|\.\d)/.test(next)) out.push(`${argv[i++]}=${next}`);
    else out.push(argv[i]);
  }
  return out;
}

function tokenise(argv: string[], options: OptionSpecs): { raw: Record<string, unknown>; positionals: string[] } {
  try {
    const r = parseArgs({ args: joinNegativeNumbers(argv, options), options: parseArgsConfig(options), allowPositionals: true, strict: true, tokens: true });
    // parseArgs keeps the last of a repeated option: `--k 10 --k 5` would quietly mean 5
    const seen = new Set<string>();
    for (const t of r.tokens ?? []) {
      if (t.kind !== 'option' || options[t.name]?.repeatable) continue;
      if (seen.has(t.name)) throw new UsageError(`--${t.name} is given more than once: give it once`);
      seen.add(t.name);
    }
    return { raw: r.values as Record<string, unknown>, positionals: r.positionals };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // Node appends a hint on '--' and positionals (with an unbalanced quote) to "Unknown option '--x'"
    const message = (e as Error).message.replace(/^(Unknown option '[^']*')\. To specify a positional argument.*$/s, '$1');
    const unknown = /^Unknown option '--([^'=]+)'$/.exec(message);
    const near = unknown ? closestName(unknown[1], Object.keys(options), (s) => s.toLowerCase().replace(/[-_]/g, '')) : undefined;
    throw new UsageError(near ? `${message}; did you mean --${near}?` : message);
  }
}

function checkPositionals(specs: readonly PositionalSpec[], got: string[]): void {
  const variadic = specs.at(-1)?.variadic === true;
  if (!variadic && got.length > specs.length) throw new UsageError(`unexpected argument '${got[specs.length]}'`);
  const missing = specs.find((p, i) => p.required && got[i] === undefined);
  if (missing) throw new UsageError(`missing <${missing.name}>: ${missing.description}`);
}

function parseWith(cmd: Command<unknown>, argv: string[]): Parsed<OptionSpecs> {
  const { raw, positionals } = tokenise(argv, cmd.options);
  checkPositionals(cmd.positionals, positionals);
  const given = new Set(Object.keys(raw).filter((n) => raw[n] !== undefined));
  for (const [n, o] of Object.entries(cmd.options)) {
    if (o.required && !given.has(n)) throw new UsageError(typeof o.required === 'string' ? o.required : `--${n} ${valueNameOf(o)} is required`);
  }
  for (const r of cmd.rules) checkRule(r, given, cmd.options);
  const values: Record<string, unknown> = {};
  for (const [n, o] of Object.entries(cmd.options)) values[n] = given.has(n) ? convert(n, o, raw[n]) : absent(o);
  return { values: values as OptionValues<OptionSpecs>, positionals, given };
}

function ruleNames(r: Rule): readonly string[] {
  if ('exclusive' in r) return r.exclusive;
  if ('requires' in r) return [r.requires, ...r.when];
  return r.anyOf;
}

function flagText(n: string, o: OptionSpec): string {
  return o.kind === 'boolean' ? `--${n}` : `--${n} ${valueNameOf(o)}`;
}

/** The message a broken rule gives (the same text is listed in the help). */
export function ruleMessage(r: Rule, options: OptionSpecs): string {
  if (r.message) return r.message;
  if ('exclusive' in r) return `give ${r.exclusive.map((n) => `--${n}`).join(' or ')}, not both`;
  if ('requires' in r) return `${r.when.map((n) => `--${n}`).join(' / ')} ${r.when.length > 1 ? 'need' : 'needs'} ${flagText(r.requires, options[r.requires])}`;
  return `give ${r.anyOf.map((n) => flagText(n, options[n])).join(' or ')}`;
}

function checkRule(r: Rule, given: ReadonlySet<string>, options: OptionSpecs): void {
  let broken: boolean;
  if ('exclusive' in r) broken = r.exclusive.filter((n) => given.has(n)).length > 1;
  else if ('requires' in r) broken = !given.has(r.requires) && r.when.some((n) => given.has(n));
  else broken = !r.anyOf.some((n) => given.has(n));
  if (broken) throw new UsageError(ruleMessage(r, options));
}

function absent(o: OptionSpec): unknown {
  if (o.kind === 'boolean') return false;
  if (o.default === undefined) return undefined;
  return Array.isArray(o.default) ? [...o.default] : o.default;
}

function convert(name: string, o: OptionSpec, raw: unknown): unknown {
  if (o.kind === 'boolean') return raw === true;
  if (!o.repeatable) return convertOne(name, o, raw as string);
  const each = (raw as string[]).map((r) => convertOne(name, o, r));
  return o.kind === 'list' ? each.flat() : each;
}

function convertOne(name: string, o: OptionSpec, raw: string): unknown {
  switch (o.kind) {
    case 'number':
    case 'integer':
      return numberValue(name, o, o.kind, raw, raw);
    case 'choice':
      if (!o.choices!.includes(raw)) throw new UsageError(o.invalidMessage ? `${o.invalidMessage}, got '${raw}'` : `--${name} must be ${choicesText(o.choices!)}, got '${raw}'`);
      return raw;
    case 'list':
      return listValue(name, o, raw);
    default:
      return raw;
  }
}

function listValue(name: string, o: OptionSpec, raw: string): unknown[] {
  const items = raw.split(',').map((s) => s.trim());
  if ((o.of ?? 'string') === 'string') {
    const names = items.filter((s) => s !== '');
    if (names.length === 0) throw new UsageError(o.invalidMessage ?? `--${name} needs at least one name, got '${raw}'`);
    return names;
  }
  return items.map((s) => numberValue(name, o, o.of as 'number' | 'integer', s, raw));
}

function numberValue(name: string, o: OptionSpec, kind: 'number' | 'integer', text: string, whole: string): number {
  const n = Number(text);
  if (text.trim() !== '' && Number.isFinite(n) && (kind === 'number' || Number.isInteger(n)) && inRange(o, n)) return n;
  const where = whole !== text ? ` in '${whole}'` : '';
  throw new UsageError(o.invalidMessage ? `${o.invalidMessage}, got '${text}'${where}` : `--${name} must be ${numberText(o, kind)}, got '${text}'${where}`);
}

/** The range check of a number option (exported for the checks whose bound depends on another option). */
export function inRange(o: Pick<OptionSpec, 'min' | 'max' | 'minExclusive' | 'maxExclusive'>, n: number): boolean {
  if (o.min !== undefined && (o.minExclusive ? n <= o.min : n < o.min)) return false;
  return !(o.max !== undefined && (o.maxExclusive ? n >= o.max : n > o.max));
}

function rangeText(o: OptionSpec): string {
  const lo = o.min !== undefined && o.min > -Infinity, hi = o.max !== undefined && o.max < Infinity;
  if (lo && hi) return ` in ${o.minExclusive ? '(' : '['}${o.min}, ${o.max}${o.maxExclusive ? ')' : ']'}`;
  if (lo) return ` ${o.minExclusive ? '>' : '>='} ${o.min}`;
  if (hi) return ` ${o.maxExclusive ? '<' : '<='} ${o.max}`;
  return '';
}

/** "a number in [0, 1]", "a positive integer up to 1000", "an integer in [2, 9]". */
export function numberText(o: OptionSpec, kind: 'number' | 'integer'): string {
  if (kind === 'number') return `a number${rangeText(o)}`;
  const hi = o.max !== undefined && o.max < Infinity ? ` up to ${o.max}` : '';
  if (o.min === 1 && !o.minExclusive) return `a positive integer${hi}`;
  if (o.min === 0 && !o.minExclusive) return `a non-negative integer${hi}`;
  return `an integer${rangeText(o)}`;
}

/** "'a' or 'b'" for two choices, "a, b or c" for more (the messages scripts already match). */
function choicesText(c: readonly string[]): string {
  if (c.length === 2) return `'${c[0]}' or '${c[1]}'`;
  return `${c.slice(0, -1).join(', ')} or ${c[c.length - 1]}`;
}

// ---------------- help ----------------

const DEFAULT_VALUE_NAME: Record<OptionKind, string> = { string: 'VALUE', number: 'X', integer: 'N', boolean: '', choice: '', list: 'A,B', path: 'PATH' };

export function valueNameOf(o: OptionSpec): string {
  if (o.valueName) return o.valueName;
  if (o.kind === 'choice') return o.choices!.join('|');
  if (o.kind === 'list' && o.of && o.of !== 'string') return o.of === 'integer' ? 'N,N' : 'X,X';
  return DEFAULT_VALUE_NAME[o.kind];
}

function positionalText(p: PositionalSpec): string {
  const name = p.variadic ? `${p.name}...` : p.name;
  return p.required ? `<${name}>` : `[${name}]`;
}

function usageLine(cmd: Command<unknown>): string {
  const required = Object.entries(cmd.options).filter(([, o]) => o.required).map(([n, o]) => flagText(n, o));
  for (const r of cmd.rules) if ('anyOf' in r) required.push(`(${r.anyOf.map((n) => flagText(n, cmd.options[n])).join(' | ')})`);
  const rest = Object.values(cmd.options).some((o) => !o.required) ? ['[options]'] : [];
  return ['prunescope', cmd.name, ...cmd.positionals.map(positionalText), ...required, ...rest].join(' ');
}

function defaultText(o: OptionSpec): string | undefined {
  if (o.defaultText) return o.defaultText;
  if (o.default === undefined) return undefined;
  return Array.isArray(o.default) ? o.default.join(',') : String(o.default);
}

/** What the parser will check, in words, after the description. */
function optionNotes(o: OptionSpec): string[] {
  const notes: string[] = [];
  if (o.kind === 'number' || o.kind === 'integer') notes.push(numberText(o, o.kind));
  if (o.kind === 'list' && o.of && o.of !== 'string') notes.push(`each ${numberText(o, o.of)}`);
  if (o.required) notes.push('required');
  if (o.repeatable) notes.push('may be repeated');
  const d = defaultText(o);
  if (d !== undefined) notes.push(`default: ${d}`);
  return notes;
}

const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

/** Two columns: the term, then its wrapped text (a long term puts the text on the next line). */
function table(rows: Array<[string, string]>): string[] {
  const col = Math.min(32, Math.max(...rows.map(([t]) => t.length)) + 2);
  const out: string[] = [];
  for (const [term, text] of rows) {
    const body = wrap(text, WIDTH - col - 2);
    const first = term.length + 2 <= col ? [`  ${term.padEnd(col)}${body.shift() ?? ''}`] : [`  ${term}`];
    out.push(...first, ...body.map((l) => `  ${' '.repeat(col)}${l}`));
  }
  return out;
}

function helpText(cmd: Command<unknown>, def: { examples?: readonly string[]; notes?: readonly string[] }): string {
  const lines = [`Usage: ${cmd.usage()}`, '', ...wrap(cmd.summary, WIDTH)];
  if (cmd.positionals.length) lines.push('', 'Arguments:', ...table(cmd.positionals.map((p) => [positionalText(p), p.description])));
  const rows = Object.entries(cmd.options).map(([n, o]): [string, string] => {
    const notes = optionNotes(o);
    return [flagText(n, o), `${o.description}${notes.length ? ` (${notes.join('; ')})` : ''}`];
  });
  if (rows.length) lines.push('', 'Options:', ...table(rows));
  const rules = [...cmd.rules.map((r) => ruleMessage(r, cmd.options)), ...(def.notes ?? [])];
  if (rules.length) lines.push('', 'Rules:', ...rules.flatMap((r) => wrap(r, WIDTH - 4).map((l, i) => `${i ? '    ' : '  - '}${l}`)));
  if (def.examples?.length) lines.push('', 'Examples:', ...def.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}
