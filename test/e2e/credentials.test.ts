// End to end: every credential source a mount can use (docs/cli.md, "Credentials"),
// which one wins when several are present, anonymous requests, https endpoints with
// a private CA, and the one-line failures of each, with nothing left mounted.
import { chmod, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mountedFuseTargets, runOk } from '../support/run.js';
import { makeTestCa, startS3Proxy, type S3Proxy, type TestCa } from '../support/s3-proxy.js';
import { TEST_CREDENTIALS, createTestBucket, putObject, testClient, testEndpoint, testServer } from '../support/s3.js';
import {
  expectNothingMounted,
  expectPlainEmptyDir,
  forceUnmount,
  isMounted,
  mountArgs,
  runCli,
  tempDir,
  trackMountpoint,
} from './support/cli-mount.js';

const HELLO = 'hello from the bucket\n';
const { accessKeyId: KEY, secretAccessKey: SECRET } = TEST_CREDENTIALS;

let bucket: string;
/** Temporary directories that are never mount points: removed at the end. */
const scratch: string[] = [];
/** Mount points of this file: unmounted after each test, whatever happened. */
const mountpoints: string[] = [];
const proxies: S3Proxy[] = [];
let ca: TestCa | undefined;

beforeAll(async () => {
  bucket = await createTestBucket('e2e-credentials');
  await putObject(bucket, 'hello.txt', HELLO);
}, 60_000);

afterEach(async () => {
  for (const dir of mountpoints.splice(0)) {
    await forceUnmount(dir);
    if (!(await isMounted(dir))) await rmdir(dir).catch(() => undefined);
  }
  for (const proxy of proxies.splice(0)) await proxy.close();
}, 120_000);

afterAll(async () => {
  try {
    await expectNothingMounted();
  } finally {
    const targets = await mountedFuseTargets();
    for (const dir of scratch) if (!targets.some((t) => t.startsWith(dir))) await rm(dir, { recursive: true, force: true });
    await ca?.remove();
  }
}, 120_000);

async function scratchDir(label: string): Promise<string> {
  const dir = await tempDir(label);
  scratch.push(dir);
  return dir;
}

/** A file only its owner may read, as credentials must be. */
async function secretFile(path: string, text: string, mode = 0o600): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, text);
  await chmod(path, mode);
  return path;
}

/**
 * The environment of a user with no AWS setup at all: no keys, no profile, and a home
 * directory of its own (so that neither the machine's ~/.aws nor its ~/.passwd-s3fs
 * plays a part).
 */
async function bareUser(): Promise<{ home: string; env: NodeJS.ProcessEnv }> {
  const home = await scratchDir('home');
  const env = {
    HOME: home,
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SHARED_CREDENTIALS_FILE: undefined,
    AWS_CONFIG_FILE: undefined,
  };
  return { home, env };
}

interface Attempt {
  dir: string;
  cacheDir: string;
  code: number | null;
  stderr: string;
  /** The background mount's log (its --log-level is info). */
  log(): Promise<string>;
}

/** Mounts the bucket with the CLI; the mount point is unmounted after the test. */
async function mount(options: { env?: NodeJS.ProcessEnv; args?: string[]; endpoint?: string; bucket?: string } = {}): Promise<Attempt> {
  const dir = await tempDir('mnt');
  trackMountpoint(dir);
  mountpoints.push(dir);
  const cacheDir = await scratchDir('cache');
  const args = mountArgs(options.bucket ?? bucket, dir, cacheDir, ['--log-level', 'info', ...(options.args ?? [])], options.endpoint);
  const result = await runCli(args, { env: options.env, timeoutMs: 60_000 });
  return { dir, cacheDir, code: result.code, stderr: result.stderr, log: () => readFile(join(cacheDir, 's3mount.log'), 'utf8') };
}

/** Mounted, silent, and serving the bucket's bytes exactly. */
async function expectMounted(attempt: Attempt): Promise<void> {
  expect(attempt.stderr).toBe('');
  expect(attempt.code).toBe(0);
  expect(await readFile(join(attempt.dir, 'hello.txt'), 'utf8')).toBe(HELLO);
}

/** Refused with exactly `line` on stderr (after "s3mount: "), exit 1, and nothing mounted. */
async function expectRefused(attempt: Attempt, line: string | RegExp): Promise<void> {
  expect(attempt.stderr).toMatch(/^s3mount: [^\n]+\n$/);
  if (typeof line === 'string') expect(attempt.stderr).toBe(`s3mount: ${line}\n`);
  else expect(attempt.stderr.slice('s3mount: '.length, -1)).toMatch(line);
  expect(attempt.code).toBe(1);
  await expectPlainEmptyDir(attempt.dir);
}

