// Resident memory of the floorflow runtime process (the shipped flows loaded) at idle and
// under a steady QoS 1 scan load from many scanners, against a stock Node-RED 4.1 process
// at idle measured in the same run (the baseline). The database is the machine's
// PostgreSQL (DATABASE_URL), so the figure is the Node.js process alone.
// Usage: node dist/bench/memory.js [--quick] [--rate scans/s] [--seconds N] [--scanners N]
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createTestDatabase } from '../tests/support/db';
import { registerMachines } from '../tests/support/machines';
import { REPO_ROOT, freePort, startRuntimeProcess, tempDir } from '../tests/support/runtime-process';
import { startScanStream } from '../tests/support/scan-stream';
import { argValue, median, percentile, ratio } from './support/stats';
import { runBench } from './support/run-bench';

const quick = process.argv.includes('--quick');
const rate = argValue('--rate', quick ? 200 : 1000);
const seconds = argValue('--seconds', quick ? 10 : 60);
const scannerCount = argValue('--scanners', 50);
const settleMs = quick ? 3000 : 10000;
const AIM_MB = 300;

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS samples once a second for `ms`. */
async function sample(pid: number, ms: number): Promise<number[]> {
  const samples: number[] = [];
  for (let elapsed = 0; elapsed < ms; elapsed += 1000) {
    await pause(1000);
    samples.push(rssMb(pid));
  }
  return samples;
}

async function stockNodeRedIdle(): Promise<number> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [require.resolve('node-red/red.js'), '--userDir', tempDir('node-red-bench-'), '--port', String(port)],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (/Server now running/.test(text)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`Node-RED exited with ${code}: ${text}`)));
    });
    await pause(settleMs);
    return median(await sample(child.pid!, 5000));
  } finally {
    child.removeAllListeners('exit');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  }
}

async function main(): Promise<void> {
  const baseline = await stockNodeRedIdle();
  console.log(`stock Node-RED 4.1 at idle (baseline):      ${baseline.toFixed(0)} MB resident`);

  const db = await createTestDatabase({ migrate: false });
  const runtime = await startRuntimeProcess({ env: { DATABASE_URL: db.url } });
  try {
    const pid = runtime.child.pid!;
    await pause(settleMs);
    const idle = median(await sample(pid, 5000));
    console.log(
      `floorflow at idle (shipped flows loaded):    ${idle.toFixed(0)} MB resident, ${ratio(idle, baseline)} the baseline`,
    );
    const scanners = await registerMachines(
      runtime.env,
      Array.from({ length: scannerCount }, (_, i) => `mem-scanner-${i}`),
      'scanner',
    );
    const maxScans = rate * seconds;
    const stream = startScanStream({
      url: () => `mqtt://127.0.0.1:${runtime.mqttPort}`,
      scanners,
      ratePerSecond: rate,
      maxScans,
    });
    const loaded = await sample(pid, seconds * 1000);
    const allAcked = await stream.settled(60000);
    await stream.stop();
    const peak = Math.max(...loaded);
    console.log(
      `floorflow under ${rate} scans/s from ${scannerCount} scanners for ${seconds} s: ` +
        `median ${median(loaded).toFixed(0)} MB, peak ${peak.toFixed(0)} MB resident, ${ratio(peak, baseline)} the baseline; ` +
        `${stream.acked.size}/${maxScans} scans acknowledged, PUBACK p99 ${percentile(stream.ackLatenciesMs, 99).toFixed(0)} ms`,
    );
    console.log(
      `aim under ${AIM_MB} MB at idle and under load: ${Math.max(idle, peak) < AIM_MB ? 'met' : 'NOT met'}`,
    );
    if (!allAcked) {
      console.error('not every scan was acknowledged');
      process.exitCode = 1;
    }
  } finally {
    await runtime.stop('SIGINT');
    await db.drop();
  }
}

runBench(main);
