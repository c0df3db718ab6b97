// Types of bench/latency-proxy.mjs for the TypeScript tests that start it.

/** Every kind `stats()` reports, in display order. */
export const REQUEST_KINDS: readonly RequestKind[];

export type RequestKind =
  | 'GET'
  | 'rangedGET'
  | 'HEAD'
  | 'PUT'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CopyObject'
  | 'CreateMultipart'
  | 'CompleteMultipart'
  | 'AbortMultipart'
  | 'List'
  | 'Delete'
  | 'Other';

/** The kinds that write object data: PUT, UploadPart, UploadPartCopy, CreateMultipart, CompleteMultipart. */
export const UPLOAD_KINDS: readonly RequestKind[];

/** UploadPartCopy answered 501 NotImplemented, as by a server without it. */
export const NO_UPLOAD_PART_COPY: Readonly<Fault>;

/** What setFault() answers instead of forwarding. */
export interface Fault {
  kinds: readonly RequestKind[];
  /** HTTP status (default 503). */
  status?: number;
  /** S3 error code (default ServiceUnavailable). */
  code?: string;
  message?: string;
  /** Refuse only the next `times` matching requests. */
  times?: number;
  /** The answer's Date header (default: now), as a server whose clock is off. */
  date?: Date;
}

export interface ProxyStats {
  requests: Record<RequestKind, number>;
  total: number;
  /** Requests that failed upstream or were answered with a status >= 400 (faults included). */
  errors: number;
  /** Requests answered by setFault(). */
  faulted: number;
  /** Request body bytes (client -> server). */
  bytesUp: number;
  /** Response body bytes (server -> client). */
  bytesDown: number;
  statuses: Record<string, number>;
  /** Requests waiting for release() right now. */
  held: number;
}

export interface LatencyProxy {
  /** e.g. http://127.0.0.1:40123 */
  endpoint: string;
  port: number;
  /** Counts since the last reset (a copy). */
  stats(): ProxyStats;
  reset(): void;
  /** Without kinds: every request, per-kind latencies dropped; with kinds: those only. */
  setLatency(ms: number, kinds?: readonly RequestKind[]): void;
  /** Requests of fault.kinds are answered by the proxy with an S3 error; undefined clears. */
  setFault(fault: Fault | undefined): void;
  /** Requests of `kinds` wait at the proxy until release(); dropped if their client goes. */
  hold(kinds: readonly RequestKind[]): void;
  /** Lets every held request go on and stops holding. */
  release(): void;
  close(): Promise<void>;
}

export function classifyRequest(method: string, target: string, headers: Record<string, string | string[] | undefined>): RequestKind;

export function startLatencyProxy(options: {
  upstream: string;
  /** Added to every request (default 20). */
  latencyMs?: number;
  bandwidthBytesPerSec?: number;
  host?: string;
}): Promise<LatencyProxy>;

/** "PUT 1000, HEAD 2003, List 4" (kinds with a zero count left out). */
export function formatCounts(stats: Pick<ProxyStats, 'requests' | 'statuses' | 'errors'>): string;
