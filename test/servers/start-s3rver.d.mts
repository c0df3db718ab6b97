export interface RunningS3rver {
  /** e.g. http://127.0.0.1:40123 (path-style, region us-east-1, credentials S3RVER/S3RVER) */
  endpoint: string;
  /** Stops exactly this server process and resolves once it has exited. */
  stop(): Promise<void>;
}

/** Starts the patched s3rver on a free loopback port, storing its buckets in `dataDir`. */
export function startS3rver(dataDir: string, options?: { timeoutMs?: number }): Promise<RunningS3rver>;
