import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { ChunkedDecoder } from './chunked-decoder.js';

/*
 * One keep-alive HTTP/1.1 connection that reads response bodies straight into the
 * buffers handed to their reader. Node's HTTP client allocates a fresh buffer for every
 * socket read and another object for every body piece; at the read path's rates that
 * garbage is collected dozens of times per 512 MiB and costs a fifth of the mount's CPU
 * (docs/benchmarks.md). Here the socket reads into a 1 MiB block of the body itself
 * (`onread` with a buffer function), so a ranged GET of 8 MiB allocates 8 buffers.
 */

export interface ServerAddress {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** CA certificates to trust instead of the system's (https only). */
  ca?: Buffer;
  /** A TLS session of an earlier connection to the server, to resume (https only). */
  session?: Buffer;
}

export interface ConnectionEvents {
  /** A response has been read to its end and the connection can carry another request. */
  idle(connection: Http1Connection): void;
  /** The connection is gone; called once. */
  close(connection: Http1Connection): void;
  /** The server gave a TLS session that a later connection can resume. */
  tlsSession(session: Buffer): void;
}

export interface ConnectionTimeouts {
  /** Until the TCP (and TLS) connection is up. */
  connectMs: number;
  /** Silence from the server while a request is under way. */
  idleMs: number;
}

export interface RequestHead {
  method: string;
  /** Path and query, escaped as they go on the wire. */
  target: string;
  headers: Record<string, string>;
}

export interface ResponseHead {
  statusCode: number;
  reason: string;
  /** Lowercase names; repeated headers joined with commas. */
  headers: Record<string, string>;
  body: Readable;
}

/** Bytes of a response's status line and headers at most. */
const HEAD_LIMIT = 64 * 1024;
/** A body is read into blocks of this size (fewer bytes at its end). */
export const BODY_BLOCK = 1024 * 1024;

type Framing = { kind: 'length'; left: number } | { kind: 'chunked'; decoder: ChunkedDecoder } | { kind: 'close' };

interface Exchange {
  /** A HEAD's: its answer has no body. */
  bodiless: boolean;
  headBytes: number;
  resolve(head: ResponseHead): void;
  reject(err: Error): void;
  /** Set once the head is in. */
  body?: Readable;
  framing?: Framing;
  keepAlive?: boolean;
  block?: Buffer;
  blockFill: number;
}

