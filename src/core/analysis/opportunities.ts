// Ranks what could be done to a model, with the bytes each step would save on disk. Each rule is
// stated from the numbers of the report, so the reason can be shown next to the suggestion.

import { dtypeByteSize, isFloatDtype } from '../model/dtype.js';
import { formatBytes as formatBytesShared } from '../../shared/format.js';
import type { ModelReport, Opportunity, TensorReport } from '../../shared/report.js';

/** an embedding table is worth row pruning from this share of near-zero rows */
export const MIN_NEAR_ZERO_ROW_SHARE = 0.05;
/** int8 is suggested while its relative RMSE stays below this; float16 is suggested above it */
export const MAX_INT8_REL_RMSE = 0.02;
/** tensors smaller than this are not worth a suggestion of their own */
export const MIN_TENSOR_PARAMS = 1024;
/** unstructured sparsity from which the "zeros buy no speed" note is given */
export const HIGH_SPARSITY = 0.5;


/** "1.5 KB", "600 MB": the CLI's and the findings' short form (src/shared/format.ts). */
export function formatBytes(n: number): string {
  return formatBytesShared(n, true);
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** bytes per stored element of a float tensor that is stored unquantized (0 otherwise) */
function storedFloatBytes(t: TensorReport): number {
  if (t.storedDtype !== t.dtype) return 0;
  return isFloatDtype(t.storedDtype) ? dtypeByteSize(t.storedDtype) : 0;
}

export function findOpportunities(
  report: Pick<ModelReport, 'tensors' | 'trainableParams'> & { format?: string },
  functions: { names?: string; readInside?: ReadonlySet<string> } = {},
  /**
   * Tables read inside subgraphs (compress/subgraph-lookups.ts): `quantizeOnly` are gathered by
   * rows one level down (an nn.EmbeddingBag export's Loop), where quantization rewrites the
   * lookups and rows or low rank do not; `untouched` are read there otherwise, and no method
   * rewrites them.
   */
  subgraphs: { quantizeOnly?: ReadonlySet<string>; untouched?: ReadonlySet<string> } = {},
): Opportunity[] {
  const localFunctions = functions.names;
  const out: Opportunity[] = [];
  for (const t of report.tensors) {
    if (!t.trainable || t.params < MIN_TENSOR_PARAMS) continue;
    // read inside a local function: no method rewrites it (the note below says so)
    if (functions.readInside?.has(t.name) || subgraphs.untouched?.has(t.name)) continue;
    const quantizeOnly = subgraphs.quantizeOnly?.has(t.name) === true;
    // stored as codes: factorizing, pruning or quantizing again works on the float model, not on this file
    if (t.storedAs) continue;
    // NaN / Inf weights: the model is broken where they are read; compressing it changes nothing of that
    if (t.nonFinite > 0) continue;
    const elemBytes = t.params > 0 ? t.bytes / t.params : 0;
    const share = report.trainableParams > 0 ? t.params / report.trainableParams : 0;

    if (t.role === 'embedding' && t.rows && t.rows.rows > 0 && !quantizeOnly) {
      const f = t.rows.nearZeroRows / t.rows.rows;
      if (f >= MIN_NEAR_ZERO_ROW_SHARE) {
        // suggest the near-zero share rounded down to 5%: the rows beyond it are not all dead
        const suggest = Math.max(MIN_NEAR_ZERO_ROW_SHARE, Math.floor(f * 20) / 20);
        const rowsCut = Math.floor(suggest * t.rows.rows);
        out.push({
          kind: 'prune-rows',
          target: t.name,
          title: `${t.name}: ${pct(f)} of rows have near-zero norm — prune ${pct(suggest)} of rows`,
          estimatedSavingBytes: Math.round(rowsCut * t.rows.dim * elemBytes),
          detail:
            `${t.rows.nearZeroRows} of ${t.rows.rows} rows (${t.rows.zeroRows} exactly zero) have an L2 norm <= ${t.rows.nearZeroRowNorm.toPrecision(3)} ` +
            `(1% of the p95 row norm ${t.rows.normQuantiles.p95.toPrecision(3)}); the table holds ${pct(share)} of the trainable parameters. ` +
            `Removing the rows remaps ids: keep a lookup from old to new ids, or map pruned ids to a shared zero row.`,
        });
      }
    }

    const fb = storedFloatBytes(t);
    // a table gathered on axis 1 ([dim, ids]): quantize rewrites lookups of rows (axis 0) only
    const columnLookups = t.role === 'embedding' && t.transposed;
    if (fb > 1 && t.quantError && t.role !== 'bias' && t.role !== 'norm' && !columnLookups) {
      const q = t.quantError;
      const scales = q.int8.granularity === 'per-row' ? t.shape[0] ?? 1 : q.int8.granularity === 'per-output-channel' ? t.shape[t.shape.length - 1] ?? 1 : 1;
      // quantize stores per-row scales as float16 where they fit its range (nearly always), others as float32
      const scaleBytes = q.int8.granularity === 'per-row' ? 2 : 4;
      // TF.js: the manifest's uint8 affine quantization (a scale and a min per tensor)
      const tfjs = report.format?.startsWith('tfjs') === true;
      const int8Bytes = t.params + (tfjs ? 0 : scales * scaleBytes);
      const rel = q.int8.relRmse;
      if (rel !== null && rel <= MAX_INT8_REL_RMSE && t.bytes > int8Bytes) {
        out.push({
          kind: 'quantize-int8',
          target: t.name,
          title: `${t.name}: ${tfjs ? 'uint8 per tensor (manifest quantization)' : `int8 ${q.int8.granularity}`} — ${formatBytes(t.bytes)} → ${formatBytes(int8Bytes)}, relative RMSE ${(rel * 100).toFixed(2)}%`,
          estimatedSavingBytes: t.bytes - int8Bytes,
          detail:
            (tfjs
              ? `8 bits per weight with one scale and min for the tensor in the manifest (TF.js has no per-row scales); its error is about that of symmetric int8 per tensor: max abs error ${q.int8.maxAbs?.toPrecision(3)}, RMSE ${q.int8.rmse?.toPrecision(3)}. `
              : `Symmetric int8 with ${scales} ${scaleBytes === 2 ? 'float16' : 'float32'} scale(s): max abs error ${q.int8.maxAbs?.toPrecision(3)}, RMSE ${q.int8.rmse?.toPrecision(3)}. `) +
            `Check accuracy against the float model on the target runtime.`,
        });
      } else if (fb > 2 && q.float16.overflow === 0 && q.float16.relRmse !== null) {
        out.push({
          kind: 'quantize-float16',
          target: t.name,
          title: `${t.name}: float16 — ${formatBytes(t.bytes)} → ${formatBytes(t.params * 2)}, relative RMSE ${(q.float16.relRmse * 100).toFixed(3)}%`,
          estimatedSavingBytes: t.bytes - t.params * 2,
          detail: `int8 would cost a relative RMSE of ${rel === null ? 'n/a' : (rel * 100).toFixed(2) + '%'}; float16 keeps max abs error ${q.float16.maxAbs?.toPrecision(3)}.`,
        });
      }
    }

    const sp = t.spectrum;
    if (sp && sp.rankFor95 !== null && t.shape.length >= 2 && (t.role === 'embedding' || t.role === 'dense-kernel' || t.role === 'weight') && !quantizeOnly) {
      const m = t.shape[0];
      const n = t.params / m;
      const r = sp.rankFor95;
      const after = r * (m + n);
      if (after < m * n * 0.75) {
        out.push({
          kind: 'factorize',
          target: t.name,
          title: `${t.name}: 95% of the energy in rank ${r} of ${sp.fullRank} — factorize [${m}×${n}] into [${m}×${r}]·[${r}×${n}]`,
          estimatedSavingBytes: Math.round((m * n - after) * elemBytes),
          detail:
            `Singular values ${sp.exact ? 'exact' : `estimated (${sp.method})`}; rank for 90/95/99% energy: ${sp.rankFor90 ?? '>64'}/${r}/${sp.rankFor99 ?? '>64'}. ` +
            `Factorizing keeps ${r * (m + n)} of ${m * n} parameters; fine-tune afterwards.`,
        });
      }
    }

    if (t.role === 'dense-kernel' && t.deadNeurons && t.deadNeurons > 0 && t.shape.length === 2) {
      const fanIn = t.transposed ? t.shape[1] : t.shape[0];
      out.push({
        kind: 'prune-neurons',
        target: t.name,
        title: `${t.name}: ${t.deadNeurons} dead output neuron(s) — remove them and the inputs they feed`,
        estimatedSavingBytes: Math.round(t.deadNeurons * fanIn * elemBytes),
        detail: `All weights of ${t.deadNeurons} output neuron(s) are exactly zero; structured removal shrinks this layer and the next one.`,
      });
    }

    const sparsity = t.params > 0 ? t.zeros / t.params : 0;
    if (sparsity >= HIGH_SPARSITY && t.role !== 'embedding') {
      out.push({
        kind: 'note',
        target: t.name,
        title: `${t.name}: ${pct(sparsity)} zeros stored densely — they save no bytes and no time unless structured`,
        estimatedSavingBytes: 0,
        detail:
          'Unstructured zeros in a dense tensor keep its size on disk and its latency (dense kernels multiply zeros too). ' +
          'Gain from them with structured pruning (whole neurons or rows), sparse storage with compression, or int8.',
      });
    }
  }
  out.sort((a, b) => b.estimatedSavingBytes - a.estimatedSavingBytes || a.target.localeCompare(b.target));
  if (localFunctions) {
    // first: it explains why tables may show as plain weights and the list above may be short
    out.unshift({
      kind: 'note',
      target: localFunctions,
      title: `The graph calls ONNX local functions (${localFunctions}): the weights read inside them show as plain weights and are not compressed`,
      estimatedSavingBytes: 0,
      detail:
        'The model was exported with its modules as functions (torch.onnx.export(..., export_modules_as_functions=True)): the lookups and layers inside a function are not in the graph PruneScope reads and rewrites. ' +
        'Inline them first (Python: onnx.inliner.inline_local_functions(model), onnx 1.15 or later, or export again without that option) and open the inlined file.',
    });
  }
  return out;
}