/** `text` as a literal in a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const SYSTEM_PASSWD = '/etc/passwd-s3fs';
const systemPasswdExists = await readFile(SYSTEM_PASSWD).then(
  () => true,
  () => false,
);

/** What s3rver and RGW answer for an unknown access key or a wrong secret. */
const REFUSED_KEYS = '(InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied)';

describe('the AWS setup', () => {
  it('keys in the environment are used, and win over a stray ~/.passwd-s3fs', { timeout: 60_000 }, async () => {
    const { home } = await bareUser();
    await secretFile(join(home, '.passwd-s3fs'), 'STRAY:straysecret\n');
    const attempt = await mount({ env: { HOME: home } });
    await expectMounted(attempt);
    expect(await attempt.log()).toContain("s3mount info: credentials from the AWS SDK's default chain");
  });

  it('--profile and AWS_PROFILE pick a section of AWS_SHARED_CREDENTIALS_FILE, over a stray ~/.passwd-s3fs', { timeout: 90_000 }, async () => {
    const { home, env } = await bareUser();
    await secretFile(join(home, '.passwd-s3fs'), 'STRAY:straysecret\n');
    const aws = await scratchDir('aws');
    const files = {
      AWS_SHARED_CREDENTIALS_FILE: await secretFile(
        join(aws, 'credentials'),
        `[default]\naws_access_key_id = NOTAKEY\naws_secret_access_key = notasecret\n\n[s3test]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      ),
      AWS_CONFIG_FILE: await secretFile(join(aws, 'config'), '[profile s3test]\nregion = us-east-1\n'),
    };
    await expectMounted(await mount({ env: { ...env, ...files }, args: ['--profile', 's3test'] }));
    await expectMounted(await mount({ env: { ...env, ...files, AWS_PROFILE: 's3test' } }));
    // The default profile's keys are wrong: the message names what to check.
    const refused = await mount({ env: { ...env, ...files } });
    await expectRefused(
      refused,
      new RegExp(`^access denied to bucket ${bucket} at ${escape(testEndpoint())} \\(${REFUSED_KEYS}\\): check the credentials \\(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile\\) and the bucket policy$`),
    );
  });
});

describe('--credentials-file', () => {
  it('reads the AWS shared format, --profile picking the section; the secret shows nowhere', { timeout: 90_000 }, async () => {
    const { env } = await bareUser();
    const file = await secretFile(
      join(await scratchDir('creds'), 'credentials'),
      `[default]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n\n[wrong]\naws_access_key_id = ${KEY}\naws_secret_access_key = not-the-secret\n`,
    );
    const attempt = await mount({ env, args: ['--credentials-file', file, '--log-level', 'debug'] });
    await expectMounted(attempt);
    const log = await attempt.log();
    expect(log).toContain(`s3mount info: credentials from profile default of the credentials file ${file}`);
    expect(log).not.toContain(SECRET);

    await expectRefused(
      await mount({ env, args: ['--credentials-file', file, '--profile', 'wrong'] }),
      new RegExp(`^access denied to bucket ${bucket} at .* \\(${REFUSED_KEYS}\\): check the credentials from profile wrong of the credentials file ${escape(file)} and the bucket policy$`),
    );
    await expectRefused(
      await mount({ env, args: ['--credentials-file', file, '--profile', 'missing'] }),
      `the credentials file ${file} has no usable profile missing: add a [missing] section with aws_access_key_id and aws_secret_access_key, or name another section with --profile`,
    );
    await chmod(file, 0o644);
    await expectRefused(await mount({ env, args: ['--credentials-file', file] }), `the credentials file ${file} is readable by others: chmod 600 ${file}`);
  });
});

describe("s3fs' default passwd files", () => {
  it('~/.passwd-s3fs is used without an AWS setup; readable by others or wrong, it is named in one line', { timeout: 90_000 }, async () => {
    const { home, env } = await bareUser();
    const passwd = await secretFile(join(home, '.passwd-s3fs'), `${bucket}:${KEY}:${SECRET}\n`);
    const attempt = await mount({ env });
    await expectMounted(attempt);
    expect(await attempt.log()).toContain(`s3mount info: credentials from the passwd file ${passwd}`);

    await chmod(passwd, 0o644);
    await expectRefused(await mount({ env }), `the passwd file ${passwd} is readable by others: chmod 600 ${passwd}`);

    await secretFile(passwd, `${KEY}:not-the-secret\n`);
    await expectRefused(
      await mount({ env }),
      new RegExp(`^access denied to bucket ${bucket} at .* \\(${REFUSED_KEYS}\\): check the credentials from the passwd file ${escape(passwd)} and the bucket policy$`),
    );
  });

  // Only where the machine has none: the test must not replace an administrator's file.
  it.skipIf(systemPasswdExists)('/etc/passwd-s3fs comes next, and may be group-readable as s3fs allows', { timeout: 60_000 }, async () => {
    const { env } = await bareUser();
    try {
      await secretFile(SYSTEM_PASSWD, `${bucket}:${KEY}:${SECRET}\n`, 0o640);
      const attempt = await mount({ env });
      await expectMounted(attempt);
      expect(await attempt.log()).toContain(`s3mount info: credentials from the passwd file ${SYSTEM_PASSWD}`);
      await chmod(SYSTEM_PASSWD, 0o644);
      await expectRefused(await mount({ env }), `the passwd file ${SYSTEM_PASSWD} is readable by others: chmod 600 ${SYSTEM_PASSWD}`);
    } finally {
      await rm(SYSTEM_PASSWD, { force: true });
    }
  });
});

describe('--no-sign-request', () => {
  it('sends no credentials at all, even with keys in the environment', { timeout: 90_000 }, async () => {
    if (testServer() === 'rgw') {
      // RGW enforces access: the bucket must allow anonymous reads (s3rver lets anyone do anything).
      const policy = {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
          { Effect: 'Allow', Principal: '*', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
        ],
      };
      await testClient().send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
    }
    const proxy = await startS3Proxy({ upstream: testEndpoint() });
    proxies.push(proxy);

    const anonymous = await mount({ endpoint: proxy.endpoint, args: ['--no-sign-request'] });
    await expectMounted(anonymous);
    expect(await attemptLogLine(anonymous)).toBe('no credentials: requests are not signed (--no-sign-request)');
    const unsigned = proxy.requests.splice(0);
    expect(unsigned.length).toBeGreaterThan(0);
    for (const request of unsigned) {
      expect(request.headers.authorization, `${request.method} ${request.url}`).toBeUndefined();
      expect(request.headers['x-amz-date']).toBeUndefined();
      expect(request.url).not.toMatch(/X-Amz-Signature|X-Amz-Credential/i);
      // Path-style addressing: the bucket is the path's first segment, the host the endpoint's.
      expect(request.url.startsWith(`/${bucket}`)).toBe(true);
      expect(request.headers.host).toBe(new URL(proxy.endpoint).host);
    }
    if (testServer() === 'rgw') {
      // A bucket without the policy refuses the same anonymous mount: RGW saw no credentials.
      const closed = await createTestBucket('e2e-credentials-closed');
      const refused = await mount({ endpoint: proxy.endpoint, args: ['--no-sign-request'], bucket: closed });
      await expectRefused(
        refused,
        `access denied to bucket ${closed} at ${proxy.endpoint} (AccessDenied): the bucket does not allow anonymous access; drop --no-sign-request and give credentials`,
      );
    }

    // The same mount signed: the proxy does see credentials when there are any.
    proxy.requests.splice(0);
    await expectMounted(await mount({ endpoint: proxy.endpoint }));
    expect(proxy.requests.length).toBeGreaterThan(0);
    for (const request of proxy.requests) expect(request.headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${KEY}/`));
  });
});

