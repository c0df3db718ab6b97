// A chunk's bytes kept as the pieces the network delivered, in order. Copying them into
// one fresh buffer per chunk cost more than anything else in a cold read: new memory
// has to be faulted in page by page, which is slow under virtualisation.

export class Chunk {
  readonly length: number;

  constructor(readonly pieces: readonly Buffer[]) {
    this.length = pieces.reduce((sum, piece) => sum + piece.length, 0);
  }

  static of(bytes: Buffer): Chunk {
    return new Chunk([bytes]);
  }

  /** Copies bytes [from, to) of the chunk into `target` at `at`; answers how many. */
  copyTo(target: Buffer, at: number, from: number, to: number): number {
    let copied = 0;
    let pieceStart = 0;
    for (const piece of this.pieces) {
      const pieceEnd = pieceStart + piece.length;
      if (pieceEnd > from && pieceStart < to) {
        copied += piece.copy(target, at + copied, Math.max(from, pieceStart) - pieceStart, Math.min(to, pieceEnd) - pieceStart);
      }
      if (pieceEnd >= to) break;
      pieceStart = pieceEnd;
    }
    return copied;
  }

  /** The bytes in one buffer (a copy unless there is a single piece). */
  toBuffer(): Buffer {
    return this.pieces.length === 1 ? (this.pieces[0] as Buffer) : Buffer.concat(this.pieces);
  }
}
