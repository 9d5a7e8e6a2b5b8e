#!/usr/bin/env node
// Runs `dps-mqtt emulator` on its own: node --import tsx src/emulator/cli-entry.ts [options]
import { runEmulatorCli } from './cli.js';

process.exitCode = await runEmulatorCli(process.argv.slice(2));
