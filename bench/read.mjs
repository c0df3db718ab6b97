// ───────────────────────────────────────────────────────────────────────────────────
// READ SECTION of `npm run bench` — to be filled in by the read-path issue (#6).
// ───────────────────────────────────────────────────────────────────────────────────
//
// Add workloads to `readWorkloads` below; bench/run.mjs runs them with `--only read`
// (and by default after the write section), with the same table and ratios.
//
// A workload is what bench/write.mjs describes:
//   { id, title(ctx), rate: 'files'|'bytes', tools?(ctx), freshBucket?, prepare(ctx),
//     raw(ctx, data, bucket), run(ctx, toolId, data, bucket) }
// and raw/run resolve { seconds, counts, files, bytes, problems }.
//
// For reads, set `freshBucket: false`: `prepare` then fills one bucket for the workload
// (untimed; use `await ctx.newBucket('r-seq')` and `ctx.direct`, the SDK client that goes
// to the server without the proxy), returns it in its data, and raw/run read from it
// (their `bucket` argument is undefined). What is already there to use:
//   ctx.raw        SDK client through the latency proxy (the baseline's client)
//   ctx.direct     SDK client straight to the server (set-up and checks, not timed)
//   ctx.proxy      stats()/reset(): requests by kind (GET, rangedGET, HEAD, List...)
//   ctx.readSizes  readSizes(ctx.quick) below (ctx.sizes: the write section's)
//   ctx.mounter    .mount(toolId, bucket) -> { mnt, unmount(), cleanup() }
//   lib/workload.mjs  measure(ctx, fn), timedInMount(ctx, toolId, bucket, action)
//   lib/data.mjs      makeTree(), makeBigFile()   lib/s3.mjs  pool(), listAll(), objectMd5()
//
// Planned by issue #6 (raw SDK / s3mount / s3fs / rclone on each):
//   - single GetObject and 8 parallel 8 MiB ranged GETs of one 512 MiB object;
//     s3mount cold sequential read (after remount) and warm re-read (GET count: 0)
//   - 4 parallel readers of 4 different 64 MiB files
//   - 500 random 4 KiB reads (at most one GET per missed chunk)
//   - 1000 HeadObject with 16 in flight vs `stat` of 1000 cold files
//   - ListObjectsV2 of 5000 keys vs `ls -l` of a 5000-object directory (cold)
//   - `md5sum -c` over a 2000-file tree

/** Sizes per mode, for the read workloads to come. */
export function readSizes(quick) {
  return quick ? { bigBytes: 64 * 1024 * 1024 } : { bigBytes: 512 * 1024 * 1024 };
}

/** @type {Array<import('./run.mjs').Workload>} */
export const readWorkloads = [
  // (none yet: issue #6)
];
