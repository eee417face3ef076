import assert from 'node:assert/strict';
import { SimulateUsageError, simulateCommand } from '../../cli/simulate';

describe('floorflow simulate', () => {
  it('names what is missing: the machine kind and id, or the secret', async () => {
    await assert.rejects(simulateCommand([], {}), (err: Error) => {
      assert.ok(err instanceof SimulateUsageError);
      assert.match(err.message, /embosser.*<machine_id>/);
      return true;
    });
    await assert.rejects(
      simulateCommand(['embosser', 'EMB-1'], {}),
      /--secret or set FLOORFLOW_MACHINE_SECRET/,
    );
  });

  it('refuses a fail share outside 0..1 and a negative work time', async () => {
    const env = { FLOORFLOW_MACHINE_SECRET: 's' };
    await assert.rejects(simulateCommand(['embosser', 'EMB-1', '--fail-share', '2'], env), /--fail-share/);
    await assert.rejects(simulateCommand(['embosser', 'EMB-1', '--work-ms', '-5'], env), /--work-ms/);
  });
});
