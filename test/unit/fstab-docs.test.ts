// docs/fstab.md and contrib/systemd/ against the code: every fstab line the page shows
// is accepted the way mount(8) would hand it over, the example units pass
// `systemd-analyze verify`, and systemd's fstab generator turns an automount line into
// units whose options mount.s3mount accepts. (No systemd runs as PID 1 on the test
// machines, so an automount is never triggered for real; see docs/fstab.md.)
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMountHelperCommandLine } from '../../src/cli/mount-helper.js';
import { parseCommandLine, type CommandLine, type ParseContext } from '../../src/cli/options.js';
import { run } from '../support/run.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const UNITS = join(ROOT, 'contrib', 'systemd');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const FSTAB_GENERATOR = '/lib/systemd/system-generators/systemd-fstab-generator';
const context: ParseContext = { cwd: '/', uid: 0, gid: 0, home: '/root', env: {} };

const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

interface FstabLine {
  source: string;
  target: string;
  type: string;
  options: string;
}

/** fstab's fields, with its octal escapes (\040 for a space) decoded as mount(8) does. */
function fstabLine(text: string): FstabLine {
  const [source = '', target = '', type = '', options = ''] = text
    .trim()
    .split(/\s+/)
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  return { source, target, type, options };
}

/** What mount(8) makes of a line: `s3mount` runs mount.s3mount, `fuse.s3mount` runs s3mount via mount.fuse3. */
function parseLine({ source, target, type, options }: FstabLine): CommandLine {
  if (type === 's3mount') return parseMountHelperCommandLine([source, target, '-o', options], context);
  if (type === 'fuse.s3mount') return parseCommandLine([source, target, '-o', options], context);
  throw new Error(`not an s3mount type: ${type}`);
}

async function docLines(): Promise<FstabLine[]> {
  const text = await readFile(join(ROOT, 'docs', 'fstab.md'), 'utf8');
  const blocks = [...text.matchAll(/```fstab\n([\s\S]*?)```/g)].map(([, body = '']) => body);
  return blocks.flatMap((body) => body.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'))).map(fstabLine);
}

/** `key=value` settings of one section of a unit file. */
async function unitSection(file: string, section: string): Promise<Record<string, string>> {
  const text = await readFile(file, 'utf8');
  const body = text.split(`[${section}]\n`)[1]?.split(/\n\[/)[0] ?? '';
  return Object.fromEntries(
    body
      .split('\n')
      .filter((line) => /^\w+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

describe('docs/fstab.md', () => {
  it('shows lines for AWS, Ceph RGW, MinIO, Storj, Wasabi and DigitalOcean Spaces, and both types', async () => {
    const text = await readFile(join(ROOT, 'docs', 'fstab.md'), 'utf8');
    for (const service of ['AWS S3', 'Ceph RGW', 'MinIO', 'Storj', 'Wasabi', 'DigitalOcean Spaces']) expect(text).toContain(`**${service}`);
    const types = new Set((await docLines()).map((line) => line.type));
    expect([...types].sort()).toEqual(['fuse.s3mount', 's3mount']);
  });

  it('has only lines that s3mount accepts, as mount(8) hands them over', async () => {
    const lines = await docLines();
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const line of lines) {
      const command = parseLine(line);
      expect(command.kind, JSON.stringify(line)).toBe('mount');
    }
  });

  it('keeps secrets out of its lines: credentials come from files', async () => {
    for (const { options } of await docLines()) expect(options).not.toMatch(/secret|access_key_id/i);
  });
});

describe.skipIf(!existsSync(SYSTEMD_ANALYZE))('contrib/systemd units', () => {
  it('pass systemd-analyze verify without a word', async () => {
    const units = (await readdir(UNITS)).filter((name) => /\.(mount|automount)$/.test(name)).map((name) => join(UNITS, name));
    expect(units.map((unit) => unit.slice(UNITS.length + 1)).sort()).toEqual(['mnt-data.automount', 'mnt-data.mount']);
    const result = await run(SYSTEMD_ANALYZE, ['verify', ...units], { timeoutMs: 30_000 });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('mount what mount.s3mount accepts, where the automount waits', async () => {
    const mount = await unitSection(join(UNITS, 'mnt-data.mount'), 'Mount');
    const automount = await unitSection(join(UNITS, 'mnt-data.automount'), 'Automount');
    expect(mount.Type).toBe('s3mount');
    expect(automount.Where).toBe(mount.Where);
    const command = parseLine({ source: mount.What ?? '', target: mount.Where ?? '', type: 's3mount', options: mount.Options ?? '' });
    expect(command).toMatchObject({ kind: 'mount', config: { bucket: 'mybucket', prefix: 'some/prefix/', mountpoint: '/mnt/data' } });
  });
});

describe.skipIf(!existsSync(FSTAB_GENERATOR))('x-systemd.automount in fstab', () => {
  it('becomes a .mount and an .automount unit, and the mount\'s options are accepted', { timeout: 30_000 }, async () => {
    const automountLine = (await docLines()).find((line) => line.options.includes('x-systemd.automount'));
    if (automountLine === undefined) throw new Error('docs/fstab.md shows no x-systemd.automount line');
    const dir = await mkdtemp(join(tmpdir(), 's3mount-fstab-generator-'));
    scratch.push(dir);
    const fstab = join(dir, 'fstab');
    const { source, target, type, options } = automountLine;
    await writeFile(fstab, `${source} ${target} ${type} ${options} 0 0\n`);
    const out = join(dir, 'units');
    await mkdir(out);
    const result = await run(FSTAB_GENERATOR, [out, out, out], { env: { SYSTEMD_FSTAB: fstab, SYSTEMD_LOG_LEVEL: 'warning' } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);

    const name = target.slice(1).replaceAll('/', '-');
    const automount = await unitSection(join(out, `${name}.automount`), 'Automount');
    expect(automount).toMatchObject({ Where: target, TimeoutIdleSec: '10min' });
    const mount = await unitSection(join(out, `${name}.mount`), 'Mount');
    expect(mount).toMatchObject({ What: source, Where: target, Type: type });
    expect(parseLine({ source, target, type, options: mount.Options ?? '' }).kind).toBe('mount');
    // _netdev makes it a network mount: part of remote-fs.target, not local-fs.target.
    expect(await readdir(join(out, 'remote-fs.target.wants'))).toContain(`${name}.automount`);
  });
});
