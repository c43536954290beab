// The run history of a workspace: one JSON file per finished job in `<workspace>/.prunescope/runs/`
// (RunRecord in shared/protocol.ts). Records hold what went in, what came out and how it measured,
// never a model. A record is written to a temp file and renamed, so a reader never sees half of
// one; files that are not records (corrupt, foreign, a newer schema) are skipped with a log line.

import { writeFileAtomic } from '../model/atomic-write.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunRecord } from '../../shared/protocol.js';

/** The history's folder, relative to the workspace folder. */
export const RUNS_DIR = '.prunescope/runs';

const ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{4,16}$/;
const KINDS: ReadonlySet<string> = new Set<RunRecord['kind']>(['compress', 'compress-plan', 'tree-remove', 'tree-features', 'compare']);

const README = `# PruneScope run history

One JSON file per finished PruneScope job (compress, compress to target, tree removal, tree
features, compare) run in this workspace: the input model, the recipe, the files written, the
dataset, sizes, accuracy, latency, backend and duration. Paths are relative to the workspace
folder. The Models view lists these runs under each model and compares them side by side.

No model is ever copied here. This folder is safe to delete (the history starts again empty);
add \`.prunescope/\` to .gitignore if you do not want to share it.
`;

/** A new record id: the start time (UTC, to the second) and a random suffix, sortable as text. */
export function newRunId(start: Date, suffix = randomBytes(2).toString('hex')): string {
  const iso = start.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${iso}-${suffix}`;
}

export function isRunId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** The record's required fields are there and typed (a file someone else wrote is not trusted). */
export function isRunRecord(x: unknown): x is RunRecord {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const r = x as Record<string, unknown>;
  const bytes = r.bytes as Record<string, unknown> | undefined;
  return (
    r.version === 1 &&
    isRunId(r.id) &&
    typeof r.kind === 'string' &&
    KINDS.has(r.kind) &&
    typeof r.title === 'string' &&
    typeof r.model === 'string' &&
    Array.isArray(r.outputs) &&
    r.outputs.every((o) => typeof o === 'string') &&
    typeof r.startedAt === 'string' &&
    isNum(r.seconds) &&
    typeof bytes === 'object' &&
    bytes !== null &&
    isNum(bytes.before) &&
    isNum(bytes.after)
  );
}

export class RunHistory {
  readonly dir: string;

  /**
   * @param workspace the workspace folder (absolute)
   * @param log where skipped files are reported
   */
  constructor(
    readonly workspace: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.dir = join(workspace, RUNS_DIR);
  }

  /** Writes the record as `<id>.json` (temp file + rename) and the folder's README when missing. */
  async append(record: RunRecord): Promise<string> {
    if (!isRunRecord(record)) throw new Error(`not a run record: ${JSON.stringify(record).slice(0, 200)}`);
    await mkdir(this.dir, { recursive: true });
    await this.writeReadme();
    const file = join(this.dir, `${record.id}.json`);
    if (existsSync(file)) throw new Error(`run ${record.id} already exists`);
    await writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(record, null, 2) + '\n'));
    return file;
  }

  private async writeReadme(): Promise<void> {
    const file = join(this.dir, 'README.md');
    if (existsSync(file)) return;
    await writeFileAtomic(file, new TextEncoder().encode(README));
  }

  /** Every readable record, newest first; only those of `model` (as stored: workspace-relative) when given. */
  async list(model?: string): Promise<RunRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: RunRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const r = await this.readFile(name);
      if (r && (model === undefined || r.model === model)) out.push(r);
    }
    return out.sort((a, b) => (a.startedAt === b.startedAt ? b.id.localeCompare(a.id) : b.startedAt.localeCompare(a.startedAt)));
  }

  async read(id: string): Promise<RunRecord | undefined> {
    if (!isRunId(id)) return undefined;
    return this.readFile(`${id}.json`);
  }

  /** Removes one record file; false when there was none. */
  async delete(id: string): Promise<boolean> {
    if (!isRunId(id)) return false;
    const file = join(this.dir, `${id}.json`);
    if (!existsSync(file)) return false;
    await rm(file);
    return true;
  }

  private async readFile(name: string): Promise<RunRecord | undefined> {
    const file = join(this.dir, name);
    let data: unknown;
    try {
      data = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      this.log(`run history: skipped ${file}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
    if (!isRunRecord(data)) {
      this.log(`run history: skipped ${file}: not a PruneScope run record (version 1)`);
      return undefined;
    }
    if (`${data.id}.json` !== name) {
      this.log(`run history: skipped ${file}: its id ${data.id} does not match the file name`);
      return undefined;
    }
    return data;
  }
}
