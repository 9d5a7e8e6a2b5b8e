#!/usr/bin/env node
// The `dps-mqtt` bin (from source; the package's dist/cli/main.js is a generated wrapper that does the same).
import { runCliProcess } from './run-cli.js';

await runCliProcess();
