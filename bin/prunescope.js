#!/usr/bin/env node
// `npx prunescope` in a checkout: runs the bundled CLI (built by `npm run build`, which the
// `prepare` script runs on `npm install`).
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const cli = join(__dirname, '..', 'dist', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write(`prunescope: ${cli} is missing; run \`npm run build\` in ${join(__dirname, '..')}\n`);
  process.exit(2);
}
require(cli)
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
