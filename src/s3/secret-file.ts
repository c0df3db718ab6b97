import { stat } from 'node:fs/promises';

export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

/**
 * s3fs lets root share /etc/passwd-s3fs with a group (0640) but no other file: a
 * setup that works with s3fs must keep working here.
 */
const GROUP_READABLE = new Set(['/etc/passwd-s3fs']);

/**
 * Fails unless `path` (a file holding secrets; `label` names its kind in messages)
 * exists and only its owner can read or write it, as s3fs demands of passwd files:
 * a secret that other users can read is no secret, and refusing it is the only way
 * the owner learns of it.
 */
export async function checkSecretFile(path: string, label: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (err) {
    throw new CredentialsError(`cannot read the ${label} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const allowed = GROUP_READABLE.has(path) ? 0o040 : 0;
  if (mode & 0o077 & ~allowed) {
    throw new CredentialsError(`the ${label} ${path} is readable by others: chmod 600 ${path}`);
  }
}
