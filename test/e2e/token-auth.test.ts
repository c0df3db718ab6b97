// Token access keys with a blank secret, as OSiRIS-style Ceph RGW sites hand them out:
// RGW with LDAP authentication takes the token as the access key and ignores the
// signature. s3rver has no LDAP, so this file runs in the RGW pass (npm run test:rgw).
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { runOk } from '../support/run.js';
import { testEndpoint, testServer } from '../support/s3.js';
import { expectNothingMounted, forceUnmount, isMounted, mountArgs, runCli, tempDir, trackMountpoint } from './support/cli-mount.js';

function tokenClient(accessKeyId: string): S3Client {
  return new S3Client({ endpoint: testEndpoint(), region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey: '' } });
}

/** The same LDAP token with another password: RGW must refuse it. */
function withWrongPassword(token: string): string {
  const decoded = JSON.parse(Buffer.from(token, 'base64').toString()) as { RGW_TOKEN: { key: string } };
  decoded.RGW_TOKEN.key = 'not-the-password';
  return Buffer.from(JSON.stringify(decoded)).toString('base64');
}

describe.runIf(testServer() === 'rgw')('token access keys with a blank secret (Ceph RGW + LDAP)', () => {
  const token = inject('ldapToken');
  const bucket = `token-${Date.now().toString(36)}`;
  const mounted: string[] = [];
  /** Cache and passwd folders (never mount points): removed at the end. */
  const scratch: string[] = [];
  const scratchDir = async (label: string): Promise<string> => {
    const dir = await tempDir(label);
    scratch.push(dir);
    return dir;
  };

  afterEach(async () => {
    for (const dir of mounted.splice(0)) {
      if (await isMounted(dir)) await runCli(['unmount', dir]);
      await forceUnmount(dir);
    }
  });
  afterAll(async () => {
    await expectNothingMounted();
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  });

  async function mountAndWrite(label: string, extraArgs: string[], env: NodeJS.ProcessEnv): Promise<void> {
    const dir = await tempDir(label);
    trackMountpoint(dir);
    const cache = await scratchDir(`${label}-cache`);
    const result = await runCli(mountArgs(bucket, dir, cache, extraArgs), { env });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    mounted.push(dir);
    const body = `written with the token via ${label}\n`;
    await writeFile(join(dir, `${label}.txt`), body);
    // fsync: the upload, signed with the token, is done when it returns.
    await runOk('sync', [join(dir, `${label}.txt`)]);
    const got = await tokenClient(token).send(new GetObjectCommand({ Bucket: bucket, Key: `${label}.txt` }));
    expect(await got.Body?.transformToString()).toBe(body);
    expect(await readFile(join(dir, `${label}.txt`), 'utf8')).toBe(body);
    expect((await runCli(['unmount', dir])).code).toBe(0);
  }

  it('works from the environment, a passwd file and --access-key-id', { timeout: 90_000 }, async () => {
    expect(token).not.toBe('');
    await tokenClient(token).send(new CreateBucketCommand({ Bucket: bucket }));

    await mountAndWrite('env', [], { AWS_ACCESS_KEY_ID: token, AWS_SECRET_ACCESS_KEY: '' });

    const passwd = join(await scratchDir('passwd'), 'passwd-s3fs');
    await writeFile(passwd, `${bucket}:${token}:\n`);
    await chmod(passwd, 0o600);
    await mountAndWrite('passwd', ['--passwd-file', passwd], { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });

    await mountAndWrite('cli', ['--access-key-id', token], { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
  });

  it('never shows the token in ps', { timeout: 60_000 }, async () => {
    const dir = await tempDir('ps');
    trackMountpoint(dir);
    const cache = await scratchDir('ps-cache');
    const result = await runCli(mountArgs(bucket, dir, cache, ['--access-key-id', token]), { env: { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined } });
    expect(result.code).toBe(0);
    mounted.push(dir);
    const { run } = await import('../support/run.js');
    const ps = await run('ps', ['-eo', 'args']);
    expect(ps.stdout).toContain('s3mount');
    expect(ps.stdout).not.toContain(token);
  });

  it('refuses a token whose password is wrong, with one clear line', { timeout: 60_000 }, async () => {
    const dir = await tempDir('wrong');
    trackMountpoint(dir);
    const cache = await scratchDir('wrong-cache');
    const result = await runCli(mountArgs(bucket, dir, cache), { env: { AWS_ACCESS_KEY_ID: withWrongPassword(token), AWS_SECRET_ACCESS_KEY: '' } });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^s3mount: .*(access denied|credentials)/i);
    expect(await isMounted(dir)).toBe(false);
  });
});
