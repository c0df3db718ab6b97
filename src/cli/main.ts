import { join } from 'node:path';
import type { MountConfig } from '../config.js';
import { createLogger } from '../log.js';
import { launchDaemon, takeReadyChannel } from './daemon.js';
import { errorLine, printMessage, UsageError } from './messages.js';
import { withoutOptions } from './mount-options.js';
import { parseMountHelperCommandLine } from './mount-helper.js';
import { parseCommandLine } from './options.js';
import { canonicalMountpoint } from './paths.js';
import { runMount } from './run.js';
import { bucketNameWarning } from './source.js';
import { unmountCommand } from './unmount.js';

/**
 * Runs the CLI on the arguments after the script name; resolves with the exit code.
 * `mountHelper`: the arguments follow mount(8)'s convention for /sbin/mount.s3mount.
 */
export async function main(argv: readonly string[], options: { mountHelper?: boolean } = {}): Promise<number> {
  // ps shows the process title instead of the arguments (an access key may be among them).
  process.title = 's3mount';
  try {
    const command = options.mountHelper ? parseMountHelperCommandLine(argv, undefined, printMessage) : parseCommandLine(argv);
    switch (command.kind) {
      case 'print':
        process.stdout.write(command.text);
        return 0;
      case 'unmount':
        return await unmountCommand(command.mountpoint);
      case 'mount':
        return await mountCommand({ ...command.config, mountpoint: await canonicalMountpoint(command.config.mountpoint) }, argv);
    }
  } catch (err) {
    printMessage(err instanceof UsageError ? err.message : `unexpected error: ${errorLine(err)}`);
    return 1;
  }
}

async function mountCommand(config: MountConfig, argv: readonly string[]): Promise<number> {
  // The SDK warns on every start under Node 20, in nine lines that would bury the one
  // line a failed mount prints; Node 20 support is the project's choice, not the
  // user's to act on. Setting the variable to anything else brings the warning back.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const channel = takeReadyChannel();
  const log = createLogger(config.logLevel, channel === undefined ? undefined : timestamped);
  const warning = bucketNameWarning(config.bucket);
  if (warning !== undefined) log.warn(warning);
  if (channel !== undefined) {
    // The daemon: relative paths are resolved by now, and a daemon must not keep
    // its launcher's working directory busy.
    process.chdir('/');
    return runMount(config, log, {
      onReady: () => channel.ready(),
      onFailure: (message) => {
        log.error(message);
        channel.failed(message);
      },
    });
  }
  if (config.foreground) return runMount(config, log, { onFailure: printMessage });
  try {
    await launchDaemon({ ...ownCommandLine(withoutAccessKey(argv, config)), logFile: join(config.cacheDir, 's3mount.log') });
    return 0;
  } catch (err) {
    printMessage(errorLine(err));
    return 1;
  }
}

/**
 * The background process gets --access-key-id (or -o access_key_id) through its
 * environment, where other users cannot read it, instead of its command line
 * (visible in ps to everyone).
 */
function withoutAccessKey(argv: readonly string[], config: MountConfig): readonly string[] {
  if (config.accessKeyId === undefined) return argv;
  process.env.AWS_ACCESS_KEY_ID = config.accessKeyId;
  return withoutOptions(argv, ['access-key-id']);
}

/** Many mounts share one log file: each line says when and which process. */
function timestamped(line: string): void {
  process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${line}`);
}

/** How to start this same program again with the same arguments. */
function ownCommandLine(argv: readonly string[]): { command: string; args: string[] } {
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot tell which script is running; run s3mount with -f');
  return { command: process.execPath, args: [...process.execArgv, script, ...argv] };
}
