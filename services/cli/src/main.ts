#!/usr/bin/env node
import { countExternalMemoryWithTheHeap } from './garbageCollection.ts';
import { run } from './program.ts';

countExternalMemoryWithTheHeap();
process.exitCode = await run(process.argv.slice(2));
