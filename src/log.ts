import type { LogLevel } from './config.js';

const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** One line per message on stderr, prefixed with the level; credentials never reach it. */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const emit = (at: LogLevel) => (message: string) => {
    if (ORDER[at] <= ORDER[level]) write(`s3mount ${at}: ${message}\n`);
  };
  return { error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') };
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
