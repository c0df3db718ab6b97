import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import type { MountConfig } from '../config.js';
import { parseSource } from './source.js';
import { DEFAULT_PART_SIZE } from '../upload/part-size.js';
import { VERSION } from '../version.js';
import { UsageError } from './messages.js';
import { addMountOptions, type MountOptionsMode } from './mount-options.js';
import {
  formatBytes,
  parseAccessKey,
  parseByteSize,
  parseChecksumMode,
  parseConcurrency,
  parseEndpoint,
  parseId,
  parseLogLevel,
  parseName,
  parseOctalMode,
  parseChunkSize,
  parsePartSize,
  parseSeconds,
  parseWriteMode,
} from './values.js';

export { UsageError } from './messages.js';

/** What the defaults and relative paths depend on; tests pass their own. */
export interface ParseContext {
  cwd: string;
  uid: number;
  gid: number;
  home: string;
  env: Readonly<Record<string, string | undefined>>;
}

function processContext(): ParseContext {
  return {
    cwd: process.cwd(),
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    home: homedir(),
    env: process.env,
  };
}

export type CommandLine =
  | { kind: 'mount'; config: MountConfig }
  | { kind: 'unmount'; mountpoint: string }
  /** --help or --version: print the text and exit 0. */
  | { kind: 'print'; text: string };

/** Options as commander hands them over: strings, checked afterwards by ./values.js. */
interface RawOptions {
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  profile?: string;
  passwdFile?: string;
  accessKeyId?: string;
  credentialsFile?: string;
  /** false with --no-sign-request. */
  signRequest?: boolean;
  caBundle?: string;
  checksums?: string;
  readOnly?: boolean;
  nonempty?: boolean;
  uid?: string;
  gid?: string;
  fileMode?: string;
  dirMode?: string;
  umask?: string;
  allowOther?: boolean;
  allowRoot?: boolean;
  defaultPermissions?: boolean;
  statTtl?: string;
  ignoreMetadata?: boolean;
  cacheDir?: string;
  writeMode?: string;
  uploadConcurrency?: string;
  partSize?: string;
  cacheSize?: string;
  chunkSize?: string;
  memoryCacheSize?: string;
  maxReadAhead?: string;
  sequentialCutoff?: string;
  minFreeSpace?: string;
  logLevel?: string;
  debugFuse?: boolean;
  foreground?: boolean;
  /** The kernel flags among the -o options (the rest set the options above). */
  o?: string[];
}

const DEFAULTS = {
  fileMode: 0o644,
  dirMode: 0o755,
  statTtlSeconds: 5,
  logLevel: 'warn',
  writeMode: 'async',
  // Enough in flight to hide a cloud region's tens of milliseconds per request.
  uploadConcurrency: 16,
  partSize: DEFAULT_PART_SIZE,
  cacheSize: 10 * 1024 ** 3,
  chunkSize: 1024 ** 2,
  memoryCacheSize: 256 * 1024 ** 2,
  maxReadAhead: 64 * 1024 ** 2,
  // Files read once from end to end are the common big read; writing them to the disk
  // tier cost a cold 512 MiB read 30 % of its speed (docs/benchmarks.md).
  sequentialCutoff: 64 * 1024 ** 2,
  minFreeSpace: 1024 ** 3,
} as const;

function defaultCacheDir(context: ParseContext): string {
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  const xdg = context.env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(context.home, '.cache'), 's3mount');
}

/**
 * Parses the arguments after `node s3mount.js`. Never writes or exits: help and
 * version come back as text, mistakes as a UsageError.
 */
export function parseCommandLine(
  argv: readonly string[],
  context: ParseContext = processContext(),
  mode: MountOptionsMode = {},
): CommandLine {
  let result: CommandLine | undefined;
  let output = '';
  const program = addMountOptions(buildProgram(context, (text) => (output += text)), mode);
  program.action((source: string, mountpoint: string, raw: RawOptions) => {
    result = { kind: 'mount', config: toMountConfig(source, mountpoint, raw, context) };
  });
  program
    .command('unmount')
    .description('unmount, then wait until the mount process has uploaded what was written and exited')
    .argument('<MOUNTPOINT>', 'where the bucket is mounted')
    .action((mountpoint: string) => {
      result = { kind: 'unmount', mountpoint: resolve(context.cwd, mountpoint) };
    });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0) return { kind: 'print', text: output };
    // Commander's messages start with "error: " and put suggestions on a second line.
    const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
    throw new UsageError(`${message}; see s3mount --help`);
  }
  if (result === undefined) throw new UsageError('nothing to do; see s3mount --help');
  return result;
}

