// Several runtimes on one PostgreSQL behind mosquitto (docs/scale-out.md): 50 scanners publish
// QoS 1 scans at a steady rate while one runtime is killed with kill -9 (and not restarted) and
// another is stopped with SIGTERM. Every scan the broker acknowledged is applied exactly once
// within a minute by the survivor, and the print-OS poller's work continues on it.
import { mosquittoAvailable } from '../support/mosquitto';
import { runScaleOut } from '../support/scale-out';

describe('fault: scale-out behind mosquitto, kill -9 and SIGTERM mid-burst', function () {
  this.timeout(900000);
  before(function () {
    if (!mosquittoAvailable())
      throw new Error("these tests need Debian's mosquitto (apt-get install mosquitto)");
  });

  it('every scan the broker acknowledged is applied exactly once by the survivor; the print OS poller continues on it', async () => {
    const result = await runScaleOut({ scanners: 50, scans: 3000, ratePerSecond: 150 });
    console.log(
      `      ${result.acked} scans acknowledged, ${result.stored} stored once each; ${result.printOsRows} print OS rows; all applied ${result.settledAfterStopMs} ms after the SIGTERM`,
    );
  });
});
