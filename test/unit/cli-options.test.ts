import { describe, expect, it } from 'vitest';
import type { MountConfig } from '../../src/config.js';
import { parseCommandLine, parseMountArgs, UsageError, type ParseContext } from '../../src/cli/options.js';
import { bucketNameWarning } from '../../src/cli/source.js';

const context: ParseContext = { cwd: '/work', uid: 1234, gid: 5678, home: '/home/u', env: {} };
const parse = (...argv: string[]): MountConfig => parseMountArgs(argv, context);

/** The UsageError's message, failing the test if parsing succeeds or throws anything else. */
function usageError(...argv: string[]): string {
  try {
    parseCommandLine(argv, context);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    const message = (err as UsageError).message;
    expect(message).not.toContain('\n');
    expect(message).not.toMatch(/^error:/);
    return message;
  }
  throw new Error(`parsing ${JSON.stringify(argv)} did not fail`);
}

describe('defaults', () => {
  it('fills in every setting the user did not give', () => {
    expect(parse('bkt', 'mnt')).toEqual<MountConfig>({
      bucket: 'bkt',
      prefix: '',
      mountpoint: '/work/mnt',
      endpoint: undefined,
      region: undefined,
      pathStyle: false,
      profile: undefined,
      anonymous: false,
      checksums: 'when-required',
      readOnly: false,
      uid: 1234,
      gid: 5678,
      fileMode: 0o644,
      dirMode: 0o755,
      umask: 0,
      allowOther: false,
      allowRoot: false,
      defaultPermissions: false,
      statTtlSeconds: 5,
      ignoreMetadata: false,
      cacheDir: '/home/u/.cache/s3mount',
      writeMode: 'async',
      uploadConcurrency: 16,
      partSize: 8 * 1024 * 1024,
      cacheSize: 10 * 1024 ** 3,
      chunkSize: 1024 ** 2,
      memoryCacheSize: 256 * 1024 ** 2,
      maxReadAhead: 64 * 1024 ** 2,
      sequentialCutoff: 64 * 1024 ** 2,
      minFreeSpace: 1024 ** 3,
      logLevel: 'warn',
      debugFuse: false,
      foreground: false,
      mountFlags: [],
      nonempty: false,
    });
  });

  it('puts the cache under an absolute XDG_CACHE_HOME and ignores a relative one', () => {
    const withXdg = (value: string) => parseMountArgs(['b12', '/m'], { ...context, env: { XDG_CACHE_HOME: value } });
    expect(withXdg('/var/cache/u').cacheDir).toBe('/var/cache/u/s3mount');
    expect(withXdg('relative').cacheDir).toBe('/home/u/.cache/s3mount');
  });
});

