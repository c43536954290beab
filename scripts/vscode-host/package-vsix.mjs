#!/usr/bin/env node
// Packages the extension as a .vsix for one platform (default linux-x64): the production
// bundles (dist/), media/, and the one native runtime the bundles load at run time
// (onnxruntime-node + onnxruntime-common) with only that platform's binaries, staged in a clean
// folder so that `vsce package --no-dependencies` takes exactly these files.
// Then, with --install, installs it into the offline code-server host to check that it loads.
//
// Usage: node scripts/vscode-host/package-vsix.mjs [--target linux-x64] [--out prunescope.vsix] [--install DIR]
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CODE_SERVER_ENTRY, HOST_DIR, NODE_BIN, REPO_ROOT, readInstalledHost } from './host-paths.mjs';

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string', default: 'linux-x64' },
    out: { type: 'string', default: '' },
    install: { type: 'string', default: '' },
  },
});

const [platform, arch] = opts.target.split('-');
const log = (m) => console.log(`[package] ${m}`);
const run = (cmd, args, cwd, env = process.env) => {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
};

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
const out = path.resolve(opts.out || path.join(REPO_ROOT, `${pkg.name}-${pkg.version}-${opts.target}.vsix`));
const stage = path.join(HOST_DIR, 'vsix-stage');

log('production build');
run(process.execPath, [path.join(REPO_ROOT, 'esbuild.mjs'), '--production'], REPO_ROOT);

rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
// the manifest without dev-only fields: vsce checks `scripts.vscode:prepublish`, not these
const manifest = { ...pkg };
delete manifest.devDependencies;
delete manifest.scripts;
// runtime dependencies are bundled, except the native runtime copied below
manifest.dependencies = { 'onnxruntime-node': pkg.dependencies['onnxruntime-node'] };
writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2));
for (const f of ['README.md', 'CHANGELOG.md', 'LICENSE', 'LICENSE.md']) {
  if (existsSync(path.join(REPO_ROOT, f))) cpSync(path.join(REPO_ROOT, f), path.join(stage, f));
}
cpSync(path.join(REPO_ROOT, 'media'), path.join(stage, 'media'), { recursive: true });
mkdirSync(path.join(stage, 'dist'));
for (const f of readdirSync(path.join(REPO_ROOT, 'dist'))) {
  if (f.endsWith('.map') || f === 'bench.js') continue;
  cpSync(path.join(REPO_ROOT, 'dist', f), path.join(stage, 'dist', f));
}

// onnxruntime-node: its JS, and the binaries of this one platform (the package ships all of them)
const ortSrc = path.join(REPO_ROOT, 'node_modules', 'onnxruntime-node');
const ortDst = path.join(stage, 'node_modules', 'onnxruntime-node');
for (const f of ['package.json', 'LICENSE', 'README.md', 'dist', 'lib']) {
  if (existsSync(path.join(ortSrc, f))) cpSync(path.join(ortSrc, f), path.join(ortDst, f), { recursive: true });
}
const bin = path.join('bin', 'napi-v6', platform, arch);
if (!existsSync(path.join(ortSrc, bin))) throw new Error(`onnxruntime-node has no binaries for ${opts.target} (${bin})`);
cpSync(path.join(ortSrc, bin), path.join(ortDst, bin), { recursive: true });
// the install script downloads CUDA libraries; the packaged copy must never run it
const ortPkg = JSON.parse(readFileSync(path.join(ortDst, 'package.json'), 'utf8'));
delete ortPkg.scripts;
// adm-zip / global-agent serve only that install script; the runtime needs onnxruntime-common
ortPkg.dependencies = { 'onnxruntime-common': ortPkg.dependencies['onnxruntime-common'] };
writeFileSync(path.join(ortDst, 'package.json'), JSON.stringify(ortPkg, null, 2));
cpSync(path.join(REPO_ROOT, 'node_modules', 'onnxruntime-common'), path.join(stage, 'node_modules', 'onnxruntime-common'), { recursive: true });
writeFileSync(path.join(stage, '.vscodeignore'), ['**/*.map', '**/*.ts', '!**/*.d.ts', 'node_modules/onnxruntime-common/lib/**', ''].join('\n'));

mkdirSync(path.dirname(out), { recursive: true });
log(`vsce package (${opts.target})`);
run(process.execPath, [
  path.join(REPO_ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'),
  'package',
  // dependencies: vsce lists node_modules with npm; only the staged native runtime is there
  '--allow-missing-repository',
  '--skip-license',
  // the README's images are packaged (media/screenshots): no repository URL to rewrite them to
  '--no-rewrite-relative-links',
  '--target', opts.target,
  '--out', out,
], stage);
log(`${out}: ${(statSync(out).size / 1e6).toFixed(1)} MB`);

if (opts.install) {
  if (!readInstalledHost()) throw new Error('the VS Code host is not installed (scripts/vscode-host/setup.mjs)');
  const dir = path.resolve(opts.install);
  mkdirSync(dir, { recursive: true });
  log(`installing into code-server extensions dir ${dir}`);
  // code-server writes a default config into HOME: give it a scratch one
  const home = path.join(HOST_DIR, 'vsix-home');
  mkdirSync(home, { recursive: true });
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_DATA_HOME: path.join(home, '.local', 'share') };
  run(NODE_BIN, [CODE_SERVER_ENTRY, '--extensions-dir', dir, '--install-extension', out, '--force'], REPO_ROOT, env);
}
