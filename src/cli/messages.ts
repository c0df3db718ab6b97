/** Bad command-line input. The message is one line: what is wrong; what to do. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * An error as one line, for stderr, the log and the daemon's report pipe, which are
 * all line-oriented: multi-line messages (SDK errors, libfuse) are joined.
 */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

/** The CLI's own voice on stderr: "s3mount: <message>". */
export function printMessage(message: string): void {
  process.stderr.write(`s3mount: ${message}\n`);
}
