// Short form of the scale-out fault test (tests/faults/scale-out.test.ts): three runtimes behind
// mosquitto, kill -9 of one and SIGTERM of another mid-burst; nothing lost, nothing doubled.
import { mosquittoAvailable } from '../support/mosquitto';
import { runScaleOut } from '../support/scale-out';

describe('fault (short): three runtimes behind mosquitto, one killed, one stopped', function () {
  this.timeout(400000);
  before(function () {
    if (!mosquittoAvailable())
      throw new Error("these tests need Debian's mosquitto (apt-get install mosquitto)");
  });

  it('every scan the broker acknowledged is applied exactly once by the survivor, and the print OS poller goes on there', async () => {
    const result = await runScaleOut({ scanners: 50, scans: 600, ratePerSecond: 60 });
    console.log(
      `      ${result.acked} scans acknowledged, ${result.stored} stored once each; ${result.printOsRows} print OS rows; all applied ${result.settledAfterStopMs} ms after the SIGTERM`,
    );
  });
});
