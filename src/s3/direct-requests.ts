import type { Readable } from 'node:stream';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DefaultIdentityProviderConfig } from '@smithy/core';
import { getEndpointFromInstructions } from '@smithy/core/endpoints';
import { extendedEncodeURIComponent, HttpRequest } from '@smithy/core/protocols';
import { USER_AGENT } from '../version.js';
import { SigV4, type SigningCredentials } from './sigv4.js';

/** The fields of a HEAD answer that Bucket.head reads, as the SDK's HeadObject names them. */
export interface HeadFields {
  ContentLength?: number;
  ETag?: string;
  LastModified?: Date;
  /** Names without "x-amz-meta-". */
  Metadata?: Record<string, string>;
  ContentType?: string;
}

/**
 * What a direct HEAD found: the object, no object, or nothing decided (ask the SDK).
 * `refused`: the server answered 403, which the SDK's own request may not get (see viaSdk()).
 * `denied`: it answered 403 where it has let direct requests in, its clock agreeing with
 * ours: the key is denied (a bucket policy), as the SDK's request would find again.
 */
export type DirectHeadAnswer = { found: HeadFields } | { missing: true } | { refused: true } | { denied: true } | undefined;

/**
 * The fields of a GET answer that Bucket's download reads, as the SDK's GetObject names
 * them: a HEAD's (ContentLength is the body's), and where the body lies in the object.
 */
export interface GetFields extends HeadFields {
  ContentRange?: string;
  Body: Readable;
}

/** What a direct GET got: the bytes, or nothing decided (ask the SDK), `refused` as above. */
export type DirectGetAnswer = { got: GetFields } | { refused: true } | undefined;

type ClientConfig = S3Client['config'];
type AuthScheme = ClientConfig['httpAuthSchemes'][number];
type IdentityProvider = NonNullable<ReturnType<AuthScheme['identityProvider']>>;
type Response = Awaited<ReturnType<ClientConfig['requestHandler']['handle']>>['response'];

interface Route {
  url: URL;
  /** The URL's path with a trailing slash: the key's segments follow. */
  base: string;
  /** The SDK's credentials, or an empty identity when it signs nothing (--no-sign-request). */
  identity: IdentityProvider;
  signer: SigV4;
  /** False under --checksums when-supported: the SDK checks the checksums of what a GET answers. */
  gets: boolean;
}

const META_PREFIX = 'x-amz-meta-';

/**
 * HeadObject and ranged GetObject without the SDK's middleware: `ls -l`, `find` and
 * every file a tool opens cost one HEAD, every file read at least one GET, and the SDK
 * spent about 0.65 ms of CPU on each (endpoint rules, schema serde, retry and user-agent
 * middleware, a signer built per request), three times what the request itself costs.
 * Measured on Ceph RGW behind 20 ms, 2000 HEADs 64 in flight: 2.0 s and 1.3 s of CPU
 * through the SDK, 0.85 s and 0.4 s without its middleware.
 *
 * The SDK's own parts still decide what must match it: its endpoint rules name the URL
 * (once per bucket), its credential provider gives the keys (refreshed as it refreshes
 * them; none at all under --no-sign-request), its clock skew correction dates the
 * signature, its request handler sends (sockets, timeouts, CA bundle). Only the plain
 * answers are decided here: 200 and 404 to a HEAD, 200 and 206 to a GET, and a HEAD's
 * 403 once the server has taken these signatures (a denied key: `ls -l` of a directory
 * a bucket policy denies would otherwise cost two HEADs an entry). Anything else (an
 * error status, a network failure) is left to the SDK's request, which retries and
 * explains errors as it does for every request. Under --checksums when-supported every
 * GET is the SDK's, which checks what the answers carry.
 */
export class DirectRequests {
  private route: Promise<Route | undefined> | undefined;
  private stopped = false;
  /** Whether the server has answered a direct request as a signed one (200, 206, 404): it takes our signatures. */
  private admitted = false;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async head(key: string): Promise<DirectHeadAnswer> {
    const response = await this.send('HEAD', key, {});
    if (response === undefined) return undefined;
    // A HEAD answer has no body; reading its end lets the connection be kept.
    drain(response);
    if (response.statusCode === 403) return this.admitted && !clockSkewed(response.headers.date, this.now()) ? { denied: true } : { refused: true };
    if (response.statusCode !== 200 && response.statusCode !== 404) return undefined;
    this.admitted = true;
    return response.statusCode === 404 ? { missing: true } : fieldsOf(response.headers);
  }

  /** GET of `key`, with the Range and If-Match headers given (lowercase names). */
  async get(key: string, headers: { range?: string; 'if-match'?: string }): Promise<DirectGetAnswer> {
    const response = await this.send('GET', key, headers);
    if (response === undefined) return undefined;
    const { statusCode } = response;
    if (statusCode === 200 || statusCode === 206) {
      this.admitted = true;
      const { found } = fieldsOf(response.headers);
      return { got: { ...found, ContentRange: response.headers['content-range'], Body: response.body as Readable } };
    }
    // An error's few bytes of XML: read so that the connection can be kept.
    drain(response);
    return statusCode === 403 ? { refused: true } : undefined;
  }

