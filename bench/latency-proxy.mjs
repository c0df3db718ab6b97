// A small HTTP proxy for benchmarks: sits on 127.0.0.1 (a free port) in front of an S3
// server and makes it look like a cloud region.
//
//   - adds a fixed latency to every request (default 20 ms), once, before forwarding it;
//   - optionally caps the bandwidth of each client connection (bytes/s, each direction);
//   - counts requests by kind (GET, ranged GET, HEAD, PUT, UploadPart, ...) with the
//     body bytes that went up (client -> server) and down (server -> client);
//   - for tests, at run time: a latency per kind, faults (requests of some kinds answered
//     by the proxy itself with an S3 error, never forwarded) and holds (requests of some
//     kinds wait at the proxy until released; a request whose client went away meanwhile
//     is dropped, never forwarded).
//
// SigV4 stays valid: clients sign for the proxy's host:port, and the proxy forwards the
// method, the request target (path and query, byte for byte) and every header unchanged,
// the Host header included, so the server sees exactly what was signed. Only the
// hop-by-hop headers (Connection, Keep-Alive) are left to each side's own connection.
// Bodies are streamed both ways (a 512 MiB upload is never held in memory), and
// `Expect: 100-continue` is passed through: the client gets its 100 when the server
// sends one.
//
// Addressing: request kinds are told apart for path-style requests (/BUCKET/KEY), which is
// how the harness configures every client.
//
//   import { startLatencyProxy } from './latency-proxy.mjs';
//   const proxy = await startLatencyProxy({ upstream: 'http://127.0.0.1:4568', latencyMs: 20 });
//   proxy.endpoint; proxy.stats(); proxy.reset(); await proxy.close();
//   proxy.setLatency(300, UPLOAD_KINDS);        // uploads slow, everything else as before
//   proxy.setFault({ kinds: UPLOAD_KINDS, status: 503, code: 'ServiceUnavailable' });
//   proxy.setFault(NO_UPLOAD_PART_COPY);        // 501 NotImplemented, as s3rver 3 answers
//   proxy.setFault(undefined);                  // forward everything again
//   proxy.hold(['CompleteMultipart']); proxy.stats().held; proxy.release();
//
// As a program: node bench/latency-proxy.mjs UPSTREAM_URL [--latency MS] [--bandwidth BYTES_PER_S]
// prints {"port":N} and, on SIGINT/SIGTERM, the counts.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Transform } from 'node:stream';
import { parseArgs } from 'node:util';

/** Every kind `stats()` reports, in display order. */
export const REQUEST_KINDS = [
  'GET',
  'rangedGET',
  'HEAD',
  'PUT',
  'UploadPart',
  'UploadPartCopy',
  'CopyObject',
  'CreateMultipart',
  'CompleteMultipart',
  'AbortMultipart',
  'List',
  'Delete',
  'Other',
];

/** The kinds that write object data: what a test fails or slows down to stall uploads. */
export const UPLOAD_KINDS = ['PUT', 'UploadPart', 'UploadPartCopy', 'CreateMultipart', 'CompleteMultipart'];

/** The answer of a server without UploadPartCopy (s3rver 3.x, some gateways). */
export const NO_UPLOAD_PART_COPY = Object.freeze({
  kinds: ['UploadPartCopy'],
  status: 501,
  code: 'NotImplemented',
  message: 'A header you provided implies functionality that is not implemented',
});

/**
 * The kind of an S3 request, from its method, path-style target and headers.
 * @param {string} method
 * @param {string} target request target as sent (path and query)
 * @param {import('node:http').IncomingHttpHeaders} headers
 */
