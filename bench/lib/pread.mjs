#!/usr/bin/env node
// node bench/lib/pread.mjs FILE LENGTH OFFSET...: opens FILE once, reads LENGTH bytes at
// each OFFSET in turn (one read at a time, pread(2), as a database would), and writes
// what it read to stdout, in the order of the offsets, once all reads are done. Exits 1
// with a message on a short read or an error. The read section's "random reads" workload
// runs it in a mount and compares its output with the source file.
import { closeSync, openSync, readSync } from 'node:fs';

const [file, lengthArg, ...offsetArgs] = process.argv.slice(2);
const length = Number(lengthArg);
if (!file || !(length > 0) || offsetArgs.length === 0) {
  process.stderr.write('usage: node bench/lib/pread.mjs FILE LENGTH OFFSET...\n');
  process.exit(2);
}
const out = Buffer.alloc(length * offsetArgs.length);
const fd = openSync(file, 'r');
try {
  offsetArgs.forEach((arg, i) => {
    const offset = Number(arg);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, out, i * length + got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got < length) {
      process.stderr.write(`pread: ${file}: ${got} bytes at ${offset}, expected ${length}\n`);
      process.exit(1);
    }
  });
} finally {
  closeSync(fd);
}
process.stdout.write(out);