/** A failure that the SDK's retry strategy treats as transient (Node's own codes). */
function connectionError(message: string, code = 'ECONNRESET'): Error {
  return Object.assign(new Error(message), { code });
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/** Whether an error says the server closed a reused connection before it answered at all. */
export function isClosedBeforeAnswer(err: unknown): boolean {
  return err instanceof Error && (err as { closedBeforeAnswer?: boolean }).closedBeforeAnswer === true;
}

export class Http1Connection {
  private readonly socket: Socket;
  private readonly scratch = Buffer.allocUnsafe(HEAD_LIMIT);
  private exchange: Exchange | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private paused = false;
  /** Responses read to their end on this connection. */
  answered = 0;
  closed = false;

  constructor(
    address: ServerAddress,
    private readonly timeouts: ConnectionTimeouts,
    private readonly events: ConnectionEvents,
  ) {
    const onread = { buffer: () => this.nextTarget(), callback: (length: number) => this.received(length) };
    const host = address.hostname.replace(/^\[(.*)\]$/, '$1');
    this.socket =
      address.protocol === 'https:'
        ? // @types/node lacks tls.connect's onread, which Node has taken since 15.1.
          tlsConnect({ host, port: address.port, ca: address.ca, servername: isIP(host) ? undefined : host, session: address.session, onread } as ConnectionOptions)
        : netConnect({ host, port: address.port, onread, noDelay: true });
    this.connectTimer = setTimeout(
      () => this.socket.destroy(timeoutError(`no connection to ${host}:${address.port} within ${timeouts.connectMs / 1000} s`)),
      timeouts.connectMs,
    );
    this.socket.once(address.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(this.connectTimer));
    this.socket.setKeepAlive(true);
    // A new connection that resumes a session skips the certificate and its checks.
    this.socket.on('session', (session: Buffer) => this.events.tlsSession(session));
    this.socket.on('timeout', () => this.socket.destroy(timeoutError(`the server sent nothing for ${timeouts.idleMs / 1000} s`)));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('end', () => this.ended());
    this.socket.on('close', () => {
      clearTimeout(this.connectTimer);
      this.closed = true;
      this.fail(connectionError('the server closed the connection'));
      this.events.close(this);
    });
  }

  /** Sends a request (without a body) and resolves when the response's head is in. */
  send(request: RequestHead): Promise<ResponseHead> {
    if (this.exchange || this.closed) throw new Error('Http1Connection.send: the connection is busy or closed');
    let head = `${request.method} ${request.target} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(request.headers)) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`header ${JSON.stringify(name)} holds a line break`);
      head += `${name}: ${value}\r\n`;
    }
    return new Promise<ResponseHead>((resolve, reject) => {
      this.exchange = { bodiless: request.method === 'HEAD', headBytes: 0, resolve, reject, blockFill: 0 };
      this.socket.ref();
      this.socket.setTimeout(this.timeouts.idleMs);
      this.socket.write(`${head}\r\n`, 'latin1');
    });
  }

  /** Whether another request may go over it: not closed, nor closing. */
  get reusable(): boolean {
    return !this.closed && !this.socket.destroyed && this.exchange === undefined;
  }

  /** Parks the connection: it does not keep the process alive while no request uses it. */
  park(): void {
    this.socket.setTimeout(0);
    this.socket.unref();
  }

  destroy(err?: Error): void {
    this.socket.destroy(err);
  }

  /** Where the socket's next read lands: the current body block, else the scratch buffer. */
  private nextTarget(): Buffer {
    const exchange = this.exchange;
    if (!exchange) return this.scratch;
    // A full scratch buffer means a head too large: the socket is being destroyed.
    if (!exchange.framing) return exchange.headBytes < HEAD_LIMIT ? this.scratch.subarray(exchange.headBytes) : this.scratch;
    if (exchange.framing.kind !== 'length') return this.scratch;
    exchange.block ??= Buffer.allocUnsafeSlow(Math.min(BODY_BLOCK, exchange.framing.left));
    return exchange.block.subarray(exchange.blockFill);
  }

  private received(length: number): boolean {
    const exchange = this.exchange;
    if (!exchange) {
      this.socket.destroy(connectionError('the server sent bytes while no request was under way'));
      return false;
    }
    if (!exchange.framing) {
      exchange.headBytes += length;
      this.readHead(exchange, length);
    } else if (exchange.framing.kind === 'length') {
      exchange.blockFill += length;
      exchange.framing.left -= length;
      this.flushBlock(exchange);
    } else {
      this.feed(exchange, this.scratch.subarray(0, length));
    }
    return !this.paused;
  }

  private readHead(exchange: Exchange, length: number): void {
    for (;;) {
      const end = this.scratch.subarray(0, exchange.headBytes).indexOf('\r\n\r\n', Math.max(0, exchange.headBytes - length - 3));
      if (end < 0) {
        if (exchange.headBytes >= HEAD_LIMIT) this.socket.destroy(new Error(`the response head is larger than ${HEAD_LIMIT} bytes`));
        return;
      }
      const parsed = parseHead(this.scratch.toString('latin1', 0, end), exchange.bodiless);
      if (!parsed) {
        this.socket.destroy(new Error(`malformed HTTP response: ${JSON.stringify(this.scratch.toString('latin1', 0, Math.min(end, 80)))}`));
        return;
      }
      const rest = Buffer.from(this.scratch.subarray(end + 4, exchange.headBytes));
      if (parsed.statusCode < 200) {
        // 100 Continue and the like: the real answer follows.
        rest.copy(this.scratch);
        exchange.headBytes = rest.length;
        length = rest.length;
        continue;
      }
      exchange.framing = parsed.framing;
      exchange.keepAlive = parsed.keepAlive;
      exchange.body = new Readable({
        // The default (16 KiB) would pause the socket after every block.
        highWaterMark: 4 * BODY_BLOCK,
        read: () => this.resume(),
        destroy: (err, callback) => {
          // The reader gave up before the end: the rest of the body cannot be skipped cheaply.
          if (this.exchange === exchange) this.socket.destroy();
          callback(err);
        },
      });
      exchange.resolve({ statusCode: parsed.statusCode, reason: parsed.reason, headers: parsed.headers, body: exchange.body });
      this.feed(exchange, rest);
      return;
    }
  }

  /** Body bytes that arrived outside a block: after the head, or chunked, or until close. */
  private feed(exchange: Exchange, bytes: Buffer): void {
    const framing = exchange.framing as Framing;
    if (framing.kind === 'length') {
      // More than the body: a server not to trust with another request.
      if (bytes.length > framing.left) exchange.keepAlive = false;
      let at = 0;
      while (at < bytes.length && framing.left > 0) {
        const block = (exchange.block ??= Buffer.allocUnsafeSlow(Math.min(BODY_BLOCK, framing.left)));
        const copied = bytes.copy(block, exchange.blockFill, at, at + Math.min(framing.left, block.length - exchange.blockFill));
        at += copied;
        exchange.blockFill += copied;
        framing.left -= copied;
        this.flushBlock(exchange);
      }
      if (framing.left === 0 && this.exchange === exchange) this.finish(exchange);
    } else if (framing.kind === 'chunked') {
      let used: number;
      try {
        used = framing.decoder.push(bytes, (data) => this.deliver(exchange, Buffer.from(data)));
      } catch (err) {
        this.socket.destroy(err as Error);
        return;
      }
      if (framing.decoder.done) {
        if (used < bytes.length) exchange.keepAlive = false;
        this.finish(exchange);
      }
    } else if (bytes.length > 0) {
      this.deliver(exchange, Buffer.from(bytes));
    }
  }

  /** Passes on the current block once it is full or the body is complete. */
  private flushBlock(exchange: Exchange): void {
    const framing = exchange.framing as { kind: 'length'; left: number };
    const block = exchange.block;
    if (!block || (exchange.blockFill < block.length && framing.left > 0)) return;
    exchange.block = undefined;
    const filled = exchange.blockFill;
    exchange.blockFill = 0;
    this.deliver(exchange, filled === block.length ? block : block.subarray(0, filled));
    if (framing.left === 0) this.finish(exchange);
  }

  private deliver(exchange: Exchange, bytes: Buffer): void {
    if (!(exchange.body as Readable).push(bytes) && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  private finish(exchange: Exchange): void {
    if (this.exchange !== exchange) return;
    this.exchange = undefined;
    this.answered++;
    // A pause held back this body only; the next response must flow.
    this.resume();
    // The connection goes back before the reader hears of the end, so that the
    // reader's next request can reuse it.
    if (exchange.keepAlive) this.events.idle(this);
    else this.socket.destroy();
    (exchange.body as Readable).push(null);
  }

  /** The server closed its side: the end of a body read until close, else a failure. */
  private ended(): void {
    const exchange = this.exchange;
    if (exchange?.framing?.kind === 'close') this.finish(exchange);
    this.socket.destroy();
  }

  private fail(err: Error): void {
    const exchange = this.exchange;
    if (!exchange) return;
    this.exchange = undefined;
    this.resume();
    if (exchange.body) {
      exchange.body.destroy(err);
      return;
    }
    if (exchange.headBytes === 0 && this.answered > 0) Object.assign(err, { closedBeforeAnswer: true });
    exchange.reject(err);
  }
}

interface ParsedHead {
  statusCode: number;
  reason: string;
  headers: Record<string, string>;
  framing: Framing;
  keepAlive: boolean;
}

/** `bodiless`: the answer to a HEAD, which has no body whatever its Content-Length says. */
function parseHead(text: string, bodiless: boolean): ParsedHead | undefined {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const statusCode = Number(status[2]);
  const connection = (headers.connection ?? '').toLowerCase();
  let keepAlive = status[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  let framing: Framing;
  if (bodiless || statusCode === 204 || statusCode === 304 || statusCode < 200) {
    framing = { kind: 'length', left: 0 };
  } else if (headers['transfer-encoding'] !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'])) return undefined;
    framing = { kind: 'chunked', decoder: new ChunkedDecoder() };
  } else if (headers['content-length'] !== undefined) {
    if (!/^\d+$/.test(headers['content-length'])) return undefined;
    const left = Number(headers['content-length']);
    if (!Number.isSafeInteger(left)) return undefined;
    framing = { kind: 'length', left };
  } else {
    framing = { kind: 'close' };
    keepAlive = false;
  }
  return { statusCode, reason: status[3] ?? '', headers, framing, keepAlive };
}
