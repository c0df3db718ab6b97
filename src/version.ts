import { readFileSync } from 'node:fs';

/** s3mount's version: ../package.json from both src (tests) and dist (installed). */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** What s3mount's requests say they come from, for the logs of the servers they reach. */
export const USER_AGENT = `s3mount/${VERSION}`;
