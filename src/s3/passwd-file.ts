import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StaticCredentials } from './credentials.js';
import { checkSecretFile, CredentialsError } from './secret-file.js';

const LABEL = 'passwd file';

/** Where s3fs looks for its passwd file when none is named, in its order. */
export function defaultPasswdFiles(home: string): string[] {
  return [join(home, '.passwd-s3fs'), '/etc/passwd-s3fs'];
}

/**
 * s3fs' format: one `ACCESS:SECRET` line (any bucket) and/or `BUCKET:ACCESS:SECRET`
 * lines; `#` comments. Like s3fs, refuse a file that others can read.
 */
export async function readPasswdFile(path: string, bucket: string): Promise<StaticCredentials> {
  await checkSecretFile(path, LABEL);
  const text = await readFile(path, 'utf8');
  let any: StaticCredentials | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length === 3 && fields[0] === bucket) return { accessKeyId: fields[1] as string, secretAccessKey: fields[2] as string };
    if (fields.length === 2) any ??= { accessKeyId: fields[0] as string, secretAccessKey: fields[1] as string };
    if (fields.length < 2 || fields.length > 3 || fields.some((f, i) => f === '' && i < fields.length - 1)) {
      throw new CredentialsError(`the ${LABEL} ${path} has a malformed line: expected ACCESS:SECRET or BUCKET:ACCESS:SECRET`);
    }
  }
  if (any) return any;
  throw new CredentialsError(`the ${LABEL} ${path} has no line for bucket ${bucket} and no ACCESS:SECRET line`);
}
