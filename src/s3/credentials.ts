import { stat, readFile } from 'node:fs/promises';

/** Static credentials; a blank secret is allowed (token access keys, see below). */
export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface CredentialSources {
  bucket: string;
  /** An s3fs-format passwd file named by the user. */
  passwdFile?: string;
  /** An access key named by the user; its secret comes from AWS_SECRET_ACCESS_KEY, else blank. */
  accessKeyId?: string;
  env: NodeJS.ProcessEnv;
}

export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

/**
 * The credentials s3mount itself resolves, or undefined to leave them to the AWS SDK's
 * default chain (environment, profiles, SSO, web identity, instance roles).
 *
 * We step in where the chain cannot: an s3fs passwd file, and an access key with a
 * blank secret — Ceph RGW with LDAP authentication (e.g. OSiRIS) takes a token as the
 * access key and ignores the signature, while the SDK's environment provider ignores
 * an access key whose secret is empty.
 */
export async function resolveCredentials(sources: CredentialSources): Promise<StaticCredentials | undefined> {
  if (sources.passwdFile !== undefined) return readPasswdFile(sources.passwdFile, sources.bucket);
  const envSecret = sources.env.AWS_SECRET_ACCESS_KEY ?? '';
  if (sources.accessKeyId !== undefined) return { accessKeyId: sources.accessKeyId, secretAccessKey: envSecret };
  const envKey = sources.env.AWS_ACCESS_KEY_ID;
  if (envKey && envSecret === '') return { accessKeyId: envKey, secretAccessKey: '' };
  return undefined;
}

/**
 * s3fs' format: one `ACCESS:SECRET` line (any bucket) and/or `BUCKET:ACCESS:SECRET`
 * lines; `#` comments. Like s3fs, refuse a file that others can read.
 */
export async function readPasswdFile(path: string, bucket: string): Promise<StaticCredentials> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new CredentialsError(`cannot read the passwd file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (info.mode & 0o077) {
    throw new CredentialsError(`the passwd file ${path} is readable by others: chmod 600 ${path}`);
  }
  const text = await readFile(path, 'utf8');
  let any: StaticCredentials | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length === 3 && fields[0] === bucket) return { accessKeyId: fields[1] as string, secretAccessKey: fields[2] as string };
    if (fields.length === 2) any ??= { accessKeyId: fields[0] as string, secretAccessKey: fields[1] as string };
    if (fields.length < 2 || fields.length > 3 || fields.some((f, i) => f === '' && i < fields.length - 1)) {
      throw new CredentialsError(`the passwd file ${path} has a malformed line: expected ACCESS:SECRET or BUCKET:ACCESS:SECRET`);
    }
  }
  if (any) return any;
  throw new CredentialsError(`the passwd file ${path} has no line for bucket ${bucket} and no ACCESS:SECRET line`);
}
