// -o OPTIONS (src/cli/mount-options.ts) and the mount.s3mount calling convention
// (src/cli/mount-helper.ts), as docs/fstab.md describes them.
import { describe, expect, it } from 'vitest';
import type { MountConfig } from '../../src/config.js';
import { joinMountOptions, splitMountOptions, withoutOptions } from '../../src/cli/mount-options.js';
import { parseMountHelperCommandLine } from '../../src/cli/mount-helper.js';
import { parseCommandLine, parseMountArgs, UsageError, type ParseContext } from '../../src/cli/options.js';

const context: ParseContext = { cwd: '/work', uid: 1234, gid: 5678, home: '/home/u', env: {} };
const parse = (...argv: string[]): MountConfig => parseMountArgs(argv, context);
const base = parse('bkt', '/m');

/** The one-line UsageError message, failing the test if anything else happens. */
function usageError(parseIt: () => unknown): string {
  try {
    parseIt();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('parsing did not fail');
}
const optionsError = (...options: string[]): string => usageError(() => parse('bkt', '/m', ...options.flatMap((o) => ['-o', o])));

/** The outcome of a parse: the config, or the error message. */
function outcome(argv: string[]): MountConfig | string {
  try {
    return parse(...argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
}

/** Every long option the help lists, with its value placeholder ('' for a flag). */
function longOptions(): Array<{ name: string; placeholder: string }> {
  const help = parseCommandLine(['--help'], context);
  if (help.kind !== 'print') throw new Error('no help');
  const section = help.text.split('\nOptions:\n')[1]?.split('\n\n')[0] ?? '';
  return [...section.matchAll(/^ {2}(?:-\w, )?--([a-z][a-z-]*)(?: <([A-Z]+)>)?/gm)].map(([, name = '', placeholder = '']) => ({ name, placeholder }));
}

/** A valid value for each kind of placeholder; options added later fall back to 'x'. */
const SAMPLES: Record<string, string> = {
  URL: 'http://127.0.0.1:9000',
  REGION: 'eu-west-3',
  NAME: 'backup',
  FILE: 'creds/file',
  KEY: 'AKIAEXAMPLE',
  WHEN: 'when-supported',
  N: '7',
  OCTAL: '0640',
  SECONDS: '2.5',
  DIR: 'cache',
  MODE: 'sync',
  SIZE: '16M',
  LEVEL: 'debug',
};

describe('every option is an -o option', () => {
  const options = longOptions().filter(({ name }) => !['help', 'version'].includes(name));

  it('finds the options in the help', () => {
    expect(options.map((o) => o.name)).toEqual(expect.arrayContaining(['endpoint', 'path-style', 'file-mode', 'read-only', 'passwd-file']));
  });

  it.each(options)('-o $name is --$name', ({ name, placeholder }) => {
    const value = SAMPLES[placeholder] ?? 'x';
    const cli = placeholder ? [`--${name}`, value] : [`--${name}`];
    const expected = outcome(['bkt', '/m', ...cli]);
    const underscored = name.replaceAll('-', '_');
    for (const item of placeholder ? [`${underscored}=${value}`, `${name}=${value}`] : [underscored, name]) {
      expect(outcome(['bkt', '/m', '-o', item]), item).toEqual(expected);
    }
    // A value option given to -o checks its value as on the command line.
    if (placeholder) expect(outcome(['bkt', '/m', '-o', `${underscored}=`])).toEqual(outcome(['bkt', '/m', `--${name}`, '']));
  });

  it('reads the issue\'s example: file_mode=0640 is --file-mode 0640', () => {
    expect(parse('bkt', '/m', '-o', 'file_mode=0640')).toEqual(parse('bkt', '/m', '--file-mode', '0640'));
    expect(parse('bkt', '/m', '-o', 'file_mode=0640').fileMode).toBe(0o640);
  });

  it('takes several -o, before, between and after the arguments, and -oOPTIONS', () => {
    expect(parse('-o', 'uid=1', 'bkt', '-o', 'gid=2', '/m', '-o', 'file_mode=600,dir_mode=700', '-oro')).toMatchObject({
      uid: 1,
      gid: 2,
      fileMode: 0o600,
      dirMode: 0o700,
      readOnly: true,
    });
  });

  it('lets the last word win, between -o and the long options', () => {
    expect(parse('bkt', '/m', '-o', 'ro', '-o', 'rw').readOnly).toBe(false);
    expect(parse('bkt', '/m', '-o', 'ro,rw,ro').readOnly).toBe(true);
    expect(parse('bkt', '/m', '--read-only', '-o', 'rw').readOnly).toBe(false);
    expect(parse('bkt', '/m', '-o', 'rw', '--read-only').readOnly).toBe(true);
    expect(parse('bkt', '/m', '-o', 'uid=1', '--uid', '2', '-o', 'uid=3').uid).toBe(3);
  });

  it('knows ro and rw, and s3fs\'s use_path_request_style and url', () => {
    expect(parse('bkt', '/m', '-o', 'ro').readOnly).toBe(true);
    expect(parse('bkt', '/m', '-o', 'rw')).toEqual(base);
    expect(parse('bkt', '/m', '-o', 'use_path_request_style').pathStyle).toBe(true);
    expect(parse('bkt', '/m', '-o', 'url=https://s3.example.org').endpoint).toBe('https://s3.example.org');
  });

  it('maps s3fs\'s public_bucket=1 to --no-sign-request when there is one', () => {
    const hasIt = longOptions().some((o) => o.name === 'no-sign-request');
    if (hasIt) {
      expect(parse('bkt', '/m', '-o', 'public_bucket=1')).toEqual(parse('bkt', '/m', '--no-sign-request'));
      expect(parse('bkt', '/m', '-o', 'public_bucket=1,public_bucket=0')).toEqual(base);
      expect(optionsError('public_bucket=yes')).toBe('mount option public_bucket takes 0 or 1 (got public_bucket=yes)');
      expect(optionsError('public_bucket')).toBe('mount option public_bucket takes 0 or 1 (got public_bucket)');
    } else {
      expect(optionsError('public_bucket=1')).toMatch(/^unknown mount option 'public_bucket'/);
    }
  });

  it('refuses a value for a negated flag (--no-...)', () => {
    const negated = longOptions().find((o) => o.name.startsWith('no-') && o.placeholder === '');
    if (negated === undefined) return;
    const name = negated.name.replaceAll('-', '_');
    expect(optionsError(`${name}=1`)).toBe(`mount option ${name} takes no value (got ${name}=1)`);
  });

  it('does not take help or version as mount options', () => {
    expect(optionsError('help')).toMatch(/^unknown mount option 'help'/);
    expect(optionsError('version')).toMatch(/^unknown mount option 'version'/);
  });
});

describe('mount(8)\'s own options', () => {
  it.each([
    '_netdev',
    'nofail',
    'noauto',
    'auto',
    'user',
    'nouser',
    'users',
    'owner',
    'group',
    'defaults',
    'async',
    'atime',
    'noatime',
    'relatime',
    'norelatime',
    'strictatime',
    'nostrictatime',
    'lazytime',
    'nolazytime',
    'diratime',
    'nodiratime',
    'auto_unmount',
    'x-systemd.automount',
    'x-systemd.requires=network-online.target',
    'x-systemd.mount-timeout=30',
    'x-systemd.idle-timeout=10min',
    'x-gvfs-show',
    'comment=backups',
    'comment="a, b and c"',
  ])('accepts and ignores %s', (option) => {
    expect(parse('bkt', '/m', '-o', option)).toEqual(base);
  });

  it('hands suid, dev and exec flags to the kernel, in order', () => {
    expect(base.mountFlags).toEqual([]);
    expect(parse('bkt', '/m', '-o', 'rw,nosuid,nodev,noexec').mountFlags).toEqual(['nosuid', 'nodev', 'noexec']);
    expect(parse('bkt', '/m', '-o', 'suid,dev,exec', '-o', 'nosuid').mountFlags).toEqual(['suid', 'dev', 'exec', 'nosuid']);
  });

  it('refuses sync and dirsync, saying what to use instead', () => {
    expect(optionsError('sync')).toMatch(/^mount option sync would upload the whole file on every write\(\); write_mode=sync/);
    expect(optionsError('dirsync')).toMatch(/^mount option dirsync is not supported/);
  });

  it('reads the lines mount.fuse3 and mount(8) pass for the issue\'s fstab lines', () => {
    // What mount.fuse3 passes for `... fuse.s3mount _netdev,allow_other,endpoint=...,path_style,uid=1000,gid=1000`
    // (checked with a shell script as the helper): _netdev gone, rw first, dev,suid added for root.
    const viaFuse3 = ['mybucket:/some/prefix', '/mnt/data', '-o', 'rw,endpoint=https://s3.example.org,path_style,uid=1000,gid=1000,dev,suid'];
    expect(parse(...viaFuse3)).toMatchObject({
      bucket: 'mybucket',
      prefix: 'some/prefix/',
      mountpoint: '/mnt/data',
      endpoint: 'https://s3.example.org',
      pathStyle: true,
      uid: 1000,
      gid: 1000,
      readOnly: false,
      mountFlags: ['dev', 'suid'],
    });
    // What mount(8) passes to /sbin/mount.s3mount for `s3://mybucket/some/prefix /mnt/data s3mount _netdev,nofail,ro`.
    const viaHelper = parseMountHelperCommandLine(['s3://mybucket/some/prefix', '/mnt/data', '-o', 'ro,_netdev,nofail'], context);
    expect(viaHelper).toMatchObject({ kind: 'mount', config: { bucket: 'mybucket', prefix: 'some/prefix/', readOnly: true, mountFlags: [] } });
  });

  it('takes allow_other for --allow-other once that option exists', () => {
    const hasIt = longOptions().some((o) => o.name === 'allow-other');
    if (hasIt) expect(parse('bkt', '/m', '-o', 'allow_other')).toEqual(parse('bkt', '/m', '--allow-other'));
    else expect(optionsError('allow_other')).toMatch(/^unknown mount option 'allow_other'/);
  });
});

describe('quoting and malformed -o strings', () => {
  it('keeps commas inside double quotes, and drops the quotes', () => {
    expect(splitMountOptions('ro,endpoint="http://h:9000/a,b",uid=1')).toEqual([
      { name: 'ro' },
      { name: 'endpoint', value: 'http://h:9000/a,b' },
      { name: 'uid', value: '1' },
    ]);
    expect(splitMountOptions('"cache_dir=/var/cache/a,b"')).toEqual([{ name: 'cache_dir', value: '/var/cache/a,b' }]);
    expect(splitMountOptions('x=a=b')).toEqual([{ name: 'x', value: 'a=b' }]);
    expect(parse('bkt', '/m', '-o', 'cache_dir="/var/cache/s3,mount"').cacheDir).toBe('/var/cache/s3,mount');
  });

  it('quotes values with commas when joining, so that a split gives them back', () => {
    const items = [{ name: 'ro' }, { name: 'cache_dir', value: '/a,b' }, { name: 'uid', value: '1' }];
    expect(joinMountOptions(items)).toBe('ro,cache_dir="/a,b",uid=1');
    expect(splitMountOptions(joinMountOptions(items))).toEqual(items);
  });

  it.each([
    ['', "-o '' has an empty option; separate options with single commas"],
    ['ro,,uid=1', "-o 'ro,,uid=1' has an empty option; separate options with single commas"],
    ['ro,', "-o 'ro,' has an empty option; separate options with single commas"],
    [',ro', "-o ',ro' has an empty option; separate options with single commas"],
    ['=1000', "-o '=1000' has a value without a name ('=1000'); write name=value"],
    ['ro,=x', "-o 'ro,=x' has a value without a name ('=x'); write name=value"],
    ['endpoint="http://h', `-o 'endpoint="http://h' has an unclosed double quote; quote values as name="a,b"`],
    ['path_style=1', 'mount option path_style takes no value (got path_style=1)'],
    ['ro=yes', 'mount option ro takes no value (got ro=yes)'],
    ['nofail=1', 'mount option nofail takes no value (got nofail=1)'],
    ['nosuid=0', 'mount option nosuid takes no value (got nosuid=0)'],
    ['x_no_such=1', "unknown mount option 'x_no_such'; -o takes s3mount's options without their dashes (see s3mount --help) and mount(8)'s"],
    ['file_mode', 'mount option file_mode needs a value: file_mode=VALUE'],
    ['endpoint', 'mount option endpoint needs a value: endpoint=VALUE'],
  ])('-o %j: %s', (options, message) => {
    expect(optionsError(options)).toBe(message);
  });

  it('names an unknown option in one line, even among good ones', () => {
    expect(optionsError('ro,fsname=x,uid=1')).toBe(
      "unknown mount option 'fsname'; -o takes s3mount's options without their dashes (see s3mount --help) and mount(8)'s",
    );
    expect(optionsError('Read_Only')).toMatch(/^unknown mount option 'Read_Only'/);
    expect(usageError(() => parse('bkt', '/m', '-o'))).toMatch(/option '-o <OPTIONS>' argument missing/);
  });

  it('checks values as the long option does', () => {
    expect(optionsError('file_mode=999')).toMatch(/^--file-mode must be an octal mode from 0 to 7777/);
    expect(optionsError('uid=-1')).toMatch(/^--uid must be a non-negative integer/);
  });
});

describe('withoutOptions (what the background process is started with)', () => {
  it('drops an option given as --name value, --name=value or inside -o, and keeps the rest', () => {
    const argv = ['bkt', '/m', '--access-key-id', 'K1', '--access-key-id=K2', '-o', 'ro,access_key_id=K3,uid=1', '-oaccess-key-id=K4', '-o', 'access_key_id=K5', '-o', 'cache_dir="/a,b"'];
    expect(withoutOptions(argv, ['access-key-id'])).toEqual(['bkt', '/m', '-o', 'ro,uid=1', '-o', 'cache_dir="/a,b"']);
  });
});

describe('mount.s3mount SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE]', () => {
  const helper = (...argv: string[]) => parseMountHelperCommandLine(argv, context);

  it('reads the source, mount point and options, and ignores -n, -v and -t', () => {
    expect(helper('s3://bkt/p', '/m', '-n', '-v', '-o', 'ro,uid=3', '-t', 's3mount')).toEqual({
      kind: 'mount',
      config: { ...base, prefix: 'p/', readOnly: true, uid: 3 },
    });
    expect(helper('bkt', '/m', '-nv', '-o', 'rw')).toEqual({ kind: 'mount', config: base });
  });

  it('treats -f as mount\'s "fake": everything is checked, nothing is mounted', () => {
    expect(helper('bkt', '/m', '-f', '-o', 'ro')).toEqual({ kind: 'print', text: '' });
    expect(helper('bkt', '/m', '-sfnv')).toEqual({ kind: 'print', text: '' });
    expect(usageError(() => helper('bkt', '/m', '-f', '-o', 'bogus'))).toMatch(/^unknown mount option 'bogus'/);
  });

  it('with -s (sloppy), warns about unknown options and ignores them', () => {
    const warnings: string[] = [];
    expect(parseMountHelperCommandLine(['bkt', '/m', '-s', '-o', 'bogus,ro,other=1'], context, (w) => warnings.push(w))).toEqual({
      kind: 'mount',
      config: { ...base, readOnly: true },
    });
    expect(warnings).toEqual([
      "unknown mount option 'bogus'; -o takes s3mount's options without their dashes (see s3mount --help) and mount(8)'s: ignored (sloppy mount)",
      "unknown mount option 'other'; -o takes s3mount's options without their dashes (see s3mount --help) and mount(8)'s: ignored (sloppy mount)",
    ]);
    // Malformed strings are no unknown options: still an error.
    expect(usageError(() => helper('bkt', '/m', '-s', '-o', 'ro,,x'))).toMatch(/empty option/);
  });

  it('refuses -N (another mount namespace)', () => {
    expect(usageError(() => helper('bkt', '/m', '-N', '1234', '-o', 'ro'))).toMatch(/^mount -N .* is not supported/);
  });
});
