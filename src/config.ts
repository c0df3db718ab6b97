/** A mount's settings, validated: what the CLI produces and every layer reads. */
export interface MountConfig {
  bucket: string;
  /** Key prefix that the mount's root maps to: '' or 'a/b/' (always a trailing slash). */
  prefix: string;
  /** Absolute path. */
  mountpoint: string;
  /** S3 endpoint URL; undefined means AWS (or AWS_ENDPOINT_URL, read by the SDK). */
  endpoint?: string;
  /** undefined: from the environment / profile, else us-east-1. */
  region?: string;
  pathStyle: boolean;
  /** Named profile of ~/.aws/credentials and ~/.aws/config. */
  profile?: string;
  /** s3fs-format passwd file (ACCESS:SECRET or BUCKET:ACCESS:SECRET lines). */
  passwdFile?: string;
  /** Access key given on the command line; the secret is AWS_SECRET_ACCESS_KEY or blank. */
  accessKeyId?: string;
  /** AWS shared credentials file (absolute path); `profile` picks the section. */
  credentialsFile?: string;
  /** --no-sign-request: requests go unsigned, with no credentials (public buckets). */
  anonymous: boolean;
  /** PEM file of the CA certificates to trust for https endpoints (absolute path). */
  caBundle?: string;
  /**
   * When the SDK adds CRC checksums to requests and checks them in answers:
   * 'when-required' (only where the API demands one; what Ceph RGW and older MinIO
   * need for streamed uploads) or 'when-supported' (everywhere the store offers them).
   */
  checksums: ChecksumMode;
  readOnly: boolean;
  /** Mount over a mount point that has files in it. */
  nonempty: boolean;
  /** Owner and modes for objects without s3mount/s3fs metadata. */
  uid: number;
  gid: number;
  fileMode: number;
  dirMode: number;
  /** Permission bits cleared from every mode shown, metadata or not (as s3fs' umask). */
  umask: number;
  /** Users other than the mounting one may use the mount (the kernel then checks modes). */
  allowOther: boolean;
  /** root may use the mount besides the mounting user. */
  allowRoot: boolean;
  /** The kernel checks permissions against the modes shown; always on with allowOther. */
  defaultPermissions: boolean;
  /** How long attributes and listings are trusted before asking S3 again. */
  statTtlSeconds: number;
  /** Attributes come from listings and the defaults alone: no HEAD per listed entry. */
  ignoreMetadata: boolean;
  /** The write journal (staged files waiting for upload) lives here, and the log. */
  cacheDir: string;
  /**
   * 'async': close returns once the data is in the local journal, uploads follow in the
   * background. 'sync': close returns once the upload is done. fsync waits in both.
   */
  writeMode: WriteMode;
  /** Objects uploaded at once in the background. */
  uploadConcurrency: number;
  /** First part size of multipart uploads (bytes); later parts grow, see upload/part-size.ts. */
  partSize: number;
  /**
   * Bytes the journal may hold before writes wait for uploads to free space; the read
   * cache's chunk files keep within the same figure (each on its own).
   */
  cacheSize: number;
  /** Objects are read as chunks of this size (ranged GETs), cached by ETag. */
  chunkSize: number;
  /** Bytes of chunks kept in memory. */
  memoryCacheSize: number;
  /** Most bytes a sequential reader has fetched ahead. */
  maxReadAhead: number;
  /**
   * A sequential read this far past where it began keeps no more chunks, on disk or (once
   * read) in memory: the kernel's page cache holds them; 0 keeps every chunk.
   */
  sequentialCutoff: number;
  /** The read cache leaves at least this much free on the cache dir's file system. */
  minFreeSpace: number;
  logLevel: LogLevel;
  /** libfuse prints every request to stderr. */
  debugFuse: boolean;
  /** Stay in the foreground instead of returning once mounted. */
  foreground: boolean;
  /** Flags for the kernel's mount, as mount(8) spells them (nosuid, nodev, noexec, suid...); none if undefined. */
  mountFlags?: readonly string[];
}

export type WriteMode = 'async' | 'sync';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export type ChecksumMode = 'when-required' | 'when-supported';
