#!/usr/bin/env node
// Runs @20minutes/s3rver (patched, see patches/@20minutes+s3rver+*.dev.patch) on
// loopback for the tests, and prints one JSON line {"port": N} once it listens.
//
//   node --openssl-legacy-provider test/servers/s3rver.mjs --dir DIR [--port N] [--exit-with-stdin]
//
// --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with
// DES, which OpenSSL 3 only offers through the legacy provider; without it every
// listing of more than 1000 keys answers 500.
//
// The server stops on SIGTERM/SIGINT, and with --exit-with-stdin also when stdin
// closes: a parent that holds the other end of a pipe thus never leaves the server
// behind when it crashes.
import { createCipheriv } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import S3rver from '@20minutes/s3rver';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string', default: '0' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});
if (!values.dir) {
  process.stderr.write('usage: s3rver.mjs --dir DIR [--port N] [--exit-with-stdin]\n');
  process.exit(2);
}

try {
  createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
} catch {
  process.stderr.write('s3rver.mjs: DES is unavailable; run node with --openssl-legacy-provider\n');
  process.exit(2);
}

mkdirSync(values.dir, { recursive: true });
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(values.port),
  directory: values.dir,
  silent: true,
});

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // close() waits for open keep-alive connections; drop them so that it returns.
  server.httpServer?.closeAllConnections?.();
  await server.close().catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (values['exit-with-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
