import { UsageError } from './messages.js';
import { parseCommandLine, type CommandLine, type ParseContext } from './options.js';

/**
 * The calling convention of mount(8) for `mount -t s3mount` (an fstab line of type
 * s3mount): `/sbin/mount.s3mount SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS]
 * [-t TYPE]`. Its -f means "fake", not s3mount's --foreground, so the helper's flags
 * are taken out here and the rest is s3mount's own command line.
 */
export function parseMountHelperCommandLine(
  argv: readonly string[],
  context?: ParseContext,
  warn?: (message: string) => void,
): CommandLine {
  const args: string[] = [];
  let fake = false;
  let sloppy = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (/^-[sfnv]+$/.test(arg)) {
      // -n (do not write /etc/mtab) and -v (verbose) need nothing from a FUSE file system.
      fake ||= arg.includes('f');
      sloppy ||= arg.includes('s');
    } else if (arg === '-t') {
      // mount(8) names the type it was given (s3mount, or s3mount.SUBTYPE): nothing to do.
      i++;
    } else if (arg === '-N' || arg.startsWith('--namespace')) {
      throw new UsageError('mount -N (mount in another namespace) is not supported; run mount inside that namespace');
    } else {
      args.push(arg);
    }
  }
  // An undefined context takes parseCommandLine's default, the process's own.
  const command = parseCommandLine(args, context, { sloppy, warn });
  // mount -f: everything is checked, nothing is mounted.
  return fake && command.kind === 'mount' ? { kind: 'print', text: '' } : command;
}
