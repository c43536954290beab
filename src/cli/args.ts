// The usage error of the command line (exit code 2). Parsing and validation are declared per
// command in command-specs.ts and done by options.ts.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