describe('options', () => {
  it('reads every option', () => {
    const config = parse(
      'bkt',
      '/mnt/x',
      '--endpoint',
      'https://s3.example.com:8443/base',
      '--region',
      'eu-west-3',
      '--path-style',
      '--profile',
      'backup',
      '--passwd-file',
      'creds/passwd',
      '--access-key-id',
      'TOKEN',
      '--credentials-file',
      'creds/aws',
      '--ca-bundle',
      '/etc/ssl/private-ca.pem',
      '--checksums',
      'when-supported',
      '--read-only',
      '--uid',
      '0',
      '--gid',
      '4294967294',
      '--file-mode',
      '0600',
      '--dir-mode',
      '0o700',
      '--umask',
      '027',
      '--allow-other',
      '--stat-ttl',
      '0.5',
      '--cache-dir',
      'cache',
      '--write-mode',
      'sync',
      '--upload-concurrency',
      '4',
      '--part-size',
      '16M',
      '--cache-size',
      '1.5G',
      '--chunk-size',
      '4M',
      '--memory-cache-size',
      '1G',
      '--max-read-ahead',
      '128M',
      '--sequential-cutoff',
      '0',
      '--min-free-space',
      '5G',
      '--log-level',
      'debug',
      '--debug-fuse',
      '--foreground',
      '--ignore-metadata',
    );
    expect(config).toEqual<MountConfig>({
      bucket: 'bkt',
      prefix: '',
      mountpoint: '/mnt/x',
      endpoint: 'https://s3.example.com:8443/base',
      region: 'eu-west-3',
      pathStyle: true,
      profile: 'backup',
      passwdFile: '/work/creds/passwd',
      accessKeyId: 'TOKEN',
      credentialsFile: '/work/creds/aws',
      anonymous: false,
      caBundle: '/etc/ssl/private-ca.pem',
      checksums: 'when-supported',
      readOnly: true,
      uid: 0,
      gid: 4294967294,
      fileMode: 0o600,
      dirMode: 0o700,
      umask: 0o027,
      allowOther: true,
      allowRoot: false,
      defaultPermissions: true,
      statTtlSeconds: 0.5,
      ignoreMetadata: true,
      cacheDir: '/work/cache',
      writeMode: 'sync',
      uploadConcurrency: 4,
      partSize: 16 * 1024 * 1024,
      cacheSize: 1.5 * 1024 ** 3,
      chunkSize: 4 * 1024 ** 2,
      memoryCacheSize: 1024 ** 3,
      maxReadAhead: 128 * 1024 ** 2,
      sequentialCutoff: 0,
      minFreeSpace: 5 * 1024 ** 3,
      logLevel: 'debug',
      debugFuse: true,
      foreground: true,
      mountFlags: [],
      nonempty: false,
    });
  });

  it.each([
    ['--write-mode', 'later', '--write-mode must be async or sync'],
    ['--upload-concurrency', '0', '--upload-concurrency must be an integer from 1 to 1024'],
    ['--part-size', '4M', '--part-size must be from 5M to 5G'],
    ['--part-size', '6G', '--part-size must be from 5M to 5G'],
    ['--cache-size', 'lots', '--cache-size must be a size such as 512M or 10G'],
    ['--chunk-size', '32K', '--chunk-size must be from 64K to 64M'],
    ['--chunk-size', '128M', '--chunk-size must be from 64K to 64M'],
    ['--memory-cache-size', 'much', '--memory-cache-size must be a size'],
  ])('refuses %s %s with a message naming the option', (option, value, message) => {
    expect(usageError('bkt', 'm', option, value)).toContain(message);
  });

  it.each([
    ['4096', 4096],
    ['64k', 64 * 1024],
    ['512M', 512 * 1024 ** 2],
    ['2GiB', 2 * 1024 ** 3],
    ['1T', 1024 ** 4],
  ])('reads the size %s as %d bytes', (text, bytes) => {
    expect(parse('bkt', 'm', '--cache-size', text).cacheSize).toBe(bytes);
  });

  it('--no-sign-request is an anonymous mount, and refuses credentials beside it', () => {
    expect(parse('bkt', 'm', '--no-sign-request')).toMatchObject({ anonymous: true });
    expect(parse('bkt', 'm', '--no-sign-request', '--profile', 'p')).toMatchObject({ anonymous: true, profile: 'p' });
    for (const option of ['--passwd-file', '--access-key-id', '--credentials-file']) {
      expect(usageError('bkt', 'm', '--no-sign-request', option, 'x')).toBe(
        `--no-sign-request sends no credentials, so ${option} would be ignored; drop one of them`,
      );
    }
  });

  it('turns default_permissions on with --allow-other, never off; --allow-root excludes --allow-other', () => {
    expect(parse('bkt', 'm', '--allow-other')).toMatchObject({ allowOther: true, defaultPermissions: true });
    expect(parse('bkt', 'm', '--allow-root')).toMatchObject({ allowRoot: true, defaultPermissions: false });
    expect(parse('bkt', 'm', '--default-permissions')).toMatchObject({ allowOther: false, defaultPermissions: true });
    expect(usageError('bkt', 'm', '--allow-other', '--allow-root')).toBe(
      '--allow-other and --allow-root exclude each other; --allow-other lets root in too',
    );
  });

  it('takes options before, between and after the arguments, and -f for --foreground', () => {
    expect(parse('-f', 'bkt', '--read-only', 'mnt', '--uid=7')).toMatchObject({ foreground: true, readOnly: true, uid: 7 });
  });

  it.each(['error', 'warn', 'info', 'debug'] as const)('accepts log level %s', (level) => {
    expect(parse('bkt', 'm', '--log-level', level).logLevel).toBe(level);
  });

  it.each([
    ['644', 0o644],
    ['0755', 0o755],
    ['0o1777', 0o1777],
    ['7777', 0o7777],
    ['0', 0],
  ])('reads the octal mode %s', (text, mode) => {
    expect(parse('bkt', 'm', '--file-mode', text).fileMode).toBe(mode);
  });
});