/** The log line that says where the credentials come from. */
async function attemptLogLine(attempt: Attempt): Promise<string | undefined> {
  return (await attempt.log()).match(/s3mount info: ((?:no )?credentials[^\n]*)/)?.[1];
}

describe('https endpoints', () => {
  it('--ca-bundle trusts a private CA; without it, one line about the certificate', { timeout: 90_000 }, async () => {
    ca = await makeTestCa();
    const proxy = await startS3Proxy({ upstream: testEndpoint(), tls: ca.serverTls });
    proxies.push(proxy);

    const trusted = await mount({ endpoint: proxy.endpoint, args: ['--ca-bundle', ca.caFile] });
    await expectMounted(trusted);
    expect(proxy.requests.some((r) => r.url.endsWith('/hello.txt'))).toBe(true);
    await expectMounted(await mount({ endpoint: proxy.endpoint, env: { AWS_CA_BUNDLE: ca.caFile } }));

    await expectRefused(
      await mount({ endpoint: proxy.endpoint }),
      `cannot verify the TLS certificate of ${proxy.endpoint} (UNABLE_TO_VERIFY_LEAF_SIGNATURE): if the server's certificate is signed by a private CA, give that CA's certificate with --ca-bundle FILE`,
    );
    const notPem = await secretFile(join(await scratchDir('not-pem'), 'ca.pem'), 'not a certificate\n', 0o644);
    await expectRefused(
      await mount({ endpoint: proxy.endpoint, args: ['--ca-bundle', notPem] }),
      `the CA bundle ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
    // The bytes that went through TLS are the bucket's.
    expect(await runOk('cat', [join(trusted.dir, 'hello.txt')])).toBe(HELLO);
  });
});
