#!/usr/bin/env node
// The mount(8) helper: `mount -t s3mount` and fstab lines of type s3mount run
// /sbin/mount.s3mount SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] (see docs/fstab.md).
import { main } from '../dist/cli/main.js';

// Exit explicitly: SDK sockets and timers must not keep a finished mount alive.
process.exit(await main(process.argv.slice(2), { mountHelper: true }));
