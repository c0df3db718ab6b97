#!/usr/bin/env node
// npm run bench [-- OPTIONS]: s3mount against the raw SDK (and s3fs, rclone when asked),
// on the same S3 server behind the same latency proxy, in the same run. Prints one table
// of times, rates and ratios to the raw SDK. Benchmarks are not tests: nothing here
// passes or fails on a figure; a wrong or missing object is reported as FAILED.
//
//   --latency MS        per-request latency added by the proxy (default 20)
//   --bandwidth MBPS    per-connection bandwidth cap in MB/s (10^6 bytes), each direction (default: none)
//   --only write|read   one section (default: both)
//   --workload ID,...   only these workloads (ids in bench/write.mjs and bench/read.mjs, e.g. r-big)
//   --quick             small sizes: a smoke check that runs in well under a minute
//   --big               also the opt-in write workload "6 GiB write and rename": dd bs=1M of a
//                       6 GiB file into the mount, mv to another name, until durable; against
//                       the raw SDK's multipart upload + multipart copy + delete. s3mount only,
//                       several minutes, skipped when less than 30 GiB is free under the temp
//                       dir; not shrunk by --quick
//   --peers             also run s3fs and rclone mount when installed
//   --install-peers     apt-get install the missing peers first (implies --peers)
//   --repeat N          run each workload's raw SDK and tools N times, one after the other,
//                       and print the median row of each with the range (default 1): on
//                       these shared machines one run of a workload varies by a third
//   --json FILE         also write the results as JSON
//   --s3mount-args="…"  extra options for every s3mount mount, e.g. --s3mount-args="--stat-ttl 60"
//   --server s3rver|rgw the S3 server behind the proxy (default s3rver): rgw is the tests'
//                       single-node Ceph RGW (bash test/servers/ceph-rgw.sh install first), the
//                       server the tests call the truth
//
// Layout: bench/latency-proxy.mjs (the proxy), bench/write.mjs and bench/read.mjs (the
// workloads), bench/lib/ (server, SDK, data sets, mounts, timing).
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatCounts, startLatencyProxy } from './latency-proxy.mjs';
import { detectPeers, killRunning, Mounter, s3mountHasWriteMode, TOOLS } from './lib/mounts.mjs';
import { createBucket, makeClient, startRgw, startS3rver } from './lib/s3.mjs';
import { readSizes, readWorkloads } from './read.mjs';
import { writeSizes, writeWorkloads } from './write.mjs';