describe('BUCKET[:PREFIX] and s3://', () => {
  it.each([
    ['bkt', 'bkt', ''],
    ['bkt:', 'bkt', ''],
    ['bkt:photos', 'bkt', 'photos/'],
    ['bkt:a/b', 'bkt', 'a/b/'],
    ['bkt:/a/b/', 'bkt', 'a/b/'],
    ['bkt://a', 'bkt', 'a/'],
    ['bkt:a:b', 'bkt', 'a:b/'],
    ['s3://bkt', 'bkt', ''],
    ['s3://bkt/', 'bkt', ''],
    ['s3://bkt/a/b', 'bkt', 'a/b/'],
    ['s3://bkt/a/b/', 'bkt', 'a/b/'],
    ['S3://bkt/a', 'bkt', 'a/'],
    ['Legacy_Bucket:x', 'Legacy_Bucket', 'x/'],
  ])('%s is bucket %s, prefix "%s"', (source, bucket, prefix) => {
    expect(parse(source, 'm')).toMatchObject({ bucket, prefix });
  });

  it.each([
    ['', /bucket name is missing/],
    [':prefix', /bucket name is missing/],
    ['s3://', /bucket name is missing/],
    ['s3:///prefix', /bucket name is missing/],
    ['my bucket', /'my bucket' is not a bucket name/],
    ['bkt!', /'bkt!' is not a bucket name/],
    ['x'.repeat(256), /is not a bucket name/],
  ])('refuses the source %j', (source, message) => {
    expect(usageError(source, 'm')).toMatch(message);
  });

  it('warns about names only legacy buckets have, and is quiet about good ones', () => {
    for (const good of ['abc', 'my-bucket.v2', 'a'.repeat(63), '123bucket']) expect(bucketNameWarning(good)).toBeUndefined();
    for (const legacy of ['My_Bucket', 'ab', 'a'.repeat(64), '192.168.1.1', 'a..b', '-abc', 'abc-']) {
      expect(bucketNameWarning(legacy)).toMatch(/breaks the S3 naming rules/);
    }
  });
});