export function classifyRequest(method, target, headers) {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1));
  // "/bucket" or "/bucket/" has no key; "/" is the service (ListBuckets).
  const slash = path.indexOf('/', 1);
  const hasKey = slash !== -1 && slash < path.length - 1;
  const copySource = headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'GET':
      if (!hasKey) return 'List'; // ListObjects(V2), ListMultipartUploads, ListBuckets, bucket sub-resources
      if (query.has('uploadId')) return 'List'; // ListParts
      return headers.range !== undefined ? 'rangedGET' : 'GET';
    case 'HEAD':
      return 'HEAD';
    case 'PUT':
      if (!hasKey) return 'Other'; // CreateBucket and bucket configuration
      if (query.has('uploadId') && query.has('partNumber')) return copySource ? 'UploadPartCopy' : 'UploadPart';
      return copySource ? 'CopyObject' : 'PUT';
    case 'POST':
      if (query.has('delete')) return 'Delete'; // DeleteObjects (batch)
      if (query.has('uploads')) return 'CreateMultipart';
      if (query.has('uploadId')) return 'CompleteMultipart';
      return 'Other';
    case 'DELETE':
      if (query.has('uploadId')) return 'AbortMultipart';
      return hasKey ? 'Delete' : 'Other'; // DeleteBucket
    default:
      return 'Other';
  }
}

function emptyStats() {
  const requests = Object.fromEntries(REQUEST_KINDS.map((k) => [k, 0]));
  // faulted: answered by setFault() (also counted in requests, errors and statuses).
  return { requests, total: 0, errors: 0, faulted: 0, bytesUp: 0, bytesDown: 0, statuses: {} };
}

/**
 * Per-connection pacing: chunks pass at most `bytesPerSecond`; one pacer per socket and
 * direction, shared by the requests that reuse the connection.
 */
class Pacer {
  constructor(bytesPerSecond) {
    this.rate = bytesPerSecond;
    this.nextFree = 0; // ms (performance.now()) when the link is next idle
  }
  /** ms to wait before `bytes` may go. */
  reserve(bytes) {
    const now = performance.now();
    const start = Math.max(now, this.nextFree);
    this.nextFree = start + (bytes * 1000) / this.rate;
    return this.nextFree - now;
  }
}

const SLICE = 64 * 1024;

function pacedStream(pacer) {
  return new Transform({
    async transform(chunk, _enc, done) {
      try {
        for (let i = 0; i < chunk.length; i += SLICE) {
          const piece = chunk.subarray(i, i + SLICE);
          const wait = pacer.reserve(piece.length);
          if (wait >= 1) await sleep(wait);
          this.push(piece);
        }
        done();
      } catch (err) {
        done(err);
      }
    },
  });
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection']);

/** rawHeaders ([name, value, name, value...]) without the hop-by-hop ones, as sent. */
function forwardable(rawHeaders) {
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i].toLowerCase())) out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return out;
}

function checkKinds(kinds) {
  const unknown = kinds.filter((k) => !REQUEST_KINDS.includes(k));
  if (unknown.length > 0) throw new Error(`latency proxy: unknown request kind ${unknown.join(', ')} (known: ${REQUEST_KINDS.join(', ')})`);
  return new Set(kinds);
}

