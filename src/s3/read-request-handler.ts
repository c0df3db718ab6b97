import { buildQueryString, HttpResponse } from '@smithy/core/protocols';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { Http1Connection, isClosedBeforeAnswer, type ConnectionTimeouts, type ServerAddress } from './http1-connection.js';

type HttpRequest = Parameters<NodeHttpHandler['handle']>[0];
type HandlerOptions = NonNullable<Parameters<NodeHttpHandler['handle']>[1]>;
type HandlerResult = Awaited<ReturnType<NodeHttpHandler['handle']>>;

export interface ReadRequestHandlerOptions extends ConnectionTimeouts {
  /** Connections open at once, across servers. */
  maxSockets: number;
  /** CA certificates to trust instead of the system's. */
  ca?: Buffer;
  /** An idle connection is closed after this long. */
  keepIdleMs?: number;
}

const DEFAULT_KEEP_IDLE_MS = 15_000;

/**
 * The S3 client's request handler. The read path's requests go over Http1Connection:
 * ranged GETs (the chunks), whose bodies it reads into large blocks, and HEADs, which it
 * sends with less CPU than Node's HTTP client (why: http1-connection.ts). Every other
 * request goes to Node's HTTP client through the SDK's own handler. Whoever signs (the
 * SDK, or direct-requests.ts) retries and parses errors as before.
 */
export class ReadRequestHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  private readonly idle = new Map<string, Http1Connection[]>();
  /** The latest TLS session of each https server, for new connections to resume. */
  private readonly tlsSessions = new Map<string, Buffer>();
  private open = 0;
  private readonly waiting: (() => void)[] = [];
  private destroyed = false;

  constructor(
    private readonly fallback: NodeHttpHandler,
    private readonly options: ReadRequestHandlerOptions,
  ) {}

  async handle(request: HttpRequest, handlerOptions: HandlerOptions = {}): Promise<HandlerResult> {
    if (!isReadRequest(request)) return this.fallback.handle(request, handlerOptions);
    const { abortSignal } = handlerOptions;
    const address: ServerAddress = {
      protocol: request.protocol === 'https:' ? 'https:' : 'http:',
      hostname: request.hostname,
      port: request.port ?? (request.protocol === 'https:' ? 443 : 80),
      ca: this.options.ca,
    };
    const query = request.query ? buildQueryString(request.query) : '';
    // The SDK sets Host (it is signed); HTTP/1.1 requires one.
    const headers = hasHeader(request.headers, 'host') ? request.headers : { ...request.headers, host: hostHeader(address) };
    const head = { method: request.method, target: query ? `${request.path}?${query}` : request.path, headers };
    // A kept connection that the server closed while it was idle fails before any byte
    // of an answer: the request then goes once more on a new connection.
    for (let attempt = 1; ; attempt++) {
      const connection = await this.connection(address, attempt > 1);
      try {
        const response = await whileNotAborted(connection, abortSignal, () => connection.send(head));
        return { response: new HttpResponse(response) };
      } catch (err) {
        if (attempt === 1 && isClosedBeforeAnswer(err)) continue;
        throw err;
      }
    }
  }

  updateHttpClientConfig(key: Parameters<NodeHttpHandler['updateHttpClientConfig']>[0], value: never): void {
    this.fallback.updateHttpClientConfig(key, value);
  }

  httpHandlerConfigs(): ReturnType<NodeHttpHandler['httpHandlerConfigs']> {
    return this.fallback.httpHandlerConfigs();
  }

  destroy(): void {
    this.destroyed = true;
    this.fallback.destroy();
    for (const connections of this.idle.values()) for (const connection of connections) connection.destroy();
    this.idle.clear();
  }

  /** An idle connection to the server (unless `fresh`), else a new one once fewer than maxSockets are open. */
  private async connection(address: ServerAddress, fresh: boolean): Promise<Http1Connection> {
    const key = `${address.protocol}//${address.hostname}:${address.port}`;
    for (;;) {
      if (this.destroyed) throw new Error('the S3 client was destroyed');
      const kept = fresh ? undefined : this.idle.get(key)?.pop();
      if (kept?.reusable) return kept;
      if (kept) continue; // closing: its close event frees its place
      if (this.open < this.options.maxSockets) break;
      const other = [...this.idle.values()].find((connections) => connections.length > 0)?.pop();
      if (other) {
        other.destroy();
        continue; // its close frees a place
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.open++;
    return new Http1Connection({ ...address, session: this.tlsSessions.get(key) }, this.options, {
      idle: (connection) => this.park(key, connection),
      close: (connection) => this.closed(key, connection),
      tlsSession: (session) => this.tlsSessions.set(key, session),
    });
  }

  private park(key: string, connection: Http1Connection): void {
    if (this.destroyed) {
      connection.destroy();
      return;
    }
    connection.park();
    const list = this.idle.get(key) ?? [];
    list.push(connection);
    this.idle.set(key, list);
    const keepIdleMs = this.options.keepIdleMs ?? DEFAULT_KEEP_IDLE_MS;
    const answered = connection.answered;
    // Closed unless it carried another request meanwhile; unref'd, so no hold on exit.
    setTimeout(() => {
      if (connection.answered === answered && list.includes(connection)) connection.destroy();
    }, keepIdleMs).unref();
    this.waiting.shift()?.();
  }

  private closed(key: string, connection: Http1Connection): void {
    this.open--;
    const list = this.idle.get(key);
    const at = list?.indexOf(connection) ?? -1;
    if (list && at >= 0) list.splice(at, 1);
    this.waiting.shift()?.();
  }
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

function hostHeader(address: ServerAddress): string {
  const standard = address.port === (address.protocol === 'https:' ? 443 : 80);
  return standard ? address.hostname : `${address.hostname}:${address.port}`;
}

/** The read path's requests: a ranged GET or a HEAD, without body, user info or fragment. */
function isReadRequest(request: HttpRequest): boolean {
  const plain = request.body === undefined && request.username == null && request.password == null && !request.fragment;
  return plain && (request.method === 'HEAD' || (request.method === 'GET' && hasHeader(request.headers, 'range')));
}

/** Runs `send`, destroying the connection (and so failing the request) if the SDK aborts it. */
async function whileNotAborted<T>(connection: Http1Connection, signal: HandlerOptions['abortSignal'], send: () => Promise<T>): Promise<T> {
  if (!signal) return send();
  const abortError = (): Error => Object.assign(new Error('Request aborted'), { name: 'AbortError' });
  if (signal.aborted) {
    connection.destroy();
    throw abortError();
  }
  const onAbort = (): void => connection.destroy(abortError());
  const target = signal as unknown as EventTarget;
  target.addEventListener('abort', onAbort, { once: true });
  try {
    return await send();
  } finally {
    target.removeEventListener('abort', onAbort);
  }
}
