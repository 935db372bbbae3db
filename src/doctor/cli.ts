#!/usr/bin/env node
/**
 * The package's bin entry, `npx express-ort-bff doctor`. Like the example's start script, an entry point: the
 * one place of the package that reads `process.env`, which it hands to the command as it is.
 */
import { runCommand } from './command.js';

process.exitCode = await runCommand(process.argv.slice(2), process.env, {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
