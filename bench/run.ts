// `npm run bench -- [--quick]`: runs every bench script in turn with the same flags.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const flags = process.argv.slice(2);
const scripts = fs
  .readdirSync(__dirname)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .sort();
let failed = 0;
for (const script of scripts) {
  console.log(`\n=== bench/${script.replace(/\.js$/, '.ts')} ${flags.join(' ')}`);
  const result = spawnSync(process.execPath, [path.join(__dirname, script), ...flags], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
