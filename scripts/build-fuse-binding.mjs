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

function fail(message) {
  console.error(`s3mount: cannot build the FUSE binding: ${message}; ${INSTALL_HINT}`);
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

// npm's bundled node-gyp when run by npm, else one on PATH; the machine's own Node
// headers when present, so that no header download is needed.
function nodeGypCommand() {
  const args = ['rebuild'];
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && existsSync(bundled)) return { command: process.execPath, args: [bundled, ...args] };
  return { command: 'node-gyp', args };
}

function build() {
  const { command, args } = nodeGypCommand();
  const result = spawnSync(command, args, { cwd: bindingDir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.error || result.status !== 0) fail(`node-gyp failed (${result.error?.message ?? `exit ${result.status}`})`);
  createRequire(import.meta.url)(join(bindingDir, 'index.js'));
}

if (!existsSync(bindingDir)) fail('node_modules/fuse-native is missing (run npm ci first)');
checkPrerequisites();
applyPatch();
build();
console.log('s3mount: FUSE binding built against libfuse3', execFileSync('pkg-config', ['--modversion', 'fuse3']).toString().trim());
