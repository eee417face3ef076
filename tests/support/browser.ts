// Debian's Chromium driven by playwright-core, launched the way this machine needs: as root
// (no sandbox), with background networking off (the closed network refuses it).
import { Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.FLOORFLOW_CHROMIUM || '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
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
