// Scanner settings as the registry holds them and as `floorflow machine set` is given them.
import assert from 'node:assert/strict';
import {
  operationsWithDefaults,
  parseOperationList,
  parseWindow,
  readScannerSettings,
} from '../../core/scanner-settings';
import { describeScannerSettings, scannerSettingsChange } from '../../cli/machine-settings';

describe('scanner settings', () => {
  it('reads windows as 2s, 1.5s, 1500ms or bare milliseconds, up to 10 minutes', () => {
    assert.deepEqual(parseWindow('2s'), { ok: true, value: 2000 });
    assert.deepEqual(parseWindow('1.5s'), { ok: true, value: 1500 });
    assert.deepEqual(parseWindow('1500ms'), { ok: true, value: 1500 });
    assert.deepEqual(parseWindow('0'), { ok: true, value: 0 });
    assert.equal(parseWindow('2 minutes').ok, false);
    assert.equal(parseWindow('601s').ok, false);
  });

  it('reads operation lists as normalised names; none clears them', () => {
    assert.deepEqual(parseOperationList('Coating, kiss_cut'), { ok: true, value: ['coating', 'kiss_cut'] });
    assert.deepEqual(parseOperationList('none'), { ok: true, value: [] });
    assert.equal(parseOperationList('coating,,kiss_cut').ok, false);
  });

  it('turns the command line into a change of the registry, and describes the result', () => {
    const args = ['wedge-1', '--default-operations', 'coating,kiss_cut', '--double-send-window', '2s'];
    assert.deepEqual(scannerSettingsChange(args), {
      default_operations: ['coating', 'kiss_cut'],
      double_send_window_ms: 2000,
    });
    assert.deepEqual(args, ['wedge-1'], 'the options are taken out of the arguments');
    assert.deepEqual(scannerSettingsChange(['--serial', 'none', '--default-operations', 'none']), {
      serial_port: null,
      default_operations: null,
    });
    assert.throws(() => scannerSettingsChange(['--serial', 'a b']), /--serial/);
    const settings = readScannerSettings({
      default_operations: ['coating'],
      double_send_window_ms: 2000,
      serial_port: '/dev/ttyUSB0',
    });
    assert.equal(
      describeScannerSettings(settings),
      'default operations coating, double-send window 2s, serial /dev/ttyUSB0',
    );
  });

  it('leaves out what is not a valid setting', () => {
    assert.deepEqual(readScannerSettings({ default_operations: 'coating', double_send_window_ms: -1 }), {});
    assert.deepEqual(readScannerSettings(null), {});
  });

  it('a scan naming no operation stands for the defaults; one naming any, even as false, keeps its own', () => {
    const settings = { defaultOperations: ['coating'] };
    assert.deepEqual(operationsWithDefaults([], settings), { operations: ['coating'], defaulted: true });
    assert.deepEqual(operationsWithDefaults({}, settings), { operations: ['coating'], defaulted: true });
    assert.deepEqual(operationsWithDefaults({ coating: false }, settings), {
      operations: { coating: false },
      defaulted: false,
    });
    assert.deepEqual(operationsWithDefaults(['kiss_cut'], settings), {
      operations: ['kiss_cut'],
      defaulted: false,
    });
    assert.deepEqual(operationsWithDefaults([], undefined), { operations: [], defaulted: false });
  });
});
