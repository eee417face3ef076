#!/usr/bin/env node
// Compiles the TypeScript to dist/ (CommonJS: Node-RED loads nodes and settings with
// require) and copies what tsc does not: node editor files, schemas, SQL migrations.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tsc = require.resolve('typescript/bin/tsc');
// tsc still emits when it finds type errors; copy the assets anyway so one broken file does
// not leave the rest of dist/ stale, but fail the build.
let failed = false;
try {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], {
    stdio: 'inherit',
    cwd: root,
  });
} catch {
  failed = true;
}

const copied = /\.(html|json|sql)$/;
function copyTree(fromDir) {
  const from = path.join(root, fromDir);
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const rel = path.join(fromDir, entry.name);
    if (entry.isDirectory()) {
      copyTree(rel);
    } else if (copied.test(entry.name) && !entry.name.endsWith('tsconfig.json')) {
      const to = path.join(root, 'dist', rel);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(path.join(root, rel), to);
    }
  }
}
for (const dir of ['nodes', 'store', 'core', 'tests', 'runtime']) copyTree(dir);
if (failed) {
  process.stderr.write('build: tsc reported errors (see above)\n');
  process.exit(1);
}
