import type { EventEmitter } from 'node:events';
import { Option, type Command } from 'commander';
import { UsageError } from './messages.js';

/**
 * `-o OPTIONS`, the way mount(8), /etc/fstab and mount.fuse3 hand options over.
 * Every long option of the command is also an -o option, found by name in the
 * command's own option list (so options added later need nothing here):
 * `file_mode=0640` or `file-mode=0640` is `--file-mode 0640`, a bare `path_style` is
 * `--path-style`. On top of that come the options that belong to mount(8), not to
 * s3mount (MOUNT_ONLY, KERNEL_FLAGS), and a few names other tools use (ALIASES).
 *
 * Commas separate options; a comma inside double quotes does not, and the quotes are
 * dropped (`endpoint="http://h/a,b"`): that is the quoting libmount and mount.fuse3
 * understand too, so a quoted value survives fstab, mount(8) and mount.fuse3 intact.
 */

/** One `name` or `name=value` of an -o list, quotes removed. */
export interface MountOptionItem {
  name: string;
  value?: string;
}

export function splitMountOptions(text: string): MountOptionItem[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (char === ',' && !quoted) {
      items.push(current);
      current = '';
    } else current += char;
  }
  if (quoted) throw new UsageError(`-o '${text}' has an unclosed double quote; quote values as name="a,b"`);
  items.push(current);
  return items.map((item) => {
    if (item === '') throw new UsageError(`-o '${text}' has an empty option; separate options with single commas`);
    const equals = item.indexOf('=');
    if (equals === 0) throw new UsageError(`-o '${text}' has a value without a name ('${item}'); write name=value`);
    return equals < 0 ? { name: item } : { name: item.slice(0, equals), value: item.slice(equals + 1) };
  });
}

/** The inverse of splitMountOptions: values with commas are quoted. */
export function joinMountOptions(items: readonly MountOptionItem[]): string {
  return items
    .map(({ name, value }) => (value === undefined ? name : value.includes(',') ? `${name}="${value}"` : `${name}=${value}`))
    .join(',');
}

/**
 * mount(8)'s own options, which mean nothing to the file system: who may mount
 * (user, users, owner, group), when (auto, noauto, _netdev, nofail, x-systemd.*),
 * notes (comment=, x-*). mount(8) and systemd act on them before s3mount runs and
 * pass some of them on anyway, so they are accepted and ignored. So are access-time
 * options, since S3 keeps no access times, and libfuse's auto_unmount, since s3mount
 * always unmounts when its process dies.
 */
const MOUNT_ONLY = new Set([
  '_netdev',
  'nofail',
  'noauto',
  'auto',
  'user',
  'nouser',
  'users',
  'owner',
  'group',
  'defaults',
  'async',
  'atime',
  'noatime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
  'lazytime',
  'nolazytime',
  'diratime',
  'nodiratime',
  'auto_unmount',
]);
/** Notes for systemd and other tools, with or without a value: `comment=...`, `x-systemd.automount`. */
const isForOtherTools = (name: string): boolean => name === 'comment' || name.startsWith('x-');

/**
 * Flags the kernel applies to the mount, handed to libfuse as they are. mount.fuse3
 * adds `dev,suid` when root mounts, and mount(8) adds `nosuid,nodev,noexec` for
 * `user` mounts; the last of a pair wins, as with mount(8).
 */
const KERNEL_FLAGS: ReadonlySet<string> = new Set(['suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec']);

/** Kernel flags s3mount refuses, with the reason. */
const REFUSED: Readonly<Record<string, string>> = {
  sync: 'would upload the whole file on every write(); write_mode=sync makes close() wait for the upload',
  dirsync: 'is not supported: directory changes reach S3 before the call returns anyway',
};

/**
 * Other names for options: mount(8)'s ro/rw, and s3fs's names where its meaning is
 * ours (s3fs's `endpoint` is a region, so it is not among them). For a flag, `off`
 * clears it and `values` lists the values it takes (none without `values`).
 */
interface Alias {
  option: string;
  off?: true;
  values?: Readonly<Record<string, boolean>>;
}
const ALIASES: Readonly<Record<string, Alias>> = {
  ro: { option: 'read-only' },
  rw: { option: 'read-only', off: true },
  use_path_request_style: { option: 'path-style' },
  url: { option: 'endpoint' },
  public_bucket: { option: 'no-sign-request', values: { 1: true, 0: false } },
};

/** Options of the command that are no mount settings. */
const NOT_MOUNT_SETTINGS = new Set(['help', 'version']);

