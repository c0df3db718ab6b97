import type { ChecksumMode, LogLevel, WriteMode } from '../config.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from '../upload/part-size.js';
import { UsageError } from './messages.js';

/** Each parser takes the option's name so the error can say which option is wrong. */

export function parseOctalMode(option: string, text: string): number {
  const digits = text.replace(/^0o/i, '');
  const value = /^[0-7]+$/.test(digits) ? parseInt(digits, 8) : NaN;
  if (!(value <= 0o7777)) {
    throw new UsageError(`${option} must be an octal mode from 0 to 7777, such as 644 (got '${text}')`);
  }
  return value;
}

/** uid_t is 32 bits and (uid_t)-1 means "unchanged" to the kernel, so it is no real id. */
const MAX_ID = 2 ** 32 - 2;

export function parseId(option: string, text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value <= MAX_ID)) {
    throw new UsageError(`${option} must be a non-negative integer such as 1000 (got '${text}')`);
  }
  return value;
}

/** Fractions are allowed: the kernel's attribute timeout is a double too. */
export function parseSeconds(option: string, text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) {
    throw new UsageError(`${option} must be a non-negative number of seconds such as 5 (got '${text}')`);
  }
  return Number(text);
}

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export function parseLogLevel(option: string, text: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === text);
  if (level === undefined) {
    throw new UsageError(`${option} must be one of ${LOG_LEVELS.join(', ')} (got '${text}')`);
  }
  return level;
}

export function parseEndpoint(option: string, text: string): string {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  // The endpoint is logged and shows in `ps`: a secret in it would leak, so it is
  // refused, and not repeated in the message.
  if (url !== undefined && (url.username !== '' || url.password !== '')) {
    throw new UsageError(`${option} must not contain credentials; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile`);
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`${option} must be an http or https URL such as http://127.0.0.1:9000 (got '${text}')`);
  }
  return text;
}

/** For names (region, profile) that go to the SDK as they are. */
export function parseName(option: string, text: string): string {
  if (!/^\S+$/.test(text)) {
    throw new UsageError(`${option} must be a non-empty name without spaces (got '${text}')`);
  }
  return text;
}

/** An access key may be a token that grants access: never echoed in messages. */
export function parseAccessKey(option: string, text: string): string {
  if (!/^\S+$/.test(text)) throw new UsageError(`${option} must be a non-empty key without spaces`);
  return text;
}

export function parseChecksumMode(option: string, text: string): ChecksumMode {
  if (text === 'when-required' || text === 'when-supported') return text;
  throw new UsageError(`${option} must be when-required or when-supported (got '${text}')`);
}

export function parseWriteMode(option: string, text: string): WriteMode {
  if (text === 'async' || text === 'sync') return text;
  throw new UsageError(`${option} must be async or sync (got '${text}')`);
}

export function parseConcurrency(option: string, text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= 1024)) throw new UsageError(`${option} must be an integer from 1 to 1024 (got '${text}')`);
  return value;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "64M", "1.5G", "4096": sizes in bytes, suffixes are powers of 1024 (an optional B or iB is allowed). */
export function parseByteSize(option: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text);
  const value = match ? Math.floor(Number(match[1]) * (UNITS[(match[2] ?? '').toUpperCase()] ?? NaN)) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`${option} must be a size such as 512M or 10G (got '${text}')`);
  return value;
}

export function parsePartSize(option: string, text: string): number {
  const value = parseByteSize(option, text);
  if (value < MIN_PART_SIZE || value > MAX_PART_SIZE) {
    throw new UsageError(`${option} must be from 5M to 5G, S3's limits for a part (got '${text}')`);
  }
  return value;
}

const MIN_CHUNK_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

export function parseChunkSize(option: string, text: string): number {
  const value = parseByteSize(option, text);
  if (value < MIN_CHUNK_SIZE || value > MAX_CHUNK_SIZE) throw new UsageError(`${option} must be from 64K to 64M (got '${text}')`);
  return value;
}

/** The largest unit that divides the size exactly, e.g. 8M, 10G. */
export function formatBytes(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const size = UNITS[unit] as number;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
