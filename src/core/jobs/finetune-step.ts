// The fine-tuning that follows a compression step in one job (prune-steps.ts, quantize-steps.ts):
// what the user gives and the finetune settings it becomes.

/** Fine-tuning after a compression step. */
export interface FinetuneAfter {
  data: string;
  epochs: number;
  lr?: number;
  batchSize?: number;
  outputKind?: string;
  /** the uncompressed model whose scores are soft targets; omitted: labels only */
  teacher?: string;
}

/** The finetune step's settings for `ft` (learning rate 0.001 and batches of 1024 unless given), plus the method's own. */
export function finetuneSettings(ft: FinetuneAfter, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    data: ft.data,
    epochs: ft.epochs,
    lr: ft.lr ?? 0.001,
    batchSize: ft.batchSize ?? 1024,
    ...extra,
    ...(ft.outputKind !== undefined ? { outputKind: ft.outputKind } : {}),
    ...(ft.teacher !== undefined ? { teacher: ft.teacher } : {}),
  };
}

/** The FinetuneAfter of a command line's --finetune options (prune, quantize): the original teaches unless --no-teacher. */
export function finetuneFromOptions(
  o: { finetune?: string; epochs: number; lr: number; 'batch-size': number; 'output-kind'?: string; 'no-teacher': boolean },
  model: string,
): FinetuneAfter | undefined {
  if (!o.finetune) return undefined;
  return {
    data: o.finetune,
    epochs: o.epochs,
    lr: o.lr,
    batchSize: o['batch-size'],
    ...(o['output-kind'] !== undefined ? { outputKind: o['output-kind'] } : {}),
    ...(o['no-teacher'] ? {} : { teacher: model }),
  };
}
