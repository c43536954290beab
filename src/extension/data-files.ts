// Which CSV files a job measures and trains on: the settings (prunescope.datasetPath for
// validation candidates, prunescope.trainingDataPath for training interactions), else a choice
// among the workspace's CSV files, remembered per workspace.

import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { browseCsv, pickOne } from './dialogs.js';
import { datasetFile, readSettings, trainingDataFile } from './settings.js';

const CANDIDATES_KEY = 'prunescope.data.candidates';
const TRAINING_KEY = 'prunescope.data.training';

type CsvItem = vscode.QuickPickItem & { value: string };

export class DataFiles {
  constructor(private readonly state: vscode.Memento) {}

  /** Training interactions known without asking: the setting, else the remembered choice. */
  knownTraining(scope?: vscode.Uri): string | undefined {
    return trainingDataFile(readSettings(scope)) ?? this.remembered(TRAINING_KEY);
  }

  rememberTraining(file: string): Thenable<void> {
    return this.state.update(TRAINING_KEY, file);
  }

  /** Validation candidates (user,item,label): the setting, else asked (remembered choice first). */
  async chooseCandidates(model: vscode.Uri, title: string): Promise<string | undefined> {
    const set = datasetFile(readSettings(model));
    if (set) return set;
    const file = await this.pick(model, title, this.remembered(CANDIDATES_KEY), false);
    if (file) await this.state.update(CANDIDATES_KEY, file);
    return file || undefined;
  }

  /**
   * Training interactions: the setting, else asked (remembered choice first). '' is the
   * "training-free" answer (when allowed); undefined a cancelled dialog.
   */
  async chooseTraining(model: vscode.Uri, title: string, allowNone: boolean): Promise<string | undefined> {
    const set = trainingDataFile(readSettings(model));
    if (set) return set;
    const file = await this.pick(model, title, this.remembered(TRAINING_KEY), allowNone);
    if (file) await this.rememberTraining(file);
    return file;
  }

  private remembered(key: string): string | undefined {
    const f = this.state.get<string>(key);
    return f && existsSync(f) ? f : undefined;
  }

  /** The workspace's CSV files, "Browse…", and optionally "Training-free"; '' for training-free. */
  private async pick(model: vscode.Uri, title: string, last: string | undefined, allowNone: boolean): Promise<string | undefined> {
    const csvs = await vscode.workspace.findFiles('**/*.csv', '**/node_modules/**', 50);
    const items: CsvItem[] = csvs.map((u) => ({ label: vscode.workspace.asRelativePath(u), value: u.fsPath, description: u.fsPath === last ? 'last used' : undefined }));
    if (last && !items.some((i) => i.value === last)) items.unshift({ label: vscode.workspace.asRelativePath(last), value: last, description: 'last used' });
    if (allowNone) items.unshift({ label: 'Training-free (no fine-tuning)', value: '', detail: 'Only cuts, quantization and low rank; no candidate is fine-tuned or distilled' });
    items.push({ label: 'Browse…', value: 'browse' });
    const pick = await pickOne(items, title, last ?? (allowNone ? '' : undefined));
    if (!pick) return undefined;
    if (pick.value === 'browse') return browseCsv(model);
    return pick.value;
  }
}