/** parseCommandLine for the mount form only. */
export function parseMountArgs(argv: readonly string[], context: ParseContext = processContext()): MountConfig {
  const command = parseCommandLine(argv, context);
  if (command.kind !== 'mount') throw new UsageError('expected BUCKET[:PREFIX] MOUNTPOINT; see s3mount --help');
  return command.config;
}

function toMountConfig(source: string, mountpoint: string, raw: RawOptions, context: ParseContext): MountConfig {
  const { bucket, prefix } = parseSource(source);
  if (mountpoint === '') throw new UsageError('the mount point is an empty string; give a directory');
  checkExclusions(raw);
  const allowOther = raw.allowOther ?? false;
  return {
    bucket,
    prefix,
    mountpoint: resolve(context.cwd, mountpoint),
    endpoint: checked('--endpoint', raw.endpoint, parseEndpoint, undefined),
    region: checked('--region', raw.region, parseName, undefined),
    pathStyle: raw.pathStyle ?? false,
    profile: checked('--profile', raw.profile, parseName, undefined),
    passwdFile: raw.passwdFile === undefined ? undefined : resolve(context.cwd, raw.passwdFile),
    accessKeyId: checked('--access-key-id', raw.accessKeyId, parseAccessKey, undefined),
    credentialsFile: raw.credentialsFile === undefined ? undefined : resolve(context.cwd, raw.credentialsFile),
    anonymous: raw.signRequest === false,
    caBundle: raw.caBundle === undefined ? undefined : resolve(context.cwd, raw.caBundle),
    checksums: checked('--checksums', raw.checksums, parseChecksumMode, 'when-required'),
    readOnly: raw.readOnly ?? false,
    nonempty: raw.nonempty ?? false,
    uid: checked('--uid', raw.uid, parseId, context.uid),
    gid: checked('--gid', raw.gid, parseId, context.gid),
    fileMode: checked('--file-mode', raw.fileMode, parseOctalMode, DEFAULTS.fileMode),
    dirMode: checked('--dir-mode', raw.dirMode, parseOctalMode, DEFAULTS.dirMode),
    umask: checked('--umask', raw.umask, parseOctalMode, 0),
    allowOther,
    allowRoot: raw.allowRoot ?? false,
    // Without it, any user of an allow_other mount could read and change every file.
    defaultPermissions: allowOther || (raw.defaultPermissions ?? false),
    statTtlSeconds: checked('--stat-ttl', raw.statTtl, parseSeconds, DEFAULTS.statTtlSeconds),
    ignoreMetadata: raw.ignoreMetadata ?? false,
    cacheDir: raw.cacheDir === undefined ? defaultCacheDir(context) : resolve(context.cwd, raw.cacheDir),
    writeMode: checked('--write-mode', raw.writeMode, parseWriteMode, DEFAULTS.writeMode),
    uploadConcurrency: checked('--upload-concurrency', raw.uploadConcurrency, parseConcurrency, DEFAULTS.uploadConcurrency),
    partSize: checked('--part-size', raw.partSize, parsePartSize, DEFAULTS.partSize),
    cacheSize: checked('--cache-size', raw.cacheSize, parseByteSize, DEFAULTS.cacheSize),
    chunkSize: checked('--chunk-size', raw.chunkSize, parseChunkSize, DEFAULTS.chunkSize),
    memoryCacheSize: checked('--memory-cache-size', raw.memoryCacheSize, parseByteSize, DEFAULTS.memoryCacheSize),
    maxReadAhead: checked('--max-read-ahead', raw.maxReadAhead, parseByteSize, DEFAULTS.maxReadAhead),
    sequentialCutoff: checked('--sequential-cutoff', raw.sequentialCutoff, parseByteSize, DEFAULTS.sequentialCutoff),
    minFreeSpace: checked('--min-free-space', raw.minFreeSpace, parseByteSize, DEFAULTS.minFreeSpace),
    logLevel: checked('--log-level', raw.logLevel, parseLogLevel, DEFAULTS.logLevel),
    debugFuse: raw.debugFuse ?? false,
    foreground: raw.foreground ?? false,
    mountFlags: raw.o ?? [],
  };
}

