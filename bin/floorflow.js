#!/usr/bin/env node
// Entry point of `npx floorflow` and `npm start`: compiles the TypeScript when dist/ is
// missing or older than the sources, then runs the CLI.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const marker = path.join(root, 'dist', 'cli', 'main.js');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (/\.(ts|html|sql)$/.test(entry.name) || entry.name === 'schema.json')
      newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function needsBuild() {
  if (!fs.existsSync(marker)) return true;
  // Tests run the CLI from a tree `npm test` has just built.
  if (process.env.FLOORFLOW_NO_BUILD === '1') return false;
  if (
    !fs.existsSync(path.join(root, 'tsconfig.json')) ||
    !fs.existsSync(path.join(root, 'node_modules', 'typescript'))
  )
    return false;
  const built = fs.statSync(marker).mtimeMs;
  return ['settings.ts', 'core', 'store', 'runtime', 'nodes', 'cli'].some((p) => {
    const full = path.join(root, p);
    if (!fs.existsSync(full)) return false;
    return fs.statSync(full).isDirectory() ? newestSource(full) > built : fs.statSync(full).mtimeMs > built;
  });
}

if (needsBuild()) {
  process.stderr.write('floorflow: compiling...\n');
  try {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { stdio: 'inherit', cwd: root });
  } catch {
    process.stderr.write('floorflow: the build failed; see the errors above\n');
    process.exit(1);
  }
}
require(marker)
  .main(process.argv.slice(2))
  .then((code) => process.exit(code));
