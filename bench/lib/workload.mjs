// What workloads share: timing with the proxy's request counts, and "run this through a
// mount, then wait until it is durable".
import { setTimeout as sleep } from 'node:timers/promises';
import { checkObjects } from './s3.mjs';

/**
 * Times `fn` with the proxy's counts reset at the start and read at the end.
 * Resolves { seconds, counts, value } (value: what fn resolved with).
 */
export async function measure(ctx, fn) {
  ctx.proxy.reset();
  const started = performance.now();
  const value = await fn();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, counts: ctx.proxy.stats(), value };
}

/**
 * Mounts `bucket` with `toolId`, times `action(mnt)` until the result is durable, and
 * checks the bucket against `expected` ([{ key, size, md5? }]).
 *   durability 'unmount' (s3mount, s3fs): the clock stops when the tool's unmount returns;
 *     the objects must then all be there.
 *   durability 'poll' (rclone): the clock stops when the harness sees every expected
 *     object in the bucket (listing the server directly, not through the proxy, every
 *     `pollMs`); then the mount is unmounted, untimed.
 * Resolves { seconds, returnedSeconds (when the command itself returned), counts,
 * problems } (problems: [] when the bucket is right).
 */
export async function timedThroughMount(ctx, toolId, bucket, action, expected, { pollMs = 250, pollTimeoutMs = 30 * 60_000 } = {}) {
  const m = await ctx.mounter.mount(toolId, bucket);
  try {
    let returned;
    const result = await measure(ctx, async () => {
      const started = performance.now();
      await action(m.mnt);
      returned = (performance.now() - started) / 1000;
      if (m.durability === 'unmount') {
        await m.unmount();
        return;
      }
      const deadline = Date.now() + pollTimeoutMs;
      for (;;) {
        const problems = await checkObjects(ctx.direct, bucket, expected);
        if (problems.length === 0) return;
        if (Date.now() > deadline) throw new Error(`${toolId}: not durable after ${pollTimeoutMs / 1000} s: ${problems[0]}`);
        await sleep(pollMs);
      }
    });
    if (m.durability === 'poll') await m.unmount();
    const problems = await checkObjects(ctx.direct, bucket, expected);
    return { seconds: result.seconds, returnedSeconds: returned, counts: result.counts, problems };
  } catch (err) {
    const log = m.logTail(10);
    if (log) err.message += `\n--- ${toolId} log (tail) ---\n${log}`;
    throw err;
  } finally {
    await m.cleanup();
  }
}

/** A shell command line for error messages. */
export function quote(args) {
  return args.map((a) => (/^[\w./=:-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/**
 * Mounts `bucket` with `toolId` (a fresh mount point and --cache-dir), runs `fn(mnt)`,
 * which does its own timing (measure()), then unmounts with the tool's own unmount; on
 * failure the mount is cleaned up all the same (fusermount3 -uz as a last resort) and the
 * tool's log tail is added to the error. Resolves with what `fn` resolved with.
 */
export async function withMount(ctx, toolId, bucket, fn) {
  const m = await ctx.mounter.mount(toolId, bucket);
  try {
    const value = await fn(m.mnt);
    await m.unmount();
    return value;
  } catch (err) {
    const log = m.logTail(10);
    if (log) err.message += `\n--- ${toolId} log (tail) ---\n${log}`;
    throw err;
  } finally {
    await m.cleanup();
  }
}

/**
 * Mounts `bucket` with `toolId`, times `action(mnt)` alone (the mount and the unmount are
 * not timed), and always unmounts. For workloads where nothing has to become durable
 * (reads). Resolves { seconds, counts, value }.
 */
export function timedInMount(ctx, toolId, bucket, action) {
  return withMount(ctx, toolId, bucket, (mnt) => measure(ctx, () => action(mnt)));
}
