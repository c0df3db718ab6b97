#!/usr/bin/env node
// npm run demo: a local S3 server (s3rver) over .demo/data, a bucket "demo", mounted
// at ./mnt in the foreground. Ctrl-C unmounts and stops the server. No cloud account.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startS3rver } from '../test/servers/start-s3rver.mjs';

// The SDK warns about Node 20 in nine lines that would bury the demo's own text.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { CreateBucketCommand, PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dataDir = join(root, '.demo', 'data');
const cacheDir = join(root, '.demo', 'cache');
const mountpoint = resolve(root, 'mnt');
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };


function isMounted(path) {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

mkdirSync(dataDir, { recursive: true });
const server = await startS3rver(dataDir);
const { endpoint } = server;
const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
await client.send(new CreateBucketCommand({ Bucket: 'demo' })).catch((err) => {
  if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
});
await client.send(new PutObjectCommand({ Bucket: 'demo', Key: 'hello.txt', Body: 'Hello from s3mount!\n' }));

mkdirSync(mountpoint, { recursive: true });
const mount = spawn(
  process.execPath,
  [join(root, 'bin/s3mount.js'), 'demo', mountpoint, '--endpoint', endpoint, '--path-style', '--foreground', '--cache-dir', cacheDir, '--log-level', 'info'],
  { stdio: 'inherit', env: { ...process.env, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_REGION: 'us-east-1' } },
);
const mountExited = new Promise((r) => mount.once('exit', r));

const deadline = Date.now() + 30_000;
while (!isMounted(mountpoint) && mount.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
if (isMounted(mountpoint)) {
  console.log(`
s3mount demo: bucket "demo" on a local S3 server (${endpoint}, data in .demo/data)
is mounted at ${mountpoint}. In another terminal, try:

  ls -l mnt && cat mnt/hello.txt
  cp -a /usr/share/doc/bash mnt/ && find mnt | head
  echo hi > mnt/new.txt && ls .demo/data/demo
  rsync -a /etc/ mnt/etc-copy/ && rsync -a --checksum --dry-run --itemize-changes /etc/ mnt/etc-copy/

Press Ctrl-C here to unmount and stop the server.
`);
}

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  if (mount.exitCode === null) mount.kill('SIGINT');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const code = await mountExited;
await server.stop();
process.exitCode = code ?? 0;
