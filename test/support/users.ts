// Running things as another user than root (the tests run as root): `nobody`, through
// setpriv, which changes the ids and drops root's capabilities and groups.
import { run, type RunResult } from './run.js';

export const NOBODY = { uid: 65534, gid: 65534 } as const;

const AS_NOBODY = ['--reuid', String(NOBODY.uid), '--regid', String(NOBODY.gid), '--clear-groups', '--'];

/** Runs `command` as nobody; never throws on exit codes. */
export function runAsNobody(command: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  return run('setpriv', [...AS_NOBODY, command, ...args], options);
}

/** What one file operation did: `ok` with the data read, or the errno's code (EACCES...). */
export type FsOutcome = { ok: true; data?: string } | { ok: false; code: string };

export type FsOp = ['read', string] | ['append', string, string] | ['stat', string] | ['readdir', string];

// Each op in its own try, so that one refusal does not hide the next; the result is one JSON line.
const FS_OPS_SCRIPT = `
const fs = require('node:fs');
const out = [];
for (const [op, path, data] of JSON.parse(process.argv[1])) {
  try {
    if (op === 'read') out.push({ ok: true, data: fs.readFileSync(path, 'utf8') });
    else if (op === 'append') { fs.appendFileSync(path, data); out.push({ ok: true }); }
    else if (op === 'stat') { fs.statSync(path); out.push({ ok: true }); }
    else if (op === 'readdir') out.push({ ok: true, data: fs.readdirSync(path).sort().join(',') });
    else throw new Error('unknown op ' + op);
  } catch (err) {
    if (!err.code) throw err;
    out.push({ ok: false, code: err.code });
  }
}
process.stdout.write(JSON.stringify(out) + '\\n');
`;

/**
 * Carries out `ops` as nobody, in one process, and tells what each did: exact errnos,
 * not a shell's wording.
 */
export async function fsOpsAsNobody(ops: FsOp[]): Promise<FsOutcome[]> {
  const result = await runAsNobody(process.execPath, ['-e', FS_OPS_SCRIPT, JSON.stringify(ops)], { timeoutMs: 30_000, cwd: '/' });
  if (result.code !== 0) throw new Error(`file operations as nobody failed (${result.code ?? result.signal}): ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as FsOutcome[];
}

/** Whether nobody may open /dev/fuse for reading and writing, as a mount by a user other than root needs. */
export async function nobodyCanUseFuse(): Promise<boolean> {
  return (await runAsNobody('test', ['-r', '/dev/fuse', '-a', '-w', '/dev/fuse'])).code === 0;
}
