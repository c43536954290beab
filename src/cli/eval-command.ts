// `prunescope eval MODEL --candidates FILE.csv [--k 10] [--user-input NAME] [--item-input NAME]
// [--fields-input NAME] [--data FILE.csv] [--latency] [--backend auto|tfjs-node|webgpu|wasm|cpu]
// [--ep cpu|webgpu|cuda|auto] [--json]`:
// HR@K / NDCG@K on the candidates (ties count against the positive), AUC / logloss when the
// labels allow, size and gzip size, the runtime that ran it: the ORT execution provider (--ep,
// ONNX models) or the TF.js backend (--backend, model.json), and why that one.

import { basename, resolve } from 'node:path';
import { evaluateModel, EvaluationResult } from '../core/eval/evaluate.js';
import { TfjsBackendPreference } from '../core/runtime/tfjs-backend.js';
import { ExecutionProviderReport, isOrtEpPreference, ORT_EP_PREFERENCES, OrtEpPreference } from '../core/runtime/ort-providers.js';
import { UsageError } from './args.js';
import { EVAL } from './command-specs.js';

/** --ep (its choices checked by the spec) applies to ONNX models only: TF.js takes --backend. */
export function epFor(value: string | undefined, model: string): OrtEpPreference | undefined {
  if (value === undefined) return undefined;
  if (!isOrtEpPreference(value)) throw new UsageError(`--ep must be one of ${ORT_EP_PREFERENCES.join(', ')}, got '${value}'`);
  if (!/\.onnx$/i.test(model)) throw new UsageError('--ep picks the ONNX Runtime execution provider: it applies to .onnx models (TF.js models take --backend)');
  return value;
}

/** "webgpu (forced): ORT's WebGPU provider on ..." */
export function formatExecution(e: ExecutionProviderReport | undefined): string | undefined {
  return e ? `${e.name} (${e.selection}): ${e.reason}` : undefined;
}

function fmt(x: number | undefined, digits = 4): string {
  return x === undefined ? 'n/a' : x.toFixed(digits);
}

export function formatEvaluation(r: EvaluationResult): string {
  const lines = [`model    ${r.model} (${r.format}, ${r.runtime})`];
  const ran = formatExecution(r.executionProvider);
  if (ran) lines.push(`ran on   ${ran}`);
  if (r.hr !== undefined) {
    const random = (x: number | undefined) => (x === undefined ? '' : `  (a random order: ${fmt(x)})`);
    lines.push(`HR@${r.k}    ${fmt(r.hr)}${random(r.chance?.hr)}`, `NDCG@${r.k}  ${fmt(r.ndcg)}${random(r.chance?.ndcg)}`, `users    ${r.users} (${fmt(r.candidatesPerUser, 1)} candidates each)`);
    if (r.candidatesPerUser !== undefined && r.k >= r.candidatesPerUser) {
      lines.push(`note     K = ${r.k} is not below the candidates per user (${fmt(r.candidatesPerUser, 1)} on average): most positives are in the top ${r.k} whatever the model, so HR@${r.k} says little`);
    }
    const without = r.usersWithoutPositive ?? 0;
    if (without > 0) {
      lines.push(`note     ${without} ${without === 1 ? 'user has' : 'users have'} no positive row in the candidates: not ranked (HR and NDCG are over the ${r.users} with one)`);
    }
    const alone = r.usersWithoutNegatives ?? 0;
    if (alone > 0) {
      lines.push(`note     ${alone} of the ${r.users} ranked users ${alone === 1 ? 'has' : 'have'} no negative candidate: each counts as a hit at rank 1 whatever the model`);
    }
    const twice = r.positivesAsNegatives;
    if (twice && twice.users > 0) {
      lines.push(
        `note     ${twice.users} of the ${r.users} ranked users ${twice.users === 1 ? 'has' : 'have'} their positive item among their negatives too` +
          `${twice.first ? ` (first: user ${twice.first.user}, item ${twice.first.item})` : ''}: that copy ties with the positive and counts against it, so none of them can hit at rank 1; drop those rows`,
      );
    }
    if (r.chance?.atChance) {
      const below = r.ndcg !== undefined && r.ndcg < r.chance.ndcg - 3 * r.chance.ndcgSd;
      lines.push(
        below
          ? `warning  the model ranks the positives below a random order (NDCG@${r.k} ${fmt(r.ndcg)} against ${fmt(r.chance.ndcg)}, more than 3 x ${fmt(r.chance.ndcgSd)} under it): ` +
              'ties count against the positive, so a model that scores many candidates alike (a constant output) ranks it last; ' +
              "otherwise check that the ids are the model's table rows (0-based, as it was trained) and the labels its positives"
          : `warning  the model ranks these candidates no better than a random order (NDCG@${r.k} within 3 x ${fmt(r.chance.ndcgSd)} of it): ` +
              `check that their ids are the model's table rows (0-based, as it was trained) and their labels its positives`,
      );
    }
  }
  // with --candidates and --data both, these come from --data: each line says which file
  const on = r.labelledFile ? `  (on ${basename(r.labelledFile)}, ${r.labelledRows} rows)` : '';
  if (r.auc !== undefined || r.logloss !== undefined) lines.push(`AUC      ${fmt(r.auc)}${on}`, `logloss  ${fmt(r.logloss)}${on}`);
  if (r.rmse !== undefined) lines.push(`RMSE     ${fmt(r.rmse)}${on}`, `MAE      ${fmt(r.mae)}${on}`);
  if (r.labelsAsRatings) lines.push(`note     ${r.labelsAsRatings}`);
  lines.push(`params   ${r.params}`, `size     ${r.bytes} bytes (gzip ${r.gzipBytes})`);
  for (const p of r.latency?.points ?? []) {
    lines.push(`batch ${String(p.batch).padStart(5)}: p50 ${p.p50Ms.toFixed(3)} ms, p95 ${p.p95Ms.toFixed(3)} ms, ${Math.round(p.pairsPerSecond)} pairs/s`);
  }
  return lines.join('\n');
}

export async function evalCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = EVAL.parse(argv);
  const ep = epFor(o.ep, positionals[0]);
  const result = await evaluateModel(resolve(positionals[0]), {
    candidates: o.candidates ? resolve(o.candidates) : undefined,
    data: o.data ? resolve(o.data) : undefined,
    k: o.k,
    userInput: o['user-input'],
    itemInput: o['item-input'],
    fieldsInput: o['fields-input'],
    columns: { user: o['user-column'], item: o['item-column'], label: o['label-column'] },
    latency: o.latency,
    backend: o.backend as TfjsBackendPreference | undefined,
    ep,
  });
  if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(formatEvaluation(result) + '\n');
  return 0;
}
