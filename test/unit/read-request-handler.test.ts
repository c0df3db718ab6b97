// ReadRequestHandler and Http1Connection against a scripted HTTP server on loopback: how
// bodies arrive (blocks, chunked, until close), HEADs' bodiless answers, keep-alive
// reuse, broken and silent connections, the socket cap. The SDK's use of the handler against real S3 servers
// is covered by test/integration/s3-bucket.test.ts and the e2e read tests.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { HttpRequest } from '@smithy/core/protocols';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BODY_BLOCK } from '../../src/s3/http1-connection.js';
import { ReadRequestHandler } from '../../src/s3/read-request-handler.js';

interface ReceivedRequest {
  head: string;
  connection: number;
}

/** Answers each request with `answer(request, socket)`; counts connections. */
interface ScriptedServer {
  port: number;
  requests: ReceivedRequest[];
  connections: number;
  /** Connections open right now, and the most at once. */
  open: number;
  mostOpen: number;
}

const servers: Server[] = [];
const serverSockets = new Set<Socket>();
const handlers: ReadRequestHandler[] = [];

afterEach(async () => {
  for (const handler of handlers.splice(0)) handler.destroy();
  for (const socket of serverSockets) socket.destroy();
  await Promise.all(
    servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
});

async function scriptedServer(answer: (request: ReceivedRequest, socket: Socket) => void): Promise<ScriptedServer> {
  const state: ScriptedServer = { port: 0, requests: [], connections: 0, open: 0, mostOpen: 0 };
  const server = createServer((socket) => {
    const connection = ++state.connections;
    serverSockets.add(socket);
    state.open++;
    state.mostOpen = Math.max(state.mostOpen, state.open);
    socket.on('close', () => {
      serverSockets.delete(socket);
      state.open--;
    });
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (bytes) => {
      pending += bytes.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const request = { head: pending.slice(0, end), connection };
        pending = pending.slice(end + 4);
        state.requests.push(request);
        answer(request, socket);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

function handlerFor(options: Partial<ConstructorParameters<typeof ReadRequestHandler>[1]> = {}, fallback?: Partial<NodeHttpHandler>): ReadRequestHandler {
  const handler = new ReadRequestHandler({ destroy: () => undefined, ...fallback } as NodeHttpHandler, {
    connectMs: 2_000,
    idleMs: 5_000,
    maxSockets: 8,
    ...options,
  });
  handlers.push(handler);
  return handler;
}

function rangedGet(port: number, range = 'bytes=0-'): HttpRequest {
  return new HttpRequest({
    method: 'GET',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    path: '/bucket/some%20key',
    query: { 'x-id': 'GetObject' },
    headers: { host: `127.0.0.1:${port}`, range },
  });
}

async function collect(body: unknown): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  for await (const piece of body as Readable) pieces.push(piece as Buffer);
  return pieces;
}

function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** Bytes that differ from offset to offset, so that a misplaced piece shows. */
function pattern(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + (i >> 10)) & 0xff;
  return bytes;
}

/** Writes `bytes` in pieces of `size`, each after the previous one was flushed. */
function writeInPieces(socket: Socket, bytes: Buffer, size: number): void {
  let at = 0;
  const next = (): void => {
    if (at >= bytes.length) return;
    const piece = bytes.subarray(at, at + size);
    at += piece.length;
    socket.write(piece, next);
  };
  next();
}

describe('ReadRequestHandler', () => {
  it('reads a body into whole blocks of BODY_BLOCK bytes, exactly, and sends the request as the SDK built it', { timeout: 15_000 }, async () => {
    const body = pattern(3 * BODY_BLOCK + 12_345);
    const server = await scriptedServer((_request, socket) => {
      const head = Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\nETag: "a"\r\nX-Amz-Meta-Twice: 1\r\nx-amz-meta-twice: 2\r\n\r\n`);
      // Head and the first body bytes in one write, the rest in odd pieces.
      writeInPieces(socket, Buffer.concat([head, body]), 77_777);
    });
    const { response } = await handlerFor().handle(rangedGet(server.port, 'bytes=5-'));
    expect(response.statusCode).toBe(206);
    expect(response.reason).toBe('Partial Content');
    expect(response.headers).toMatchObject({ 'content-length': String(body.length), etag: '"a"', 'x-amz-meta-twice': '1,2' });
    const pieces = await collect(response.body);
    expect(pieces.map((piece) => piece.length)).toEqual([BODY_BLOCK, BODY_BLOCK, BODY_BLOCK, 12_345]);
    expect(md5(Buffer.concat(pieces))).toBe(md5(body));
    expect(server.requests[0]?.head).toBe(
      `GET /bucket/some%20key?x-id=GetObject HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\nrange: bytes=5-`,
    );
  });

  it('stops reading the socket while the reader is behind, and loses no byte when it catches up', { timeout: 15_000 }, async () => {
    const body = pattern(32 * BODY_BLOCK);
    const server = await scriptedServer((_request, socket) => {
      socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.write(body);
    });
    const { response } = await handlerFor().handle(rangedGet(server.port));
    const reader = response.body as Readable;
    const pieces: Buffer[] = [];
    let mostBuffered = 0;
    // A reader much slower than loopback, one piece at a time: the socket must wait for it.
    reader.on('data', (piece: Buffer) => {
      mostBuffered = Math.max(mostBuffered, reader.readableLength);
      pieces.push(piece);
      reader.pause();
      void (async () => {
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
        reader.resume();
      })();
    });
    await once(reader, 'end');
    expect(md5(Buffer.concat(pieces))).toBe(md5(body));
    // The body stream's high-water mark (4 blocks), and the block whose push went past it.
    expect(mostBuffered).toBeLessThanOrEqual(5 * BODY_BLOCK);
  });

  it('keeps the connection for the next request, also after a chunked error answer', { timeout: 15_000 }, async () => {
    const xml = '<?xml version="1.0"?><Error><Code>PreconditionFailed</Code></Error>';
    const server = await scriptedServer((_request, socket) => {
      if (server.requests.length === 1) {
        const half = Math.floor(xml.length / 2);
        socket.write(`HTTP/1.1 412 Precondition Failed\r\nTransfer-Encoding: chunked\r\n\r\n`);
        socket.write(`${half.toString(16)}\r\n${xml.slice(0, half)}\r\n`);
        socket.write(`${(xml.length - half).toString(16)};ext=1\r\n${xml.slice(half)}\r\n0\r\n\r\n`);
      } else {
        socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc`);
      }
    });
    const handler = handlerFor();
    const failed = await handler.handle(rangedGet(server.port));
    expect(failed.response.statusCode).toBe(412);
    expect(Buffer.concat(await collect(failed.response.body)).toString()).toBe(xml);
    const next = await handler.handle(rangedGet(server.port));
    expect(Buffer.concat(await collect(next.response.body)).toString()).toBe('abc');
    expect(server.requests.map((request) => request.connection)).toEqual([1, 1]);
  });

  it('reads a body without a length until the server closes, and does not reuse that connection', { timeout: 15_000 }, async () => {
    const server = await scriptedServer((_request, socket) => {
      socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it');
    });
    const handler = handlerFor();
    for (let i = 0; i < 2; i++) {
      const { response } = await handler.handle(rangedGet(server.port));
      expect(Buffer.concat(await collect(response.body)).toString()).toBe('all of it');
    }
    expect(server.connections).toBe(2);
  });

  it('fails the body with ECONNRESET when the connection breaks midway, so that the reader asks again', { timeout: 15_000 }, async () => {
    const server = await scriptedServer((_request, socket) => {
      socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${2 * BODY_BLOCK}\r\n\r\n`);
      socket.write(pattern(BODY_BLOCK + 10), () => socket.destroy());
    });
    const { response } = await handlerFor().handle(rangedGet(server.port));
    const error = await collect(response.body).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toMatchObject({ code: 'ECONNRESET' });
  });

  it('sends the request again on a new connection when the server closed the kept one meanwhile', { timeout: 15_000 }, async () => {
    const server = await scriptedServer((request, socket) => {
      // The first connection answers once, then closes when the next request comes.
      if (request.connection === 1 && server.requests.length > 1) socket.destroy();
      else socket.write('HTTP/1.1 206 Partial Content\r\nContent-Length: 2\r\n\r\nok');
    });
    const handler = handlerFor();
    for (let i = 0; i < 2; i++) {
      const { response } = await handler.handle(rangedGet(server.port));
      expect(Buffer.concat(await collect(response.body)).toString()).toBe('ok');
    }
    expect(server.requests.map((request) => request.connection)).toEqual([1, 1, 2]);
  });

  it('gives up on a silent server with a TimeoutError, which the SDK retries', { timeout: 15_000 }, async () => {
    const server = await scriptedServer(() => undefined);
    const started = Date.now();
    await expect(handlerFor({ idleMs: 300 }).handle(rangedGet(server.port))).rejects.toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('opens at most maxSockets connections; requests beyond wait for one to be free', { timeout: 15_000 }, async () => {
    const server = await scriptedServer((_request, socket) => {
      setImmediate(() => socket.write('HTTP/1.1 206 Partial Content\r\nContent-Length: 1\r\n\r\nx'));
    });
    const handler = handlerFor({ maxSockets: 2 });
    const bodies = await Promise.all(
      Array.from({ length: 6 }, async () => Buffer.concat(await collect((await handler.handle(rangedGet(server.port))).response.body)).toString()),
    );
    expect(bodies).toEqual(['x', 'x', 'x', 'x', 'x', 'x']);
    expect(server.requests).toHaveLength(6);
    expect(server.mostOpen).toBe(2);
  });

  it('sends a HEAD over its own connection, takes its answer as bodiless whatever its Content-Length, and keeps the connection', { timeout: 15_000 }, async () => {
    const server = await scriptedServer((request, socket) => {
      if (request.head.startsWith('HEAD ')) socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nETag: "abc"\r\nx-amz-meta-mode: 33188\r\n\r\n`);
      else socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc`);
    });
    const handler = handlerFor();
    const head = new HttpRequest({ ...rangedGet(server.port), method: 'HEAD', query: {}, headers: { host: `127.0.0.1:${server.port}` } });
    for (let i = 0; i < 2; i++) {
      const { response } = await handler.handle(head);
      expect(response.statusCode).toBe(200);
      expect(response.headers).toEqual({ 'content-length': '123456', etag: '"abc"', 'x-amz-meta-mode': '33188' });
      expect(await collect(response.body)).toEqual([]);
    }
    // The bytes after the HEAD's answer are the GET's, on the same connection.
    const { response } = await handler.handle(rangedGet(server.port));
    expect(Buffer.concat(await collect(response.body)).toString()).toBe('abc');
    expect(server.requests.map((request) => [request.head.split(' ')[0], request.connection])).toEqual([
      ['HEAD', 1],
      ['HEAD', 1],
      ['GET', 1],
    ]);
  });

  it('hands every request that is not a ranged GET or a HEAD to the SDK handler', { timeout: 15_000 }, async () => {
    const fallback = { handle: vi.fn(async (_request: HttpRequest) => ({ response: { statusCode: 200, headers: {} } })) };
    const handler = handlerFor({}, fallback as unknown as Partial<NodeHttpHandler>);
    const plain = new HttpRequest({ ...rangedGet(1), headers: { host: '127.0.0.1:1' } });
    const put = new HttpRequest({ ...rangedGet(1), method: 'PUT' });
    const headWithBody = new HttpRequest({ ...rangedGet(1), method: 'HEAD', body: 'x' });
    await handler.handle(plain);
    await handler.handle(put);
    await handler.handle(headWithBody);
    expect(fallback.handle.mock.calls.map(([request]) => request)).toEqual([plain, put, headWithBody]);
  });

  it('refuses a malformed answer with an error that names it', { timeout: 15_000 }, async () => {
    const server = await scriptedServer((_request, socket) => socket.write('SMTP ready\r\n\r\n'));
    await expect(handlerFor().handle(rangedGet(server.port))).rejects.toThrow('malformed HTTP response: "SMTP ready"');
  });
});
