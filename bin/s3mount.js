#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// Exit explicitly: SDK sockets and timers must not keep a finished mount alive.
process.exit(await main(process.argv.slice(2)));