/** Options that contradict each other: refused rather than one silently ignored. */
function checkExclusions(raw: RawOptions): void {
  if (raw.signRequest === false) {
    const given = [
      ['--passwd-file', raw.passwdFile],
      ['--access-key-id', raw.accessKeyId],
      ['--credentials-file', raw.credentialsFile],
    ].find(([, value]) => value !== undefined);
    if (given) throw new UsageError(`--no-sign-request sends no credentials, so ${given[0]} would be ignored; drop one of them`);
  }
  if (raw.allowOther && raw.allowRoot) {
    throw new UsageError('--allow-other and --allow-root exclude each other; --allow-other lets root in too');
  }
}

/** The option's value, checked by `parse`; `fallback` when the option was not given. */
function checked<T>(option: string, text: string | undefined, parse: (option: string, text: string) => T, fallback: T): T {
  return text === undefined ? fallback : parse(option, text);
}

/** The mount form; subcommands added afterwards inherit its output and exit settings. */
function buildProgram(context: ParseContext, write: (text: string) => void): Command {
  return new Command('s3mount')
    .usage('[options] BUCKET[:PREFIX] MOUNTPOINT\n       s3mount unmount MOUNTPOINT')
    .description(
      'Mount an S3 bucket, or a prefix inside it, as a local directory through FUSE.\n' +
        'Works with AWS S3 and S3-compatible services (Ceph RGW, MinIO, Wasabi, ...).',
    )
    .argument(
      '<BUCKET[:PREFIX]>',
      'bucket, optionally with a key prefix as the root: mybucket, mybucket:photos/2024, s3://mybucket/photos/2024',
    )
    .argument('<MOUNTPOINT>', 'an existing directory')
    .option('--endpoint <URL>', 'S3 endpoint, e.g. http://127.0.0.1:9000 (default: AWS, or $AWS_ENDPOINT_URL)')
    .option('--region <REGION>', 'region to sign requests for (default: $AWS_REGION or the profile\'s, else us-east-1)')
    .option('--path-style', 'address buckets as ENDPOINT/BUCKET, not BUCKET.ENDPOINT (MinIO, Ceph, IP endpoints)')
    .option('--profile <NAME>', 'profile of ~/.aws/credentials and ~/.aws/config (default: $AWS_PROFILE, else "default")')
    .option('--passwd-file <FILE>', 'credentials in s3fs\'s format: ACCESS:SECRET or BUCKET:ACCESS:SECRET lines (mode 0600)')
    .option('--access-key-id <KEY>', 'access key; its secret is $AWS_SECRET_ACCESS_KEY, else blank (token keys, Ceph RGW LDAP)')
    .option('--credentials-file <FILE>', 'credentials in the AWS shared credentials format (mode 0600); --profile picks the section')
    .option('--no-sign-request', 'send requests unsigned, with no credentials: public buckets')
    .option('--ca-bundle <FILE>', 'PEM file of the CAs to trust for an https endpoint, instead of the system\'s (default: $AWS_CA_BUNDLE)')
    .option(
      '--checksums <WHEN>',
      'when-required (default: only where S3 demands one; Ceph RGW needs this) or when-supported (CRC on every upload)',
    )
    .option('--read-only', 'refuse every change')
    .option('--nonempty', 'mount over a directory that has files in it (hidden while mounted); refused otherwise')
    .option('--uid <N>', `owner of objects without s3mount/s3fs metadata (default: yours, ${context.uid})`)
    .option('--gid <N>', `group of objects without metadata (default: yours, ${context.gid})`)
    .option('--file-mode <OCTAL>', `permissions of files without metadata (default: 0${DEFAULTS.fileMode.toString(8)})`)
    .option('--dir-mode <OCTAL>', `permissions of directories without metadata (default: 0${DEFAULTS.dirMode.toString(8)})`)
    .option('--umask <OCTAL>', 'permission bits cleared from every mode shown, with or without metadata, e.g. 077 (default: none)')
    .option('--allow-other', 'let other users use the mount; the kernel checks their access against the modes (default_permissions)')
    .option('--allow-root', 'let root use the mount too (for a mount made by another user)')
    .option('--default-permissions', 'the kernel checks access against the modes shown (always on with --allow-other)')
    .option(
      '--stat-ttl <SECONDS>',
      `how long attributes and listings are trusted before S3 is asked again (default: ${DEFAULTS.statTtlSeconds})`,
    )
    .option(
      '--ignore-metadata',
      'do not read the mode, owner, mtime and symlink metadata of objects: attributes come from listings and the defaults above, so ls -l needs no request per file',
    )
    .option('--cache-dir <DIR>', `journal of files waiting for upload, read cache, and the log file (default: ${defaultCacheDir(context)})`)
    .option(
      '--write-mode <MODE>',
      'async (default: close returns once the data is journaled on local disk, uploads follow) or sync (close waits for the upload)',
    )
    .option('--upload-concurrency <N>', `objects uploaded at once in the background (default: ${DEFAULTS.uploadConcurrency})`)
    .option(
      '--part-size <SIZE>',
      `first part size of multipart uploads, 5M to 5G; parts double every 1000 parts (default: ${formatBytes(DEFAULTS.partSize)})`,
    )
    .option(
      '--cache-size <SIZE>',
      `local space for files waiting for upload (when full, writes wait for uploads), and again for the read cache (default: ${formatBytes(DEFAULTS.cacheSize)})`,
    )
    .option('--chunk-size <SIZE>', `reads fetch and cache objects in chunks of this size, 64K to 64M (default: ${formatBytes(DEFAULTS.chunkSize)})`)
    .option('--memory-cache-size <SIZE>', `chunks kept in memory (default: ${formatBytes(DEFAULTS.memoryCacheSize)})`)
    .option(
      '--max-read-ahead <SIZE>',
      `most the sequential readers fetch ahead, in 8M requests, shared by the files read at once; also bounds the next files fetched ahead of a tool reading a directory file after file (default: ${formatBytes(DEFAULTS.maxReadAhead)})`,
    )
    .option(
      '--sequential-cutoff <SIZE>',
      `a sequential read this far into a file keeps no more of it, on disk or in memory, once read (the kernel's page cache may); shared by the files read at once; 0 keeps all (default: ${formatBytes(DEFAULTS.sequentialCutoff)})`,
    )
    .option('--min-free-space <SIZE>', `the read cache leaves this much free on the cache dir's disk (default: ${formatBytes(DEFAULTS.minFreeSpace)})`)
    .option('--log-level <LEVEL>', `error, warn, info or debug (default: ${DEFAULTS.logLevel})`)
    .option('--debug-fuse', 'libfuse logs every request')
    .option('-f, --foreground', 'stay in the foreground and log to stderr; Ctrl-C unmounts')
    .version(VERSION, '-V, --version')
    .helpOption('-h, --help', 'show this help')
    .helpCommand(false)
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: write, outputError: () => {} })
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `
Without -f, s3mount returns once the mount is ready and leaves the mount running
in the background; its log goes to CACHE_DIR/s3mount.log. With -f it stays in
the foreground and logs to stderr. "s3mount unmount MOUNTPOINT" unmounts and
waits until what was written is in the bucket.

Writes: with --write-mode async, close() returns once the file is written and
fsync'ed to a journal in CACHE_DIR; uploads run in the background. fsync() waits
until the file is in the bucket (EIO if the upload fails). A mount that was killed
leaves its journal behind: the next mount with the same --cache-dir uploads it
before serving. Unmounting (s3mount unmount, Ctrl-C, SIGTERM) finishes pending
uploads first; a second Ctrl-C leaves them in the journal for the next mount.
Sizes take a K, M, G or T suffix (powers of 1024).

Credentials, the first that applies: --no-sign-request (none); --passwd-file;
--access-key-id; --credentials-file (section: --profile, AWS_PROFILE, else
default). Then, when this user has an AWS setup (AWS_ACCESS_KEY_ID, --profile or
AWS_PROFILE, a ~/.aws/credentials or ~/.aws/config file, web identity or
container variables), the AWS SDK's default chain; without one, s3fs' files
~/.passwd-s3fs, then /etc/passwd-s3fs, if there; else the SDK's chain (instance
roles). Files with secrets that others can read are refused (chmod 600). An
access key with a blank or unset secret is used as it is (token authentication,
e.g. Ceph RGW with LDAP). Secrets are never taken on the command line; the
access key given with --access-key-id reaches the background process through its
environment. AWS_ENDPOINT_URL, AWS_REGION and AWS_CA_BUNDLE apply when
--endpoint, --region and --ca-bundle are not given.

Permissions: each object shows the mode, uid and gid of its metadata, else
--file-mode or --dir-mode, --uid and --gid; --umask then clears bits from every
mode shown. Only the mounting user may enter the mount, unless --allow-other
(everyone; the kernel then checks the modes shown, as default_permissions) or
--allow-root. A user other than root needs the line user_allow_other in
/etc/fuse.conf for either.

Examples:
  s3mount my-bucket ~/bucket
  AWS_ACCESS_KEY_ID=minio AWS_SECRET_ACCESS_KEY=... s3mount \\
      --endpoint http://127.0.0.1:9000 --path-style backups:hosts/web1 /mnt/backups
  s3mount unmount /mnt/backups`,
    );
}