describe('malformed input', () => {
  it.each([
    [['--file-mode', '9'], /--file-mode must be an octal mode .*'9'/],
    [['--file-mode', '10000'], /--file-mode must be an octal mode/],
    [['--dir-mode', 'rwx'], /--dir-mode must be an octal mode .*'rwx'/],
    [['--dir-mode', '0x1ff'], /--dir-mode must be an octal mode/],
    [['--umask', '8'], /--umask must be an octal mode .*'8'/],
    [['--uid', '-1'], /--uid must be a non-negative integer .*'-1'/],
    [['--uid', '1.5'], /--uid must be a non-negative integer/],
    [['--gid', 'staff'], /--gid must be a non-negative integer .*'staff'/],
    [['--gid', '4294967295'], /--gid must be a non-negative integer/],
    [['--stat-ttl', '-5'], /--stat-ttl must be a non-negative number/],
    [['--stat-ttl', '1e3'], /--stat-ttl must be a non-negative number/],
    [['--log-level', 'verbose'], /--log-level must be one of error, warn, info, debug .*'verbose'/],
    [['--checksums', 'always'], /--checksums must be when-required or when-supported \(got 'always'\)/],
    [['--endpoint', 'localhost:9000'], /--endpoint must be an http or https URL .*'localhost:9000'/],
    [['--endpoint', 'ftp://host'], /--endpoint must be an http or https URL/],
    [['--endpoint', 'not a url'], /--endpoint must be an http or https URL/],
    [['--region', ''], /--region must be a non-empty name/],
    [['--profile', 'two words'], /--profile must be a non-empty name/],
    [['--bogus'], /unknown option '--bogus'; see s3mount --help/],
    [['--foregrond'], /unknown option '--foregrond' \(Did you mean --foreground\?\)/],
    [['extra'], /too many arguments/],
    [['--uid'], /option '--uid <N>' argument missing/],
  ])('%j', (args, message) => {
    expect(usageError('bkt', 'm', ...args)).toMatch(message);
  });

  it('refuses credentials in the endpoint without repeating them', () => {
    const message = usageError('bkt', 'm', '--endpoint', 'http://AKIAKEY:s3cr3t@host:9000');
    expect(message).toMatch(/--endpoint must not contain credentials/);
    expect(message).not.toMatch(/AKIAKEY|s3cr3t/);
  });

  it('names a missing mount point or bucket', () => {
    expect(usageError('bkt')).toMatch(/missing required argument 'MOUNTPOINT'/);
    expect(usageError()).toMatch(/missing required argument 'BUCKET\[:PREFIX\]'/);
    expect(usageError('bkt', '')).toMatch(/mount point is an empty string/);
  });
});

describe('command line forms', () => {
  it('has an unmount form with a resolved mount point', () => {
    expect(parseCommandLine(['unmount', 'mnt'], context)).toEqual({ kind: 'unmount', mountpoint: '/work/mnt' });
    expect(usageError('unmount')).toMatch(/missing required argument 'MOUNTPOINT'/);
    expect(usageError('unmount', 'mnt', '--uid', '3')).toMatch(/unknown option '--uid'/);
    expect(() => parseMountArgs(['unmount', '/m'], context)).toThrow(UsageError);
  });

  it('returns help as text that explains the tool, its forms, options and credentials', () => {
    const result = parseCommandLine(['--help'], context);
    if (result.kind !== 'print') throw new Error(`expected help, got ${result.kind}`);
    const help = result.text;
    expect(help).toContain('Mount an S3 bucket');
    expect(help).toContain('s3mount [options] BUCKET[:PREFIX] MOUNTPOINT');
    expect(help).toContain('s3mount unmount MOUNTPOINT');
    for (const flag of [
      '--endpoint',
      '--region',
      '--path-style',
      '--profile',
      '--read-only',
      '--uid',
      '--gid',
      '--file-mode',
      '--dir-mode',
      '--stat-ttl',
      '--cache-dir',
      '--log-level',
      '--debug-fuse',
      '--foreground',
      '--version',
      '--credentials-file',
      '--no-sign-request',
      '--ca-bundle',
      '--allow-other',
      '--allow-root',
      '--default-permissions',
      '--umask',
    ]) {
      expect(help).toContain(flag);
    }
    expect(help).toMatch(/AWS_ACCESS_KEY_ID.*AWS_SECRET_ACCESS_KEY/);
    expect(help).toContain('~/.aws/credentials');
    expect(help).toMatch(/~\/\.passwd-s3fs,\s+then\s+\/etc\/passwd-s3fs/);
    expect(help).toContain('user_allow_other');
    expect(help).toMatch(/--endpoint http:\/\/\S+ --path-style/);
    expect(help).toMatch(/default:\s+yours,\s+1234/);
  });

  it('returns unmount help and the version as text', () => {
    expect(parseCommandLine(['unmount', '--help'], context)).toMatchObject({ kind: 'print', text: expect.stringContaining('unmount') });
    expect(parseCommandLine(['--version'], context)).toEqual({ kind: 'print', text: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) });
  });
});
