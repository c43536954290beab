// Job specs and the messages between a job's host (extension host or CLI) and its worker thread.

import type { ModelReport } from '../../shared/report.js';

export interface AnalyzeJobSpec {
  kind: 'analyze';
  path: string;
  epsilon?: number;
  spectrum?: boolean;
}

export type JobSpec = AnalyzeJobSpec;

export interface JobResultMap {
  analyze: ModelReport;
}

export interface JobProgress {
  /** e.g. 'reading', 'analysing' */
  phase: string;
  /** 0..1 over the whole job */
  fraction: number;
  /** what is being worked on, e.g. a tensor name */
  detail?: string;
  /** seconds left, estimated from the rate so far; null until known */
  etaSeconds: number | null;
}

export type WorkerToHost =
  | { type: 'progress'; progress: JobProgress }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string; cancelled: boolean };

export type HostToWorker = { type: 'start'; spec: JobSpec } | { type: 'cancel' };
