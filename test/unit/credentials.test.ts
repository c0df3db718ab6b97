import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialsError, readPasswdFile, resolveCredentials } from '../../src/s3/credentials.js';

describe('credentials s3mount resolves itself', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3mount-creds-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function passwd(text: string, mode = 0o600): Promise<string> {
    const file = join(dir, 'passwd');
    await writeFile(file, text);
    await chmod(file, mode);
    return file;
  }

  it('reads the line for the bucket before the default line', async () => {
    const file = await passwd('# comment\nDEFAULTKEY:defaultsecret\nmybucket:BUCKETKEY:bucketsecret\n');
    expect(await readPasswdFile(file, 'mybucket')).toEqual({ accessKeyId: 'BUCKETKEY', secretAccessKey: 'bucketsecret' });
    expect(await readPasswdFile(file, 'other')).toEqual({ accessKeyId: 'DEFAULTKEY', secretAccessKey: 'defaultsecret' });
  });

  it('accepts a blank secret (token access keys)', async () => {
    const file = await passwd('TOKEN:\n');
    expect(await readPasswdFile(file, 'b')).toEqual({ accessKeyId: 'TOKEN', secretAccessKey: '' });
  });

  it('refuses a file that others can read, naming the fix', async () => {
    const file = await passwd('K:S\n', 0o644);
    await expect(readPasswdFile(file, 'b')).rejects.toThrow(`the passwd file ${file} is readable by others: chmod 600 ${file}`);
  });

  it('says what is wrong with a malformed or useless file, never echoing secrets', async () => {
    const malformed = await passwd('just-one-field\n');
    await expect(readPasswdFile(malformed, 'b')).rejects.toThrow(/malformed line: expected ACCESS:SECRET or BUCKET:ACCESS:SECRET$/);
    const other = await passwd('otherbucket:K:verysecret\n');
    const err = await readPasswdFile(other, 'b').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsError);
    expect(String(err)).not.toContain('verysecret');
    await expect(readPasswdFile(join(dir, 'missing'), 'b')).rejects.toThrow(/cannot read the passwd file .*: ENOENT/);
  });

  it('takes an access key with a blank or unset secret from the environment', async () => {
    expect(await resolveCredentials({ bucket: 'b', env: { AWS_ACCESS_KEY_ID: 'TOKEN', AWS_SECRET_ACCESS_KEY: '' } })).toEqual({ accessKeyId: 'TOKEN', secretAccessKey: '' });
    expect(await resolveCredentials({ bucket: 'b', env: { AWS_ACCESS_KEY_ID: 'TOKEN' } })).toEqual({ accessKeyId: 'TOKEN', secretAccessKey: '' });
  });

  it('leaves complete environment credentials and profiles to the SDK chain', async () => {
    expect(await resolveCredentials({ bucket: 'b', env: { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'S' } })).toBeUndefined();
    expect(await resolveCredentials({ bucket: 'b', env: {} })).toBeUndefined();
  });

  it('pairs --access-key-id with the environment secret, else a blank one; the passwd file wins', async () => {
    expect(await resolveCredentials({ bucket: 'b', accessKeyId: 'CLI', env: {} })).toEqual({ accessKeyId: 'CLI', secretAccessKey: '' });
    expect(await resolveCredentials({ bucket: 'b', accessKeyId: 'CLI', env: { AWS_SECRET_ACCESS_KEY: 'S' } })).toEqual({ accessKeyId: 'CLI', secretAccessKey: 'S' });
    const file = await passwd('FILEKEY:filesecret\n');
    expect(await resolveCredentials({ bucket: 'b', passwdFile: file, accessKeyId: 'CLI', env: {} })).toEqual({ accessKeyId: 'FILEKEY', secretAccessKey: 'filesecret' });
  });
});
