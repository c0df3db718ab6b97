import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { USER_AGENT } from '../version.js';
import type { CredentialsProvider, StaticCredentials } from './credentials.js';
import { ReadRequestHandler } from './read-request-handler.js';

export interface S3ClientOptions {
  /** Endpoint URL; undefined means AWS (or AWS_ENDPOINT_URL, which the SDK reads). */
  endpoint?: string;
  /** undefined: the SDK's default (AWS_REGION, the profile's region), else us-east-1. */
  region?: string;
  /** Path-style addressing (http://host/bucket/key), which most non-AWS servers need. */
  pathStyle: boolean;
  /** Named profile of ~/.aws/credentials and ~/.aws/config. */
  profile?: string;
  /** Attempts per request, retries included (SDK default 3). */
  maxAttempts?: number;
  /** See MountConfig.checksums; default 'when-required'. */
  checksums?: 'when-required' | 'when-supported';
  /** Given: used as they are (see credentials.ts). Else the SDK's default chain. */
  credentials?: StaticCredentials | CredentialsProvider;
  /** Send requests unsigned, with no credentials at all (public buckets). */
  anonymous?: boolean;
  /** PEM file of the CA certificates to trust instead of the system's; default $AWS_CA_BUNDLE. */
  caBundle?: string;
}

/**
 * Anonymous requests, as the AWS CLI's --no-sign-request sends them: no Authorization
 * header, no credentials looked up. The SDK has no switch for it; its auth schemes are
 * replaced by ones whose identity is empty and whose signer leaves requests as they are.
 */
const UNSIGNED = {
  httpAuthSchemes: ['aws.auth#sigv4', 'aws.auth#sigv4a'].map((schemeId) => ({
    schemeId,
    identityProvider: () => async () => ({}),
    signer: { sign: async <T>(request: T): Promise<T> => request },
  })),
};

/** Region used when neither the options nor the SDK's sources name one. */
export const FALLBACK_REGION = 'us-east-1';

// Parallel chunk GETs, part uploads and HEAD fan-out run at the same time; the
// SDK's default of 50 sockets would queue them behind each other.
const MAX_SOCKETS = 64;
// An unreachable endpoint must fail a mount in seconds, not after the OS's
// two-minute TCP connect timeout.
const CONNECT_TIMEOUT_MS = 5_000;
// A server that stops answering mid-request would otherwise hang a FUSE call
// forever. Generous, because a server may be silent while it assembles a large
// multipart upload or copies a 5 GiB part.
const SOCKET_IDLE_TIMEOUT_MS = 300_000;

/**
 * Creates the S3 client that every layer shares. Credentials are those given, else
 * the SDK's default chain (environment, `profile` in the shared files, SSO, process,
 * web identity, instance metadata); nothing here logs or stores them.
 */
export function createS3Client(options: S3ClientOptions): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const ca = caBundle(options.caBundle);
  const checksumSetting = options.checksums === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region ?? defaultRegion(options.profile),
    forcePathStyle: options.pathStyle,
    profile: options.profile,
    credentials: options.credentials,
    ...(options.anonymous ? UNSIGNED : {}),
    maxAttempts: options.maxAttempts,
    // Added to the SDK's own, so that a server's logs tell s3mount's requests apart.
    customUserAgent: USER_AGENT,
    // Without it the SDK rebuilds the middleware chain on every send: measured here,
    // a quarter of the mount's CPU during `ls -l` of 5000 objects (one HEAD each).
    // The cache is per command class; it is safe because no send passes options and
    // no command gets middleware of its own.
    cacheMiddleware: true,
    // The SDK's default CRC32 checksums on every upload are rejected by servers
    // that do not know them (Ceph RGW with streamed bodies, older MinIO); ask
    // for checksums only where the API demands one (DeleteObjects' Content-MD5).
    requestChecksumCalculation: checksumSetting,
    responseChecksumValidation: checksumSetting,
    requestHandler: new ReadRequestHandler(
      new NodeHttpHandler({
        connectionTimeout: CONNECT_TIMEOUT_MS,
        socketTimeout: SOCKET_IDLE_TIMEOUT_MS,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent({ ...agentOptions, ca }),
      }),
      { connectMs: CONNECT_TIMEOUT_MS, idleMs: SOCKET_IDLE_TIMEOUT_MS, maxSockets: MAX_SOCKETS, ca },
    ),
  });
  keepSigners(client);
  return client;
}

