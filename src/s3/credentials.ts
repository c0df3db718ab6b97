import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { defaultPasswdFiles, readPasswdFile } from './passwd-file.js';
import { checkSecretFile, CredentialsError } from './secret-file.js';

export { CredentialsError } from './secret-file.js';
export { readPasswdFile } from './passwd-file.js';

/** Static credentials; a blank secret is allowed (token access keys, see below). */
export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What the SDK calls for credentials whenever it needs them (and again once they expire). */
export type CredentialsProvider = ReturnType<typeof fromIni>;

export interface CredentialSources {
  bucket: string;
  /** --no-sign-request: anonymous requests (public buckets). */
  anonymous?: boolean;
  /** An s3fs-format passwd file named by the user. */
  passwdFile?: string;
  /** An access key named by the user; its secret comes from AWS_SECRET_ACCESS_KEY, else blank. */
  accessKeyId?: string;
  /** A file in the AWS shared credentials format named by the user; `profile` picks the section. */
  credentialsFile?: string;
  /** --profile. */
  profile?: string;
  env: NodeJS.ProcessEnv;
  /** The home directory: ~/.aws and ~/.passwd-s3fs. */
  home: string;
}

/**
 * How requests are signed: not at all, with credentials s3mount found itself, or with
 * whatever the AWS SDK's default chain finds. `from` names the source for messages
 * and the log (never the secret): "the passwd file /etc/passwd-s3fs".
 */
export type ResolvedCredentials =
  | { kind: 'anonymous'; from: string }
  | { kind: 'given'; credentials: StaticCredentials | CredentialsProvider; from: string }
  | { kind: 'chain'; from: string };

const CHAIN: ResolvedCredentials = { kind: 'chain', from: "the AWS SDK's default chain" };

/** For the log: where the credentials come from, and a blank secret (a typo in a passwd file looks just like a token). */
export function describeCredentials(resolved: ResolvedCredentials): string {
  if (resolved.kind === 'anonymous') return 'no credentials: requests are not signed (--no-sign-request)';
  const blank = resolved.kind === 'given' && typeof resolved.credentials !== 'function' && resolved.credentials.secretAccessKey === '';
  return `credentials from ${resolved.from}${blank ? ', signing with a blank secret (token access key)' : ''}`;
}

/**
 * Picks the credentials, in this order: --no-sign-request, --passwd-file,
 * --access-key-id, --credentials-file, an environment access key with a blank
 * secret; then the AWS setup when there is one (see hasAwsSetup); else s3fs' default
 * passwd files; else the SDK's default chain (instance and container roles...).
 *
 * We step in before the chain where it cannot do the job: s3fs passwd files, and an
 * access key with a blank secret — Ceph RGW with LDAP authentication (e.g. OSiRIS)
 * takes a token as the access key and ignores the signature, while the SDK's
 * environment provider ignores an access key whose secret is empty.
 */
export async function resolveCredentials(sources: CredentialSources): Promise<ResolvedCredentials> {
  const { bucket, env } = sources;
  if (sources.anonymous) return { kind: 'anonymous', from: '--no-sign-request' };
  if (sources.passwdFile !== undefined) return fromPasswdFile(sources.passwdFile, bucket);
  const envSecret = env.AWS_SECRET_ACCESS_KEY ?? '';
  if (sources.accessKeyId !== undefined) {
    return { kind: 'given', credentials: { accessKeyId: sources.accessKeyId, secretAccessKey: envSecret }, from: '--access-key-id' };
  }
  if (sources.credentialsFile !== undefined) return fromCredentialsFile(sources.credentialsFile, sources.profile ?? (env.AWS_PROFILE || undefined));
  const envKey = env.AWS_ACCESS_KEY_ID;
  if (envKey && envSecret === '') {
    return { kind: 'given', credentials: { accessKeyId: envKey, secretAccessKey: '' }, from: 'AWS_ACCESS_KEY_ID' };
  }
  if (await hasAwsSetup(sources)) return CHAIN;
  for (const path of defaultPasswdFiles(sources.home)) {
    if (await exists(path)) return fromPasswdFile(path, bucket);
  }
  return CHAIN;
}

async function fromPasswdFile(path: string, bucket: string): Promise<ResolvedCredentials> {
  return { kind: 'given', credentials: await readPasswdFile(path, bucket), from: `the passwd file ${path}` };
}

/**
 * The profile's credentials from `path` (an AWS shared credentials file), checked now
 * so that a missing profile is one clear line at mount time, not an error on every
 * request. The provider is kept: assumed-role profiles are refreshed by the SDK.
 */
async function fromCredentialsFile(path: string, profile = 'default'): Promise<ResolvedCredentials> {
  await checkSecretFile(path, 'credentials file');
  const provider = fromIni({ filepath: path, profile, ignoreCache: true });
  try {
    await provider();
  } catch {
    // The SDK's message names files and profiles it looked at, never secrets; ours says what to fix.
    throw new CredentialsError(
      `the credentials file ${path} has no usable profile ${profile}: add a [${profile}] section with ` +
        'aws_access_key_id and aws_secret_access_key, or name another section with --profile',
    );
  }
  return { kind: 'given', credentials: provider, from: `profile ${profile} of the credentials file ${path}` };
}

/**
 * Environment variables by which the SDK's default chain finds credentials (or a
 * profile) without any file: whoever sets them means them to be used.
 */
const AWS_CREDENTIAL_ENV = [
  'AWS_ACCESS_KEY_ID',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

/**
 * Whether this user has an AWS setup that the default chain would use: credentials
 * or a profile in the environment, --profile, or the AWS shared credentials or config
 * file. s3fs' default passwd files are read only without one, so that a stray
 * ~/.passwd-s3fs or /etc/passwd-s3fs never overrides a working AWS configuration
 * (s3fs too prefers the environment and ~/.aws/credentials to them).
 */
async function hasAwsSetup(sources: CredentialSources): Promise<boolean> {
  const { env, home } = sources;
  if (sources.profile !== undefined || AWS_CREDENTIAL_ENV.some((name) => env[name])) return true;
  const credentials = env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials');
  const config = env.AWS_CONFIG_FILE || join(home, '.aws', 'config');
  return (await exists(credentials)) || (await exists(config));
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
