#!/usr/bin/env node
// Entry point of `npx medaid`: runs the compiled CLI (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/apps/medaid/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('medaid: not built yet — run `npm install` (or `npm run build`) in the project first\n');
  process.exit(1);
}
await import(main.href);