/** An S3 error document, as S3 sends it. */
function errorXml(code, message, requestId) {
  const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${escape(code)}</Code><Message>${escape(message)}</Message>` +
    `<RequestId>${requestId}</RequestId></Error>`
  );
}

/**
 * @typedef {object} Fault what setFault() answers instead of forwarding
 * @property {string[]} kinds request kinds (REQUEST_KINDS) that are refused
 * @property {number} [status] HTTP status (default 503)
 * @property {string} [code] S3 error code (default ServiceUnavailable)
 * @property {string} [message] S3 error message (default: a generic one)
 * @property {number} [times] refuse only the next `times` matching requests, then forward again
 * @property {Date} [date] the answer's Date header (default: now), as a server whose clock is off
 */

/**
 * @param {{ upstream: string, latencyMs?: number, bandwidthBytesPerSec?: number, host?: string }} options
 * @returns {Promise<{ endpoint: string, port: number,
 *   stats(): ReturnType<typeof emptyStats> & { held: number },
 *   reset(): void, setLatency(ms: number, kinds?: string[]): void,
 *   setFault(fault: Fault | undefined): void, hold(kinds: string[]): void, release(): void,
 *   close(): Promise<void> }>}
 */
export async function startLatencyProxy(options) {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new Error('latency proxy: the upstream must be http://');
  let latencyMs = options.latencyMs ?? 20;
  const bandwidth = options.bandwidthBytesPerSec ?? 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000 });
  let stats = emptyStats();
  /** Latencies of single kinds (setLatency(ms, kinds)), over `latencyMs`. */
  const kindLatency = new Map();
  /** @type {(Fault & { remaining: number }) | undefined} */
  let fault;
  let faultNumber = 0;
  /** Kinds held by hold(), and the requests waiting for release(). */
  let heldKinds = new Set();
  /** @type {Set<() => void>} */
  const waiting = new Set();
  /** @type {WeakMap<import('node:net').Socket, { up: Pacer, down: Pacer }>} */
  const pacers = new WeakMap();

  function pacersFor(socket) {
    let p = pacers.get(socket);
    if (!p) {
      p = { up: new Pacer(bandwidth), down: new Pacer(bandwidth) };
      pacers.set(socket, p);
    }
    return p;
  }

  async function handle(req, res, expectsContinue) {
    const kind = classifyRequest(req.method ?? 'GET', req.url ?? '/', req.headers);
    // Counted per reset() epoch: a request that straddles a reset counts in neither.
    const epoch = stats;
    epoch.requests[kind] += 1;
    epoch.total += 1;
    const count = (field, n) => {
      if (epoch === stats) epoch[field] += n;
    };

    const delay = kindLatency.get(kind) ?? latencyMs;
    if (delay > 0) await sleep(delay);
    if (heldKinds.has(kind)) await heldUntilReleased(req);
    // The client may have gone while the request waited: never act on its behalf (a
    // CompleteMultipart of a killed client must not complete its upload).
    if (req.socket.destroyed || res.destroyed) {
      req.resume();
      return;
    }
    if (fault && fault.kinds.includes(kind) && fault.remaining > 0) {
      fault.remaining -= 1;
      answerFault(req, res, fault, epoch, count, expectsContinue);
      return;
    }

    const upstreamReq = http.request({
      host: upstream.hostname,
      port: upstream.port || 80,
      method: req.method,
      path: req.url, // byte for byte: no normalisation, no re-encoding
      headers: forwardable(req.rawHeaders), // Host included, as the client signed it
      agent,
      setHost: false,
    });
    let failed = false;
    const fail = (err) => {
      if (failed) return;
      failed = true;
      if (epoch === stats) epoch.errors += 1;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`latency proxy: upstream failed: ${err.message}\n`);
      } else {
        res.destroy(err);
      }
      req.resume();
    };
    upstreamReq.on('error', fail);
    if (expectsContinue) {
      upstreamReq.on('continue', () => res.writeContinue());
      upstreamReq.flushHeaders();
    }

    upstreamReq.on('response', (upRes) => {
      const status = upRes.statusCode ?? 502;
      if (epoch === stats) {
        epoch.statuses[status] = (epoch.statuses[status] ?? 0) + 1;
        if (status >= 400) epoch.errors += 1;
      }
      res.writeHead(status, upRes.statusMessage, forwardable(upRes.rawHeaders));
      let body = upRes;
      if (bandwidth > 0) body = upRes.pipe(pacedStream(pacersFor(req.socket).down));
      body.on('data', (chunk) => count('bytesDown', chunk.length));
      body.pipe(res);
      upRes.on('error', (err) => res.destroy(err));
    });

    let body = req;
    if (bandwidth > 0) body = req.pipe(pacedStream(pacersFor(req.socket).up));
    body.on('data', (chunk) => count('bytesUp', chunk.length));
    body.pipe(upstreamReq);
    req.on('aborted', () => upstreamReq.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
  }

  /** Resolves on release(), or when the client's connection closes. */
  function heldUntilReleased(req) {
    return new Promise((resolve) => {
      const done = () => {
        waiting.delete(done);
        req.socket.off('close', done);
        resolve(undefined);
      };
      waiting.add(done);
      req.socket.once('close', done);
    });
  }

  /** Answers `req` with the fault's S3 error; the request is never forwarded. */
  function answerFault(req, res, f, epoch, count, expectsContinue) {
    const status = f.status ?? 503;
    const code = f.code ?? 'ServiceUnavailable';
    const requestId = `FAULT${String(++faultNumber).padStart(11, '0')}`;
    const xml = errorXml(code, f.message ?? `fault injected by the latency proxy (${code})`, requestId);
    if (epoch === stats) {
      epoch.faulted += 1;
      epoch.errors += 1;
      epoch.statuses[status] = (epoch.statuses[status] ?? 0) + 1;
    }
    const headers = {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(xml),
      'x-amz-request-id': requestId,
      ...(f.date ? { date: f.date.toUTCString() } : {}),
    };
    if (expectsContinue) {
      // The client waits for a 100 that never comes and sends no body: answer at once,
      // and close the connection, whose next bytes would be that body or nothing.
      res.writeHead(status, { ...headers, connection: 'close' });
      res.end(req.method === 'HEAD' ? undefined : xml);
      req.resume();
      return;
    }
    // As a server does: read the body, then answer (the connection stays usable).
    req.on('data', (chunk) => count('bytesUp', chunk.length));
    req.on('end', () => {
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : xml);
    });
    req.resume();
  }

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 });
  server.on('request', (req, res) => void handle(req, res, false));
  // Without this listener Node would answer 100 Continue itself, before the server has
  // had its say (and before the latency).
  server.on('checkContinue', (req, res) => void handle(req, res, true));
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve(undefined));
  });
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    /**
     * Counts since the last reset (a copy). bytesUp: request bodies; bytesDown: response
     * bodies; faulted: requests answered by setFault(); held: requests waiting now.
     */
    stats() {
      return { ...structuredClone(stats), held: waiting.size };
    },
    reset() {
      stats = emptyStats();
    },
    /**
     * setLatency(ms): every request (per-kind latencies are dropped);
     * setLatency(ms, kinds): requests of those kinds only.
     */
    setLatency(ms, kinds) {
      if (kinds === undefined) {
        latencyMs = ms;
        kindLatency.clear();
      } else {
        for (const kind of checkKinds(kinds)) kindLatency.set(kind, ms);
      }
    },
    /**
     * Requests of `fault.kinds` arriving from now on are answered by the proxy with
     * `fault.status` and an S3 error body (`<Error><Code>`...), after the latency and
     * never forwarded; undefined forwards everything again. One fault at a time.
     * @param {Fault | undefined} f
     */
    setFault(f) {
      if (f === undefined) {
        fault = undefined;
        return;
      }
      checkKinds(f.kinds);
      fault = { ...f, kinds: [...f.kinds], remaining: f.times ?? Infinity };
    },
    /** Requests of `kinds` wait at the proxy (after the latency) until release(). */
    hold(kinds) {
      heldKinds = checkKinds(kinds);
    },
    /** Lets every held request go on and stops holding. */
    release() {
      heldKinds = new Set();
      for (const done of [...waiting]) done();
    },
    async close() {
      heldKinds = new Set();
      for (const done of [...waiting]) done();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
      agent.destroy();
    },
  };
}

/** "PUT 1000, HEAD 2003, List 4" (kinds with a zero count left out). */
export function formatCounts(s) {
  const parts = REQUEST_KINDS.filter((k) => s.requests[k] > 0).map((k) => `${k} ${s.requests[k]}`);
  const failures = Object.entries(s.statuses).filter(([code]) => Number(code) >= 400);
  if (failures.length > 0) parts.push(`answered ${failures.map(([code, n]) => `${code} x${n}`).join(' ')}`);
  else if (s.errors > 0) parts.push(`failed ${s.errors}`);
  return parts.join(', ') || 'none';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { latency: { type: 'string', default: '20' }, bandwidth: { type: 'string', default: '0' } },
  });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node bench/latency-proxy.mjs UPSTREAM_URL [--latency MS] [--bandwidth BYTES_PER_S]\n');
    process.exit(2);
  }
  const proxy = await startLatencyProxy({
    upstream: positionals[0],
    latencyMs: Number(values.latency),
    bandwidthBytesPerSec: Number(values.bandwidth),
  });
  process.stdout.write(`${JSON.stringify({ port: proxy.port })}\n`);
  const stop = async () => {
    process.stderr.write(`${JSON.stringify(proxy.stats())}\n`);
    await proxy.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
