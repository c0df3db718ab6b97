/**
 * Decodes an HTTP/1.1 chunked body as its bytes arrive (RFC 9112 section 7.1). Only error
 * answers and the odd server use it for ranged GETs, so it favours brevity over speed:
 * bytes not yet decodable are kept and joined with the next ones.
 */
export class ChunkedDecoder {
  private pending = Buffer.alloc(0);
  /** Data bytes left in the current chunk; undefined while a size line is due. */
  private left: number | undefined;
  private inTrailers = false;
  done = false;

  /**
   * Takes the next bytes of the body; hands the decoded data to `sink`. Answers how many
   * of the given bytes were part of the body (fewer only on the call that ends it).
   */
  push(bytes: Buffer, sink: (data: Buffer) => void): number {
    const carried = this.pending.length;
    const buffer = carried === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    let at = 0;
    while (!this.done && at < buffer.length) {
      if (this.left !== undefined && this.left > 0) {
        const take = Math.min(this.left, buffer.length - at);
        sink(buffer.subarray(at, at + take));
        at += take;
        this.left -= take;
        continue;
      }
      const eol = buffer.indexOf('\r\n', at);
      if (eol < 0) break;
      const line = buffer.toString('latin1', at, eol);
      at = eol + 2;
      if (this.inTrailers) {
        if (line === '') this.done = true;
      } else if (this.left === 0) {
        if (line !== '') throw new Error('malformed chunked body: no CRLF after a chunk');
        this.left = undefined;
      } else {
        const size = Number.parseInt(line.split(';')[0]?.trim() ?? '', 16);
        if (!Number.isSafeInteger(size) || size < 0 || !/^[0-9a-fA-F]+/.test(line)) {
          throw new Error(`malformed chunked body: chunk size line ${JSON.stringify(line.slice(0, 40))}`);
        }
        if (size === 0) this.inTrailers = true;
        else this.left = size;
      }
    }
    this.pending = this.done ? Buffer.alloc(0) : Buffer.from(buffer.subarray(at));
    // `at` counts from the start of the kept bytes, which came before these.
    return this.done ? at - carried : bytes.length;
  }
}
