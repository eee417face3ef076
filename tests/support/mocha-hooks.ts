// Mocha root hooks (.mocharc.json "require"): what the whole test run shares is released
// once at its end.
import { stopTestServer } from './db';

export async function mochaGlobalTeardown(): Promise<void> {
  await stopTestServer();
}