export interface MountOptionsMode {
  /**
   * mount -s ("sloppy"): unknown options are reported to `warn` and ignored instead
   * of failing the mount.
   */
  sloppy?: boolean;
  warn?: (message: string) => void;
}

/**
 * Adds `-o OPTIONS` (repeatable) to `program`. Each item is applied where it stands
 * among the other arguments, so the last of `-o ro ... --read-only`, `-o rw` wins as
 * on a command line. The option's own value is the list of KERNEL_FLAGS given.
 */
export function addMountOptions(program: Command, mode: MountOptionsMode = {}): Command {
  const option = new Option(
    '-o <OPTIONS>',
    'mount options, comma-separated, as in /etc/fstab: every option above without its dashes ' +
      '(file_mode=0640, path_style, read_only or ro) and mount(8)\'s (_netdev, nofail, nosuid, ...); may be repeated',
  ).argParser((text: string, previous: string[] | undefined) => {
    const flags = [...(previous ?? [])];
    for (const item of splitMountOptions(text)) applyItem(program, item, flags, mode);
    return flags;
  });
  return program.addOption(option);
}

function applyItem(program: Command, item: MountOptionItem, flags: string[], mode: MountOptionsMode): void {
  const { name, value } = item;
  if (isForOtherTools(name)) return;
  if (MOUNT_ONLY.has(name) || KERNEL_FLAGS.has(name)) {
    flagValue(name, value, undefined);
    if (KERNEL_FLAGS.has(name)) flags.push(name);
    return;
  }
  const refused = Object.hasOwn(REFUSED, name) ? REFUSED[name] : undefined;
  if (refused !== undefined) throw new UsageError(`mount option ${name} ${refused}`);

  const alias = Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined;
  const target = findOption(program, alias?.option ?? name);
  if (target === undefined) {
    const message = `unknown mount option '${name}'; -o takes s3mount's options without their dashes (see s3mount --help) and mount(8)'s`;
    if (!mode.sloppy) throw new UsageError(message);
    mode.warn?.(`${message}: ignored (sloppy mount)`);
  } else if (target.isBoolean() || target.negate) {
    // --no-sign-request stores signRequest = false: "on" is false for a negated flag.
    program.setOptionValueWithSource(target.attributeName(), flagValue(name, value, alias) !== target.negate, 'cli');
  } else {
    if (value === undefined && target.required) throw new UsageError(`mount option ${name} needs a value: ${name}=VALUE`);
    // Exactly what commander does for `--name value` (a Command is an EventEmitter,
    // though its typings do not say so): the option's own parser and checks apply.
    (program as unknown as EventEmitter).emit(`option:${target.name()}`, value ?? null);
  }
}

/** The command's option `--<name>`, with dashes or underscores; undefined if there is none. */
function findOption(program: Command, name: string): Option | undefined {
  const long = `--${name.replaceAll('_', '-')}`;
  return program.options.find((option) => option.long === long && !NOT_MOUNT_SETTINGS.has(option.name()));
}

/** Whether the flag `name` (maybe an alias) turns its option on or off. */
function flagValue(name: string, value: string | undefined, alias: Alias | undefined): boolean {
  const values = alias?.values;
  if (values === undefined) {
    if (value !== undefined) throw new UsageError(`mount option ${name} takes no value (got ${name}=${value})`);
    return alias?.off !== true;
  }
  const on = value !== undefined && Object.hasOwn(values, value) ? values[value] : undefined;
  if (on === undefined) throw new UsageError(`mount option ${name} takes ${Object.keys(values).join(' or ')} (got ${name}${value === undefined ? '' : `=${value}`})`);
  return on;
}

/**
 * `argv` without `names` (long option names, e.g. 'access-key-id'), whether given as
 * `--name value`, `--name=value` or inside an -o list.
 */
export function withoutOptions(argv: readonly string[], names: readonly string[]): string[] {
  const longs = names.map((name) => `--${name}`);
  /** The -o list without the dropped options; undefined when none is left. */
  const filtered = (list: string): string | undefined => {
    const rest = splitMountOptions(list).filter((item) => !longs.includes(`--${item.name.replaceAll('_', '-')}`));
    return rest.length > 0 ? joinMountOptions(rest) : undefined;
  };
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (longs.includes(arg)) i++;
    else if (longs.some((long) => arg.startsWith(`${long}=`))) continue;
    else if (arg === '-o' && i + 1 < argv.length) {
      const list = filtered(argv[++i] as string);
      if (list !== undefined) kept.push('-o', list);
    } else if (arg.startsWith('-o') && arg.length > 2) {
      const list = filtered(arg.slice(2));
      if (list !== undefined) kept.push(`-o${list}`);
    } else kept.push(arg);
  }
  return kept;
}
