import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialsError, describeCredentials, readPasswdFile, resolveCredentials, type CredentialSources, type ResolvedCredentials } from '../../src/s3/credentials.js';

let dir: string;
/** A home directory of its own, so that the machine's ~/.aws and ~/.passwd-s3fs play no part. */
let home: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3mount-creds-'));
  home = join(dir, 'home');
  await mkdir(home);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretFile(name: string, text: string, mode = 0o600): Promise<string> {
  const file = join(dir, name);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

const passwd = (text: string, mode?: number) => secretFile('passwd', text, mode);

function resolve(sources: Partial<CredentialSources>): Promise<ResolvedCredentials> {
  return resolveCredentials({ bucket: 'b', env: {}, home, ...sources });
}

/** The static keys of a resolution, failing unless s3mount resolved static keys itself. */
function keysOf(resolved: ResolvedCredentials): unknown {
  if (resolved.kind !== 'given') throw new Error(`expected given credentials, got ${resolved.kind}`);
  return typeof resolved.credentials === 'function' ? 'provider' : resolved.credentials;
}

describe('s3fs passwd files', () => {
  it('reads the line for the bucket before the default line', async () => {
    const file = await passwd('# comment\nDEFAULTKEY:defaultsecret\nmybucket:BUCKETKEY:bucketsecret\n');
    expect(await readPasswdFile(file, 'mybucket')).toEqual({ accessKeyId: 'BUCKETKEY', secretAccessKey: 'bucketsecret' });
    expect(await readPasswdFile(file, 'other')).toEqual({ accessKeyId: 'DEFAULTKEY', secretAccessKey: 'defaultsecret' });
  });

  it('accepts a blank secret (token access keys)', async () => {
    const file = await passwd('TOKEN:\n');
    expect(await readPasswdFile(file, 'b')).toEqual({ accessKeyId: 'TOKEN', secretAccessKey: '' });
  });

  it.each([0o644, 0o640, 0o604, 0o620])('refuses a file of mode %o, naming the fix', async (mode) => {
    const file = await passwd('K:S\n', mode);
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
});

describe('what s3mount resolves, in order', () => {
  it('takes an access key with a blank or unset secret from the environment', async () => {
    const token = { accessKeyId: 'TOKEN', secretAccessKey: '' };
    expect(keysOf(await resolve({ env: { AWS_ACCESS_KEY_ID: 'TOKEN', AWS_SECRET_ACCESS_KEY: '' } }))).toEqual(token);
    const resolved = await resolve({ env: { AWS_ACCESS_KEY_ID: 'TOKEN' } });
    expect(keysOf(resolved)).toEqual(token);
    expect(describeCredentials(resolved)).toBe('credentials from AWS_ACCESS_KEY_ID, signing with a blank secret (token access key)');
  });

  it('leaves complete environment credentials and profiles to the SDK chain', async () => {
    expect(await resolve({ env: { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'S' } })).toMatchObject({ kind: 'chain' });
    expect(await resolve({ profile: 'work' })).toMatchObject({ kind: 'chain' });
  });

  it('pairs --access-key-id with the environment secret, else a blank one; the passwd file wins', async () => {
    expect(keysOf(await resolve({ accessKeyId: 'CLI' }))).toEqual({ accessKeyId: 'CLI', secretAccessKey: '' });
    expect(keysOf(await resolve({ accessKeyId: 'CLI', env: { AWS_SECRET_ACCESS_KEY: 'S' } }))).toEqual({ accessKeyId: 'CLI', secretAccessKey: 'S' });
    const file = await passwd('FILEKEY:filesecret\n');
    expect(keysOf(await resolve({ passwdFile: file, accessKeyId: 'CLI' }))).toEqual({ accessKeyId: 'FILEKEY', secretAccessKey: 'filesecret' });
  });

  it('--no-sign-request signs nothing, whatever else is set', async () => {
    const resolved = await resolve({ anonymous: true, env: { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'S' } });
    expect(resolved).toEqual({ kind: 'anonymous', from: '--no-sign-request' });
    expect(describeCredentials(resolved)).toBe('no credentials: requests are not signed (--no-sign-request)');
  });
});

describe('--credentials-file (AWS shared credentials format)', () => {
  const text = '[default]\naws_access_key_id = DEFKEY\naws_secret_access_key = defsecret\n\n[backup]\naws_access_key_id = BAKKEY\naws_secret_access_key = baksecret\n';

  async function keysFrom(resolved: ResolvedCredentials): Promise<unknown> {
    if (resolved.kind !== 'given' || typeof resolved.credentials !== 'function') throw new Error('expected a provider');
    const { accessKeyId, secretAccessKey } = await resolved.credentials();
    return { accessKeyId, secretAccessKey };
  }

  it('reads the profile named by --profile, else AWS_PROFILE, else default', async () => {
    const file = await secretFile('aws/credentials', text);
    expect(await keysFrom(await resolve({ credentialsFile: file }))).toEqual({ accessKeyId: 'DEFKEY', secretAccessKey: 'defsecret' });
    expect(await keysFrom(await resolve({ credentialsFile: file, env: { AWS_PROFILE: 'backup' } }))).toEqual({ accessKeyId: 'BAKKEY', secretAccessKey: 'baksecret' });
    const resolved = await resolve({ credentialsFile: file, profile: 'backup', env: { AWS_PROFILE: 'default' } });
    expect(await keysFrom(resolved)).toEqual({ accessKeyId: 'BAKKEY', secretAccessKey: 'baksecret' });
    expect(resolved.from).toBe(`profile backup of the credentials file ${file}`);
  });

  it('comes after --passwd-file and --access-key-id, before the environment', async () => {
    const file = await secretFile('aws/credentials', text);
    expect(keysOf(await resolve({ credentialsFile: file, accessKeyId: 'CLI' }))).toEqual({ accessKeyId: 'CLI', secretAccessKey: '' });
    const env = { AWS_ACCESS_KEY_ID: 'ENVKEY', AWS_SECRET_ACCESS_KEY: 'envsecret' };
    expect(await keysFrom(await resolve({ credentialsFile: file, env }))).toEqual({ accessKeyId: 'DEFKEY', secretAccessKey: 'defsecret' });
  });

  it('refuses a missing profile, a missing file and a file others can read, in one line each', async () => {
    const file = await secretFile('aws/credentials', text);
    await expect(resolve({ credentialsFile: file, profile: 'nope' })).rejects.toThrow(
      `the credentials file ${file} has no usable profile nope: add a [nope] section with aws_access_key_id and aws_secret_access_key, or name another section with --profile`,
    );
    await expect(resolve({ credentialsFile: join(dir, 'missing') })).rejects.toThrow(/^cannot read the credentials file .*missing: ENOENT$/);
    await chmod(file, 0o644);
    await expect(resolve({ credentialsFile: file })).rejects.toThrow(`the credentials file ${file} is readable by others: chmod 600 ${file}`);
  });
});

describe("s3fs' default passwd files: only without an AWS setup", () => {
  const homePasswd = () => join(home, '.passwd-s3fs');

  it('reads ~/.passwd-s3fs when nothing else is configured', async () => {
    await secretFile('home/.passwd-s3fs', 'b:HOMEKEY:homesecret\n');
    const resolved = await resolve({});
    expect(keysOf(resolved)).toEqual({ accessKeyId: 'HOMEKEY', secretAccessKey: 'homesecret' });
    expect(resolved.from).toBe(`the passwd file ${homePasswd()}`);
  });

  it('refuses ~/.passwd-s3fs when others can read it (it is used, so it must be safe)', async () => {
    await secretFile('home/.passwd-s3fs', 'HOMEKEY:homesecret\n', 0o644);
    await expect(resolve({})).rejects.toThrow(`the passwd file ${homePasswd()} is readable by others: chmod 600 ${homePasswd()}`);
  });

  it.each<[string, Partial<CredentialSources>, string[]]>([
    ['environment keys', { env: { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'S' } }, []],
    ['AWS_PROFILE', { env: { AWS_PROFILE: 'work' } }, []],
    ['--profile', { profile: 'work' }, []],
    ['web identity', { env: { AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/token' } }, []],
    ['a container role', { env: { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials' } }, []],
    ['~/.aws/credentials', {}, ['home/.aws/credentials']],
    ['~/.aws/config', {}, ['home/.aws/config']],
    ['AWS_SHARED_CREDENTIALS_FILE', { env: { AWS_SHARED_CREDENTIALS_FILE: '@/elsewhere/credentials' } }, ['elsewhere/credentials']],
    ['AWS_CONFIG_FILE', { env: { AWS_CONFIG_FILE: '@/elsewhere/config' } }, ['elsewhere/config']],
  ])('leaves a stray ~/.passwd-s3fs alone when there is %s', async (_what, sources, files) => {
    await secretFile('home/.passwd-s3fs', 'STRAY:straysecret\n');
    for (const file of files) await secretFile(file, '[default]\n');
    // '@' stands for the test's directory, which is only known now.
    const env = Object.fromEntries(Object.entries(sources.env ?? {}).map(([k, v]) => [k, v?.replace(/^@/, dir)]));
    expect(await resolve({ ...sources, env })).toMatchObject({ kind: 'chain' });
  });
});
