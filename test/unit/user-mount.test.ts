import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { userMountRefusal } from '../../src/fuse/user-mount.js';

// The checks a mount by a user other than root goes through before fusermount3 (the
// device's access is checked for real, as that user, in test/e2e/permissions.test.ts).
describe('mounts by users other than root', () => {
  let dir: string;
  let device: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3mount-user-mount-'));
    device = join(dir, 'fuse');
    await writeFile(device, '');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const conf = async (text: string): Promise<string> => {
    const file = join(dir, 'fuse.conf');
    await writeFile(file, text);
    return file;
  };

  it('root may always mount, with any option', async () => {
    expect(await userMountRefusal({ uid: 0, allowOther: true, device: join(dir, 'missing'), conf: join(dir, 'missing') })).toBeUndefined();
  });

  it('needs the device', async () => {
    expect(await userMountRefusal({ uid: 1000, device: join(dir, 'missing') })).toBe(
      `${join(dir, 'missing')} cannot be opened for reading and writing by this user: give users access to it (most systems make it mode 0666) or mount as root`,
    );
    expect(await userMountRefusal({ uid: 1000, device })).toBeUndefined();
  });

  it('needs user_allow_other, alone on its line, for --allow-other and --allow-root', async () => {
    const commented = await conf('# user_allow_other - lets users...\n#user_allow_other\n');
    expect(await userMountRefusal({ uid: 1000, allowOther: true, device, conf: commented })).toBe(
      `--allow-other needs the line user_allow_other in ${commented} when the mount is not made by root: add it (as root) or mount as root`,
    );
    expect(await userMountRefusal({ uid: 1000, allowRoot: true, device, conf: join(dir, 'missing') })).toMatch(/^--allow-root needs the line user_allow_other in /);
    expect(await userMountRefusal({ uid: 1000, allowOther: true, device, conf: await conf('mount_max = 1000\n  user_allow_other \n') })).toBeUndefined();
    expect(await userMountRefusal({ uid: 1000, device, conf: commented })).toBeUndefined();
  });
});
