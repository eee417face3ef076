// The browser the browser tests drive with playwright-core: FLOORFLOW_CHROMIUM when set,
// Debian's Chromium where it is installed, otherwise the headless Chromium that `npm ci`
// installs inside the @sparticuz/chromium package (unpacked once per version into the temp
// directory). Launched the way this machine needs: as root (no sandbox), with background
// networking off (the closed network refuses it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Browser, chromium } from 'playwright-core';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/** The package's directory (it exports only its main module, build/index.js). */
function packagedChromiumDir(): string {
  return path.resolve(path.dirname(require.resolve('@sparticuz/chromium')), '..');
}

function isProgram(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Decompresses a brotli file to `target`, through a temporary name so a reader never sees half of it. */
function inflateTo(source: string, target: string, mode: number): void {
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, zlib.brotliDecompressSync(fs.readFileSync(source)), { mode });
  fs.renameSync(tmp, target);
}

/** Unpacks the package's browser (and the GL and NSS libraries it ships) once; returns the binary. */
function unpackPackagedChromium(): { executable: string; env: Record<string, string> } {
  const packageDir = packagedChromiumDir();
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  const uid = os.userInfo().uid;
  const dir = path.join(os.tmpdir(), `floorflow-chromium-${version}-${uid}`);
  const executable = path.join(dir, 'chromium');
  const bin = path.join(packageDir, 'bin');
  if (!fs.existsSync(executable)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // SwiftShader's GL libraries must sit beside the binary; al2023 holds NSS for machines without it.
    for (const archive of ['swiftshader', 'al2023']) {
      const tar = path.join(dir, `${archive}.tar`);
      inflateTo(path.join(bin, `${archive}.tar.br`), tar, 0o600);
      const untar = spawnSync('tar', ['-xf', tar, '-C', dir], { encoding: 'utf8' });
      if (untar.status !== 0) throw new Error(`could not unpack ${archive}.tar.br: ${untar.stderr}`);
      fs.rmSync(tar);
    }
    // The binary last: its presence means the rest is there.
    inflateTo(path.join(bin, 'chromium.br'), executable, 0o755);
  }
  // Use the shipped NSS only where the machine lacks its own.
  const ldd = spawnSync('ldd', [executable], { encoding: 'utf8' });
  const missing = /not found/.test(ldd.stdout ?? '');
  return { executable, env: missing ? { LD_LIBRARY_PATH: path.join(dir, 'lib') } : {} };
}

/** Which browser the tests use, and why (launchChromium prints it once). */
export function chromiumChoice(): { executable: string; env: Record<string, string>; source: string } {
  const given = process.env.FLOORFLOW_CHROMIUM;
  if (given) return { executable: given, env: {}, source: 'FLOORFLOW_CHROMIUM' };
  if (isProgram(DEBIAN_CHROMIUM))
    return { executable: DEBIAN_CHROMIUM, env: {}, source: "Debian's chromium" };
  return { ...unpackPackagedChromium(), source: '@sparticuz/chromium' };
}

let announced = false;

export async function launchChromium(): Promise<Browser> {
  const choice = chromiumChoice();
  // Once per run, so a test log shows which browser the browser tests ran in.
  if (!announced) console.log(`    browser: ${choice.source} (${choice.executable})`);
  announced = true;
  return chromium.launch({
    executablePath: choice.executable,
    env: { ...process.env, ...choice.env },
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