  /**
   * The SDK's request, where the direct one (`direct`) decided nothing. If the direct one
   * was refused and the SDK's is let in at its first attempt (one after a clock skew
   * correction says nothing of our signing), something of this server's differs from
   * what is signed here: every request of this bucket goes to the SDK from now on
   * instead of costing two.
   */
  async viaSdk<T extends { $metadata: { attempts?: number } }>(direct: { refused: true } | undefined, send: () => Promise<T>): Promise<T> {
    const out = await send();
    if (direct !== undefined && out.$metadata.attempts === 1) this.stopped = true;
    return out;
  }

  /** The answer to a direct request, or undefined when there is none to decide on. */
  private async send(method: 'HEAD' | 'GET', key: string, extra: Record<string, string | undefined>): Promise<Response | undefined> {
    if (this.stopped) return undefined;
    const route = await (this.route ??= this.findRoute());
    if (route === undefined || (method === 'GET' && !route.gets)) return undefined;
    try {
      // As the SDK's serializer writes a greedy label: each segment escaped, slashes kept.
      const path = route.base + key.split('/').map(extendedEncodeURIComponent).join('/');
      const given: Record<string, string> = {};
      for (const [name, value] of Object.entries(extra)) if (value !== undefined) given[name] = value;
      const identity = (await route.identity()) as Partial<SigningCredentials>;
      const headers =
        identity.accessKeyId === undefined || identity.secretAccessKey === undefined
          ? { ...given, host: route.url.host }
          : route.signer.headers({ method, host: route.url.host, path, headers: given }, identity as SigningCredentials, this.now());
      const request = new HttpRequest({
        method,
        protocol: route.url.protocol,
        hostname: route.url.hostname,
        ...(route.url.port === '' ? {} : { port: Number(route.url.port) }),
        path,
        query: {},
        // Not signed, as the SDK does not sign it either.
        headers: { ...headers, 'user-agent': USER_AGENT },
      });
      return (await this.client.config.requestHandler.handle(request)).response;
    } catch {
      return undefined;
    }
  }

  /** Now as the SDK dates its signatures: corrected by the skew it measured from the server's answers. */
  private now(): Date {
    return new Date(Date.now() + (this.client.config.systemClockOffset ?? 0));
  }

  /** How the SDK would reach this bucket, or undefined when only the SDK can (S3 Express, SigV4a). */
  private async findRoute(): Promise<Route | undefined> {
    const config = this.client.config;
    try {
      const endpoint = await getEndpointFromInstructions({ Bucket: this.bucket }, HeadObjectCommand, config);
      const auth = (endpoint.properties?.authSchemes as { name?: string; signingRegion?: string; signingName?: string }[] | undefined)?.[0];
      const scheme = config.httpAuthSchemes.find((s) => s.schemeId === 'aws.auth#sigv4');
      if (auth?.name !== 'sigv4' || scheme === undefined || Object.keys(endpoint.headers ?? {}).length > 0) return undefined;
      const identity = scheme.identityProvider(new DefaultIdentityProviderConfig({ 'aws.auth#sigv4': config.credentials }));
      if (identity === undefined) return undefined;
      const url = new URL(endpoint.url.href);
      if (url.search !== '') return undefined;
      const base = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
      const signer = new SigV4(auth.signingRegion ?? (await config.region()), auth.signingName ?? 's3');
      const gets = (await config.responseChecksumValidation()) === 'WHEN_REQUIRED';
      return { url, base, identity, signer, gets };
    } catch {
      return undefined;
    }
  }
}

/**
 * Whether an answer's Date is as far from `now` as the SDK takes for a clock skew to
 * correct (5 minutes: then its retry signs anew); a 403 then says nothing of the key.
 */
function clockSkewed(date: string | undefined, now: Date): boolean {
  const server = date === undefined ? Number.NaN : Date.parse(date);
  return !Number.isNaN(server) && Math.abs(server - now.getTime()) >= 5 * 60 * 1000;
}

/** A Content-Length as a number; undefined when missing or not a plain decimal. */
function decimal(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

function drain(response: Response): void {
  (response.body as { resume?: () => void } | undefined)?.resume?.();
}

/** The answer's fields as the SDK parses them; one it would find missing is left out. */
function fieldsOf(headers: Record<string, string | undefined>): { found: HeadFields } {
  const length = decimal(headers['content-length']);
  const lastModified = headers['last-modified'] === undefined ? Number.NaN : Date.parse(headers['last-modified']);
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && name.startsWith(META_PREFIX)) metadata[name.slice(META_PREFIX.length)] = value;
  }
  const { etag, 'content-type': contentType } = headers;
  return {
    found: {
      ...(length === undefined ? {} : { ContentLength: length }),
      ...(etag === undefined ? {} : { ETag: etag }),
      ...(Number.isNaN(lastModified) ? {} : { LastModified: new Date(lastModified) }),
      Metadata: metadata,
      ...(contentType === undefined ? {} : { ContentType: contentType }),
    },
  };
}
