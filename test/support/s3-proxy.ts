// A loopback proxy in front of the run's S3 server that records what clients send
// (to check, e.g., that a request carried no Authorization header) and can terminate
// TLS (to test https endpoints and private CAs against s3rver, which speaks only http).
//
// SigV4 stays valid: the method, the request target and every header, Host included,
// go upstream unchanged, so the server sees exactly what the client signed.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { runOk } from './run.js';

export interface RecordedRequest {
  method: string;
  /** The request target as sent: path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Over https: whether the connection resumed an earlier TLS session. */
  tlsSessionReused?: boolean;
}

export interface S3Proxy {
  /** http://127.0.0.1:PORT, or https://127.0.0.1:PORT with `tls`. */
  readonly endpoint: string;
  /** Every request received so far, in order. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface ProxyTls {
  key: Buffer | string;
  cert: Buffer | string;
}

/** `dropAnswerHeaders`: headers taken out of every answer (lowercase), as a server that sends none. */
export async function startS3Proxy(options: { upstream: string; tls?: ProxyTls; dropAnswerHeaders?: string[] }): Promise<S3Proxy> {
  const upstream = new URL(options.upstream);
  const agent = new http.Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const tlsSessionReused = req.socket instanceof TLSSocket ? req.socket.isSessionReused() : undefined;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, tlsSessionReused });
    const forward = http.request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent,
      setHost: false,
    });
    forward.on('response', (answer) => {
      const headers = { ...answer.headers };
      for (const name of options.dropAnswerHeaders ?? []) delete headers[name];
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      answer.pipe(res);
    });
    forward.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`proxy: ${err.message}\n`);
      else res.destroy(err);
    });
    req.pipe(forward);
  };
  const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handle) : http.createServer(handle);
  // A client that gives up on the TLS handshake (unknown CA) is no error here.
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

export interface TestCa {
  /** The CA's certificate (PEM): what --ca-bundle is given. */
  caFile: string;
  /** A server certificate for 127.0.0.1 and localhost, signed by the CA, and its key. */
  serverTls: ProxyTls;
  remove(): Promise<void>;
}

/** A throwaway CA and a server certificate it signed, made with openssl. */
export async function makeTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 's3mount-ca-'));
  const file = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await runOk('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
      '-subj', '/CN=s3mount test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
    await runOk('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
    await writeFile(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    await runOk('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
      '-CAcreateserial', '-out', file('server.pem'), '-days', '2', '-extfile', file('ext.cnf')]);
    return {
      caFile: file('ca.pem'),
      serverTls: { key: await readFile(file('server.key')), cert: await readFile(file('server.pem')) },
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
