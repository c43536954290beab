// scripts/vscode-host/system-packages.sh decides what a fresh Debian machine lacks and installs it
// (root, or passwordless sudo) or names the one command to run. This machine has everything, so
// the script runs here against fake dpkg-query / apt-get / id / sudo placed first on PATH: the
// real script, with the machine states a fresh clone meets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = join(__dirname, '..', '..', '..', 'scripts', 'vscode-host', 'system-packages.sh');
const haveBash = process.platform !== 'win32' && spawnSync('bash', ['-c', 'true']).status === 0;
const skip = !haveBash ? 'no bash' : !existsSync(SCRIPT) ? `no ${SCRIPT}` : false;

const TEST_GROUP = ['ca-certificates', 'git', 'python3', 'make', 'g++', 'libkrb5-dev', 'chromium', 'python3-torch', 'python3-onnx', 'python3-numpy', 'redis-server'];

interface Machine {
  installed: string[];
  uid: number;
  /** 'none': no sudo at all; 'password': sudo asks for a password; 'ok': passwordless. */
  sudo: 'none' | 'password' | 'ok';
  aptFails?: boolean;
}

function fakeMachine(m: Machine): { dir: string; env: NodeJS.ProcessEnv; aptLog: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ps-syspkg-'));
  const bin = join(dir, 'bin');
  const state = join(dir, 'installed');
  const log = join(dir, 'apt.log');
  writeFileSync(state, m.installed.map((p) => `${p}\n`).join(''));
  writeFileSync(log, '');
  const script = (name: string, body: string): void => {
    const file = join(bin, name);
    writeFileSync(file, `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(file, 0o755);
  };
  spawnSync('mkdir', ['-p', bin]);
  // dpkg-query -W -f='${Status}' PKG
  script('dpkg-query', `pkg="\${@: -1}"; if grep -qxF -- "$pkg" "${state}"; then printf 'install ok installed'; else echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; fi`);
  script('id', `if [[ "$1" == "-u" ]]; then echo ${m.uid}; else /usr/bin/id "$@"; fi`);
  script(
    'apt-get',
    [
      `echo "uid=$FAKE_EFFECTIVE_UID $*" >> "${log}"`,
      m.aptFails ? 'echo "E: Unable to locate package" >&2; exit 100' : '',
      `if [[ "$1" == install ]]; then for a in "$@"; do case "$a" in install|-*) ;; *) echo "$a" >> "${state}" ;; esac; done; fi`,
    ].join('\n'),
  );
  if (m.sudo !== 'none') {
    script(
      'sudo',
      m.sudo === 'ok'
        ? `[[ "$1" == -n ]] && shift; FAKE_EFFECTIVE_UID=0 exec "$@"`
        : `echo "sudo: a password is required" >&2; exit 1`,
    );
  }
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, FAKE_EFFECTIVE_UID: String(m.uid), CI: '' };
  return { dir, env, aptLog: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

function runScript(m: Machine, ...args: string[]) {
  const fake = fakeMachine(m);
  try {
    const r = spawnSync('bash', [SCRIPT, ...args], { env: fake.env, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, apt: fake.aptLog() };
  } finally {
    rmSync(fake.dir, { recursive: true, force: true });
  }
}

const allBut = (...gone: string[]) => TEST_GROUP.filter((p) => !gone.includes(p));

test('system-packages: nothing missing -> one line, no apt, exit 0', { skip }, () => {
  const r = runScript({ installed: TEST_GROUP, uid: 1000, sudo: 'none' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /present: test \(11 packages\)/);
  assert.deepEqual(r.apt, []);
});

test('system-packages: root on a fresh machine installs exactly what is missing', { skip }, () => {
  const r = runScript({ installed: allBut('libkrb5-dev', 'chromium'), uid: 0, sudo: 'none' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.apt, ['uid=0 update -qq', 'uid=0 install -y -qq --no-install-recommends libkrb5-dev chromium']);
  assert.match(r.stdout, /installed: libkrb5-dev chromium/);
});

test('system-packages: non-root with passwordless sudo installs through sudo', { skip }, () => {
  const r = runScript({ installed: allBut('chromium'), uid: 1000, sudo: 'ok' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.apt, ['uid=0 update -qq', 'uid=0 install -y -qq --no-install-recommends chromium']);
});

for (const sudo of ['none', 'password'] as const) {
  test(`system-packages: non-root, sudo ${sudo === 'none' ? 'absent' : 'asks a password'} -> one line naming the command, exit 1`, { skip }, () => {
    const r = runScript({ installed: allBut('libkrb5-dev', 'chromium'), uid: 1000, sudo });
    assert.equal(r.code, 1);
    assert.deepEqual(r.apt, [], 'must not try apt');
    assert.equal(r.stdout, '');
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^missing system package\(s\): libkrb5-dev chromium; /);
    assert.ok(lines[0].endsWith('run this, then try again: sudo apt-get install -y --no-install-recommends libkrb5-dev chromium'), lines[0]);
  });
}

test('system-packages: apt failing (e.g. no apt repository reachable) -> the command to run, exit 1', { skip }, () => {
  const r = runScript({ installed: allBut('chromium'), uid: 0, sudo: 'none', aptFails: true });
  assert.equal(r.code, 1);
  const last = r.stderr.split('\n').filter(Boolean).at(-1) ?? '';
  assert.match(last, /^missing system package\(s\): chromium; 'apt-get update -qq' failed .*run: sudo apt-get install -y --no-install-recommends chromium$/);
});

test('system-packages: the xvfb group (for xvfb-run) is xvfb and xauth; electron is the libraries', { skip }, () => {
  const r = runScript({ installed: TEST_GROUP, uid: 1000, sudo: 'none' }, 'check', 'xvfb');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /missing: xvfb xauth$/m);
  const list = runScript({ installed: [], uid: 1000, sudo: 'none' }, 'list', 'electron');
  assert.ok(list.stdout.split('\n').includes('libxkbfile1'));
  assert.ok(!list.stdout.split('\n').includes('xvfb'));
});

test('system-packages: a t64-renamed library (Ubuntu 24.04, Debian 13) counts as installed', { skip }, () => {
  const libs = runScript({ installed: [], uid: 1000, sudo: 'none' }, 'list', 'electron').stdout.split('\n').filter(Boolean);
  const r = runScript({ installed: libs.map((p) => (p === 'libasound2' ? 'libasound2t64' : p)), uid: 1000, sudo: 'none' }, 'check', 'electron');
  assert.equal(r.code, 0, r.stdout);
});

test('system-packages: an unknown group is a usage error', { skip }, () => {
  const r = runScript({ installed: TEST_GROUP, uid: 0, sudo: 'none' }, 'ensure', 'nope');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown group 'nope'/);
});
