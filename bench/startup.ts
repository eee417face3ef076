// Startup to "ready": floorflow with its embedded database already initialised, against
// a stock Node-RED started in the same run on the same machine (the baseline).
// Usage: node dist/bench/startup.js [--quick] [--runs N]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, runtimeEnv, tempDir, REPO_ROOT } from '../tests/support/runtime-process';

const quick = process.argv.includes('--quick');
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg !== -1 ? Number(process.argv[runsArg + 1]) : quick ? 2 : 5;

async function timeUntil(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const elapsed = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (ready.test(text)) resolve(Number(process.hrtime.bigint() - started) / 1e6);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ready:\n${text}`)));
  });
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await exited;
  return elapsed;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const dataDir = tempDir('floorflow-bench-');
  const floorflowTimes: number[] = [];
  const nodeRedTimes: number[] = [];
  const bin = path.join(REPO_ROOT, 'bin', 'floorflow.js');
  // The first start initialises the embedded database; the target is for later starts.
  const first = await timeUntil([bin, 'start'], runtimeEnv(dataDir, await freePort()), /floorflow ready/);
  console.log(`first start (creates the embedded database): ${first.toFixed(0)} ms`);
  for (let i = 0; i < runs; i++) {
    floorflowTimes.push(
      await timeUntil([bin, 'start'], runtimeEnv(dataDir, await freePort()), /floorflow ready/),
    );
    const userDir = tempDir('node-red-bench-');
    const port = await freePort();
    nodeRedTimes.push(
      await timeUntil(
        [require.resolve('node-red/red.js'), '--userDir', userDir, '--port', String(port), '--safe'],
        { ...process.env },
        /Server now running/,
      ),
    );
  }
  const ours = median(floorflowTimes);
  const baseline = median(nodeRedTimes);
  console.log(
    `floorflow start to ready (embedded PostgreSQL, broker, Node-RED, flows): median ${ours.toFixed(0)} ms over ${runs} runs`,
  );
  console.log(
    `stock Node-RED 4.1 start to "Server now running" (baseline):             median ${baseline.toFixed(0)} ms`,
  );
  console.log(
    `ratio floorflow / stock Node-RED: ${(ours / baseline).toFixed(2)}x; target under 5000 ms: ${ours < 5000 ? 'met' : 'NOT met'}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