/**
 * The SDK builds a new signer for every request, copying its whole resolved config into
 * it: measured here, 55 µs of CPU per request, a sixth of a HEAD's. A signer holds no
 * state of a request (its credentials come from the provider at each signing, the
 * region and service are given at each signing), so one per auth scheme serves all.
 */
function keepSigners(client: S3Client): void {
  const build = client.config.signer;
  const signers = new Map<string, ReturnType<typeof build>>();
  client.config.signer = (authScheme) => {
    const key = `${authScheme?.name}/${authScheme?.signingRegion}/${authScheme?.signingName}`;
    let signer = signers.get(key);
    if (signer === undefined) {
      signer = build(authScheme);
      signers.set(key, signer);
      // A failed build (a region provider that threw) is tried again next time.
      signer.catch(() => signers.delete(key));
    }
    return signer;
  };
}

/**
 * The SDK's own region lookup, falling back to us-east-1 instead of failing every
 * request with "Region is missing": S3-compatible servers mostly ignore the region
 * and users of them rarely configure one. Looked up once, at the first request.
 */
function defaultRegion(profile: string | undefined): () => Promise<string> {
  let region: Promise<string> | undefined;
  return () => {
    region ??= (async () => {
      // A client without a region exposes the SDK's default chain as config.region.
      const probe = new S3Client(profile === undefined ? {} : { profile });
      try {
        const found = await probe.config.region();
        return found || FALLBACK_REGION;
      } catch {
        return FALLBACK_REGION;
      } finally {
        probe.destroy();
      }
    })();
    return region;
  };
}

/**
 * The CA certificates to trust: --ca-bundle, else AWS_CA_BUNDLE as for the AWS CLI
 * and the other SDKs (the JavaScript SDK ignores it). Servers with a private CA, such
 * as an in-house Ceph RGW, are configured that way. Like the AWS CLI's, the bundle
 * replaces the system's CAs rather than adding to them.
 */
function caBundle(path = process.env.AWS_CA_BUNDLE || undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  const what = process.env.AWS_CA_BUNDLE === path ? `the CA bundle named by AWS_CA_BUNDLE (${path})` : `the CA bundle ${path}`;
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    throw new Error(`cannot read ${what}: ${reason}`);
  }
  // Node would take a file without certificates and fail every request later with a
  // certificate error that hides the real mistake.
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return pem;
}

/**
 * The client's endpoint as a URL for messages, or undefined for AWS's own
 * endpoints. Credentials never appear in it (user:password@ is dropped).
 */
export async function describeEndpoint(client: S3Client): Promise<string | undefined> {
  if (!client.config.isCustomEndpoint || !client.config.endpoint) return undefined;
  try {
    const endpoint: unknown = await client.config.endpoint();
    if (typeof endpoint !== 'object' || endpoint === null) return undefined;
    if ('url' in endpoint && endpoint.url instanceof URL) return withoutUserInfo(endpoint.url);
    const { protocol, hostname, port, path } = endpoint as { protocol?: string; hostname?: string; port?: number; path?: string };
    if (!hostname) return undefined;
    const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
    const suffix = path && path !== '/' ? path : '';
    return `${protocol ?? 'https:'}//${host}${port ? `:${port}` : ''}${suffix}`;
  } catch {
    return undefined;
  }
}

function withoutUserInfo(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href.replace(/\/$/, '');
}
