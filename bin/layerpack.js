#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 24 strips types natively, so there is no build step.
import { main } from "../src/cli.ts";

process.exitCode = await main(process.argv.slice(2));
