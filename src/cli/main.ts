#!/usr/bin/env node
// The `dps-mqtt` bin (from source; the package's bin is dist/cli/main.cjs, scripts/templates/cli-main.cjs).
import { runCliProcess } from './run-cli.js';

await runCliProcess();
