// Scripted answers for the commands' dialogs (quick picks, input boxes), for the integration
// tests and for automation: a test queues answers through the extension's API, and the next
// dialogs take them instead of showing. With an empty queue every dialog shows as usual.

const queue: string[] = [];

/** Queues answers: for a quick pick an item's label (exact, else the first label containing it), for an input box the text. */
export function answerDialogs(answers: readonly string[]): void {
  queue.push(...answers);
}

/** Drops unused answers (a test that failed midway must not leak them into the next one). */
export function clearDialogAnswers(): number {
  return queue.splice(0).length;
}

/** The next scripted answer, if any. */
export function takeDialogAnswer(): string | undefined {
  return queue.shift();
}

/** The item a scripted answer names; throws naming the dialog when none matches. */
export function scriptedPick<T extends { label: string }>(items: readonly T[], answer: string, title: string): T {
  const hit = items.find((i) => i.label === answer) ?? items.find((i) => i.label.includes(answer));
  if (!hit) throw new Error(`scripted answer "${answer}" matches no item of "${title}" (${items.map((i) => i.label).join(' | ')})`);
  return hit;
}

/** A scripted input box answer, checked as the box would check it. */
export function scriptedInput(answer: string, title: string, validate?: (v: string) => string | undefined | null): string {
  const problem = validate?.(answer);
  if (problem) throw new Error(`scripted answer "${answer}" for "${title}" is refused: ${problem}`);
  return answer;
}
