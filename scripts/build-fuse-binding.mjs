#!/usr/bin/env node
// Applies our patch to fuse-native (libfuse 3 port) and compiles it against the
// system libfuse3. Runs at `npm ci`/`npm install` (postinstall).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bindingDir = join(root, 'node_modules', 'fuse-native');
const INSTALL_HINT =
  'install the build packages with: apt-get install -y libfuse3-dev fuse3 pkg-config g++ make python3';

function fail(message, hint = INSTALL_HINT) {
  console.error(`s3mount: cannot build the FUSE binding: ${message}; ${hint}`);
  process.exit(1);
}

function hasCommand(command, args = ['--version']) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function checkPrerequisites() {
  if (!hasCommand('pkg-config')) fail('pkg-config is missing');
  if (!hasCommand('pkg-config', ['--exists', 'fuse3'])) fail('the libfuse3 headers (pkg-config fuse3) are missing');
  const missing = ['cc', 'g++', 'make', 'python3'].filter((tool) => !hasCommand(tool));
  if (missing.length > 0) fail(`${missing.join(', ')} not found`);
}

function applyPatch() {
  const patchPackage = join(root, 'node_modules', 'patch-package', 'index.js');
  execFileSync(process.execPath, [patchPackage, '--error-on-fail'], { cwd: root, stdio: 'inherit' });
}

// npm's bundled node-gyp (npm names it when it runs us; else next to this Node), else
// one on PATH; the machine's own Node headers when present, so nothing is downloaded.
function nodeGypCommand() {
  const args = ['rebuild', '--loglevel=error'];
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const candidates = [
    process.env.npm_config_node_gyp,
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const bundled = candidates.find((candidate) => candidate && existsSync(candidate));
  if (bundled) return { command: process.execPath, args: [bundled, ...args] };
  return { command: 'node-gyp', args };
}

function build() {
  const { command, args } = nodeGypCommand();
  const result = spawnSync(command, args, { cwd: bindingDir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.error) fail(`node-gyp could not be run (${result.error.message})`, 'install it with: npm install -g node-gyp');
  if (result.status !== 0) fail(`node-gyp failed with exit code ${result.status} (its output is above)`);
  createRequire(import.meta.url)(join(bindingDir, 'index.js'));
}

if (!existsSync(bindingDir)) fail('node_modules/fuse-native is missing (run npm ci first)');
checkPrerequisites();
applyPatch();
build();
console.log('s3mount: FUSE binding built against libfuse3', execFileSync('pkg-config', ['--modversion', 'fuse3']).toString().trim());