/**
 * A Result is one row of the table. raw/run may resolve several (an array), each with its
 * own `title`; `ratio` (null: none) and `ratioText` replace the default "vs raw" (raw
 * seconds / tool seconds, when the raw SDK ran once); see bench/read.mjs.
 * @typedef {{ seconds: number, counts: any, files: number, bytes: number, problems: string[], note?: string,
 *   returnedSeconds?: number, title?: string, ratio?: number|null, ratioText?: string, ratioOf?: string }} Result
 * @typedef {{ id: string, title: (ctx: any) => string, rate: 'files'|'bytes', unit?: string, freshBucket?: boolean,
 *   tools?: (ctx: any) => string[], when?: (ctx: any) => boolean, skip?: (ctx: any) => Promise<string|undefined>,
 *   prepare: (ctx: any) => Promise<any>,
 *   raw?: (ctx: any, data: any, bucket: string|undefined) => Promise<Result|Result[]>,
 *   run: (ctx: any, toolId: string, data: any, bucket: string|undefined) => Promise<Result|Result[]> }} Workload
 */

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// As the CLI does (src/cli/main.ts): Node 20 is supported here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let parsed;
try {
  parsed = parseArgs({
    options: {
      latency: { type: 'string', default: '20' },
      bandwidth: { type: 'string', default: '0' },
      only: { type: 'string' },
      workload: { type: 'string' },
      quick: { type: 'boolean', default: false },
      big: { type: 'boolean', default: false },
      peers: { type: 'boolean', default: false },
      'install-peers': { type: 'boolean', default: false },
      repeat: { type: 'string', default: '1' },
      json: { type: 'string' },
      's3mount-args': { type: 'string', default: '' },
      server: { type: 'string', default: 's3rver' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (err) {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(2);
}
const opts = parsed.values;
if (opts.help) {
  process.stdout.write(
    'usage: npm run bench -- [--latency MS] [--bandwidth MBPS] [--only write|read] [--workload ID,...] [--quick] [--big] [--peers] [--install-peers] [--repeat N] [--json FILE] [--s3mount-args="OPTIONS"] [--server s3rver|rgw]\n',
  );
  process.exit(0);
}
const latencyMs = Number(opts.latency);
const bandwidthMBps = Number(opts.bandwidth);
if (!Number.isFinite(latencyMs) || latencyMs < 0) fatal(`--latency must be a number of ms, not ${opts.latency}`);
if (!Number.isFinite(bandwidthMBps) || bandwidthMBps < 0) fatal(`--bandwidth must be MB/s, not ${opts.bandwidth}`);
const rounds = Number(opts.repeat);
if (!Number.isInteger(rounds) || rounds < 1) fatal(`--repeat must be a whole number of runs, 1 or more, not ${opts.repeat}`);
if (opts.only && !['write', 'read'].includes(opts.only)) fatal('--only takes write or read');
const knownIds = [...writeWorkloads, ...readWorkloads].map((w) => w.id);
for (const id of opts.workload?.split(',') ?? []) if (!knownIds.includes(id)) fatal(`--workload: no workload ${id}; there are ${knownIds.join(', ')}`);
const wantPeers = opts.peers || opts['install-peers'];
if (opts.big && opts.only === 'read') fatal('--big is a write workload: it does not go with --only read');
if (!['s3rver', 'rgw'].includes(opts.server)) fatal(`--server takes s3rver or rgw, not ${opts.server}`);

function fatal(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
const say = (msg) => process.stderr.write(`${msg}\n`);

// ── preconditions ────────────────────────────────────────────────────────────────────
if (!existsSync(join(root, 'dist/cli/main.js'))) fatal('dist/ is not built: run `npm run build` (npm run bench does)');
if (!existsSync('/dev/fuse')) fatal('/dev/fuse is missing: the benchmarks mount for real');
if (spawnSync('sh', ['-c', 'command -v fusermount3'], { stdio: 'ignore' }).status !== 0) fatal('fusermount3 is missing: apt-get install -y fuse3');
if (opts.server === 'rgw' && spawnSync('sh', ['-c', 'command -v radosgw'], { stdio: 'ignore' }).status !== 0) {
  fatal('--server rgw: Ceph RGW is not installed: run `bash test/servers/ceph-rgw.sh install` (as root)');
}

let peers = [];
if (wantPeers) {
  let found = detectPeers();
  const missing = Object.keys(found).filter((p) => !found[p]);
  if (missing.length > 0 && opts['install-peers']) {
    const pkgs = missing.map((p) => TOOLS[p].debian);
    say(`installing ${pkgs.join(' ')} (apt-get)...`);
    const r = spawnSync('apt-get', ['install', '-y', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) say(`apt-get install ${pkgs.join(' ')} failed (exit ${r.status}); carrying on without them`);
    found = detectPeers();
  }
  for (const [p, ok] of Object.entries(found)) {
    if (ok) peers.push(p);
    else say(`${p} is not installed: it will not be measured (apt-get install -y ${TOOLS[p].debian}, or run with --install-peers)`);
  }
} else {
  say('peers (s3fs, rclone mount) not run: add --peers');
}

// ── the run ──────────────────────────────────────────────────────────────────────────
const workDir = await mkdtemp(join(tmpdir(), 's3mount-bench-'));
const dataDir = join(workDir, 'data');
await mkdir(dataDir);

let server;
let proxy;
let mounter;
let stopping;

/** Stops everything this run started. Safe to call twice (the second call waits for the first). */
function shutdown() {
  stopping ??= (async () => {
    if (mounter) mounter.closed = true; // no new mount from here on
    await killRunning(); // a tar or dd still writing into a mount would keep it busy
    if (mounter) await mounter.cleanupAll().catch((err) => say(`bench: cleanup: ${err.message}`));
    if (proxy) await proxy.close().catch(() => {});
    if (server) await server.stop().catch(() => {});
    const left = mounter ? mounter.leftovers() : [];
    if (left.length > 0) {
      say(`bench: still mounted, so ${workDir} is left in place:\n  ${left.join('\n  ')}`);
      return false;
    }
    say(`/proc/mounts: nothing under ${workDir} is mounted`);
    if (mounter) await mounter.removeMountPoints();
    // Nothing under workDir is mounted any more (checked above): remove the rest.
    for (const d of ['data', 'cache', opts.server]) await rm(join(workDir, d), { recursive: true, force: true });
    await rmdir(workDir).catch((err) => say(`bench: ${workDir} not removed: ${err.message}`));
    return true;
  })();
  return stopping;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = true;
    say(`\nbench: ${signal}, cleaning up...`);
    void shutdown().then((clean) => process.exit(clean ? 130 : 1));
  });
}

const rows = [];
/** Every round's rows, for --json. */
const allRoundRows = [];
let failed = false;

/**
 * One row per (tool, title) out of several rounds: the round whose ratio (or, without
 * one that varies, whose seconds) is the median, with the range over the rounds. A
 * round that failed is shown instead, since a wrong result is not averaged away.
 */
function medianRows(list) {
  const groups = new Map();
  for (const r of list) {
    const key = `${r.tool}\0${r.workload}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((group) => {
    if (group.length === 1) return group[0];
    const failing = group.find((r) => r.error || r.problems?.length);
    if (failing) return failing;
    // The raw SDK's reference row is 1.00 in every round: its seconds are what vary.
    const ratios = new Set(group.map((r) => r.ratio));
    const of = group.every((r) => typeof r.ratio === 'number') && ratios.size > 1 ? 'ratio' : 'seconds';
    const sorted = [...group].sort((a, b) => a[of] - b[of]);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    return { ...median, range: { of, lo: sorted[0][of], hi: sorted[sorted.length - 1][of], rounds: group.length } };
  });
}

try {
  server = opts.server === 'rgw' ? await startRgw(join(workDir, 'rgw')) : await startS3rver(join(workDir, 's3rver'));
  proxy = await startLatencyProxy({ upstream: server.endpoint, latencyMs, bandwidthBytesPerSec: bandwidthMBps * 1e6 });
  const s3mountArgs = opts['s3mount-args'].split(/\s+/).filter(Boolean);
  mounter = new Mounter({ root, workDir, endpoint: proxy.endpoint, s3mountArgs });
  const writeModeSync = s3mountHasWriteMode(root);
  const ctx = {
    root,
    workDir,
    dataDir,
    quick: opts.quick,
    big: opts.big,
    sizes: writeSizes(opts.quick),
    readSizes: readSizes(opts.quick),
    proxy,
    raw: makeClient(proxy.endpoint),
    direct: makeClient(server.endpoint),
    mounter,
    peers,
    tools: ['s3mount', ...peers],
    writeModeSync,
    newBucket: async (name) => {
      await createBucket(ctx.direct, name);
      return name;
    },
  };

  say(`${opts.server} ${server.endpoint}, latency proxy ${proxy.endpoint} (${latencyMs} ms${bandwidthMBps ? `, ${bandwidthMBps} MB/s per connection` : ''}), work dir ${workDir}`);
  const chosen = opts.workload?.split(',');
  const sections = [];
  if (opts.only !== 'read') sections.push(['write', writeWorkloads]);
  if (opts.only !== 'write') sections.push(['read', readWorkloads]);

  for (const [section, workloads] of sections) {
    if (workloads.length === 0) {
      say(`${section} section: no workloads yet`);
      continue;
    }
    for (const w of workloads) {
      if (interrupted) break;
      if (w.when && !w.when(ctx)) continue;
      if (chosen && !chosen.includes(w.id)) continue;
      const title = w.title(ctx);
      say(`\n${section}: ${title}`);
      const skipped = w.skip ? await w.skip(ctx) : undefined;
      if (skipped) {
        rows.push({ section, workload: title, rate: w.rate, tool: 'all', skipped });
        say(`  skipped: ${skipped}`);
        continue;
      }
      const base = { section, workload: title, rate: w.rate, unit: w.unit };
      let data;
      try {
        data = await w.prepare(ctx);
      } catch (err) {
        failed = true;
        rows.push({ ...base, tool: 'all', error: `prepare: ${err.message}` });
        say(`  prepare FAILED: ${err.message}`);
        continue;
      }
      // A fresh bucket per tool and round: a write workload's rounds must not meet.
      const bucketFor = async (label, round) =>
        w.freshBucket === false ? undefined : ctx.newBucket(`${w.id}-${label}${round > 1 ? `-${round}` : ''}`);
      /** The rows of every round; one per (tool, title) goes into the table. */
      const roundRows = [];
      /** One row of the table per Result. */
      const addRows = (tool, results) => {
        for (const r of results) {
          roundRows.push({ ...base, tool, ...r, workload: r.title ?? title });
          if (r.problems.length) failed = true;
          say(`  ${tool}${r.title ? `, ${r.title}` : ''}: ${r.seconds.toFixed(2)} s${r.note ? ` (${r.note})` : ''}${r.problems.length ? ` FAILED: ${r.problems.length} wrong, e.g. ${r.problems[0]}` : ''}`);
        }
      };
      const asArray = (r) => (Array.isArray(r) ? r : [r]);
      for (let round = 1; round <= rounds && !interrupted; round++) {
        if (rounds > 1) say(`  round ${round} of ${rounds}`);
        let raw; // the raw SDK's Result, when it is one: the default ratio's reference
        if (w.raw) {
          try {
            const results = asArray(await w.raw(ctx, data, await bucketFor('raw', round)));
            addRows('raw SDK', results);
            if (results.length === 1) raw = results[0];
          } catch (err) {
            failed = true;
            roundRows.push({ ...base, tool: 'raw SDK', error: err.message });
            say(`  raw SDK: FAILED: ${err.message}`);
          }
        }
        for (const toolId of w.tools ? w.tools(ctx) : ctx.tools) {
          if (interrupted) break;
          const label = TOOLS[toolId].label;
          try {
            const results = asArray(await w.run(ctx, toolId, data, await bucketFor(toolId, round)));
            for (const r of results) if (r.ratio === undefined && raw && !raw.problems.length) r.ratio = raw.seconds / r.seconds;
            addRows(label, results);
          } catch (err) {
            failed = true;
            roundRows.push({ ...base, tool: label, error: err.message });
            say(`  ${label}: FAILED: ${err.message}`);
          }
        }
      }
      rows.push(...medianRows(roundRows));
      allRoundRows.push(...roundRows);
    }
  }
} catch (err) {
  failed = true;
  say(`bench: ${err.stack ?? err}`);
} finally {
  const clean = await shutdown();
  if (!clean) failed = true;
}

// ── the table ────────────────────────────────────────────────────────────────────────
const MiB = 1024 * 1024;
function rateText(r) {
  if (r.error || r.skipped || r.seconds === undefined) return '';
  const mibs = r.bytes / MiB / r.seconds;
  if (r.rate === 'bytes') return `${mibs.toFixed(1)} MiB/s`;
  const count = `${(r.files / r.seconds).toFixed(1)} ${r.unit ?? 'files'}/s`;
  return r.bytes > 0 ? `${count}, ${mibs.toFixed(1)} MiB/s` : count;
}
function countsText(r) {
  if (r.skipped) return `skipped: ${r.skipped}`;
  if (r.error) return `FAILED: ${r.error.split('\n')[0]}`;
  // Writes: the bytes that went up; reads: the bytes that came down.
  const moved = r.section === 'read' ? `down ${(r.counts.bytesDown / MiB).toFixed(1)} MiB` : `up ${(r.counts.bytesUp / MiB).toFixed(1)} MiB`;
  const s = `${r.note ? `(${r.note}) ` : ''}${formatCounts(r.counts)}; ${moved}`;
  const wrong = r.section === 'read' ? 'checks failed' : 'objects wrong';
  return r.problems.length ? `FAILED (${r.problems.length} ${wrong}, e.g. ${r.problems[0]}); ${s}` : s;
}
function ratioText(r) {
  if (r.error || r.skipped || r.ratio === null) return '-';
  if (r.tool === 'raw SDK' && r.problems.length) return '-';
  const text = r.ratioText ?? (r.ratio !== undefined ? r.ratio.toFixed(2) : r.tool === 'raw SDK' ? '1.00' : '-');
  return r.range?.of === 'ratio' ? `${text} (${rangeText(r.range)})` : text;
}
function secondsText(r) {
  if (r.seconds === undefined) return '-';
  return r.range?.of === 'seconds' ? `${r.seconds.toFixed(2)} (${rangeText(r.range)})` : r.seconds.toFixed(2);
}
const rangeText = ({ lo, hi }) => `${lo.toFixed(2)}-${hi.toFixed(2)}`;
const header = ['workload', 'tool', 'seconds', 'cmd returned', 'rate', 'vs raw', 'requests through the proxy'];
const table = rows.map((r) => [
  r.workload,
  r.tool,
  secondsText(r),
  r.returnedSeconds !== undefined ? r.returnedSeconds.toFixed(2) : '',
  rateText(r),
  ratioText(r),
  countsText(r),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells) => `| ${cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
console.log('');
console.log(
  `s3mount bench ${new Date().toISOString()}: ${opts.server} behind the latency proxy, ${latencyMs} ms per request` +
    `${bandwidthMBps ? `, ${bandwidthMBps} MB/s per connection` : ''}; ${cpus().length} CPUs, Node ${process.version}` +
    `${opts.quick ? '; --quick sizes' : ''}${opts['s3mount-args'] ? `; s3mount ${opts['s3mount-args']}` : ''}`,
);
if (rounds > 1) {
  console.log(
    `each row: the median of ${rounds} rounds by its "vs raw" figure (by seconds where it has none), the lowest-highest of the rounds in brackets`,
  );
}
const sectionsRun = new Set(rows.map((r) => r.section));
if (sectionsRun.has('write')) {
  console.log(
    'write rows: seconds until durable (in the bucket); cmd returned: when tar/dd itself returned; ' +
      'vs raw: raw SDK seconds / tool seconds (1.00 = as fast as the raw SDK, 0.50 = twice as long)',
  );
}
if (sectionsRun.has('read')) {
  console.log(
    'read rows: seconds of the command alone (fresh mount, mount and unmount untimed); vs raw: sequential and parallel reads ' +
      'by MiB/s against the raw SDK\'s parallel ranged GETs, warm re-read against the same tool\'s cold read, ' +
      'the others raw SDK seconds / tool seconds',
  );
}
console.log(line(header));
console.log(`|${widths.map((w, i) => (i >= 2 && i <= 5 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
for (const t of table) console.log(line(t));

if (opts.json) {
  writeFileSync(
    opts.json,
    `${JSON.stringify({ date: new Date().toISOString(), latencyMs, bandwidthMBps, quick: opts.quick, cpus: cpus().length, node: process.version, rounds, rows, allRoundRows }, null, 2)}\n`,
  );
}
process.exitCode = failed ? 1 : 0;
