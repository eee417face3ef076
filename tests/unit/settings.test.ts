import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig, SettingsError } from '../../settings';

describe('settings from the environment', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({}, '/srv/floorflow');
    assert.equal(config.port, 1880);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.mqttPort, 1883);
    assert.equal(config.mqttUrl, undefined);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, path.resolve('/srv/floorflow', 'data'));
    assert.equal(config.topicPrefix, 'floorflow');
    assert.equal(config.flowsDir, path.resolve('/srv/floorflow', 'flows'));
  });

  it('group-commits the inbox unless FLOORFLOW_SCAN_GROUP_COMMIT says off', () => {
    assert.equal(loadConfig({}).scanGroupCommit, true);
    assert.equal(loadConfig({ FLOORFLOW_SCAN_GROUP_COMMIT: 'off' }).scanGroupCommit, false);
    assert.equal(loadConfig({ FLOORFLOW_SCAN_GROUP_COMMIT: 'ON' }).scanGroupCommit, true);
  });

  it('spaces inbox flushes only when FLOORFLOW_INBOX_FLUSH_SPACING_MS says so', () => {
    assert.equal(loadConfig({}).inboxFlushSpacingMs, 0);
    assert.equal(loadConfig({ FLOORFLOW_INBOX_FLUSH_SPACING_MS: '5' }).inboxFlushSpacingMs, 5);
  });

  it('accepts MQTT_PORT=0 (pick a free port) but not PORT=-1', () => {
    assert.equal(loadConfig({ MQTT_PORT: '0' }).mqttPort, 0);
    assert.throws(() => loadConfig({ PORT: '-1' }), /PORT=-1 is not a port/);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT=eighty is not a port: use a whole number from 0 to 65535$/],
    [{ MQTT_PORT: '70000' }, /MQTT_PORT=70000 is not a port/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must start with postgres:\/\/ or postgresql:\/\//],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL is not a URL/],
    [{ MQTT_URL: 'http://broker' }, /MQTT_URL must start with mqtt:/],
    [{ FLOORFLOW_ADMIN_PASSWORD: 'short' }, /at least 8 characters/],
    [{ FLOORFLOW_API_TOKEN: 'short' }, /at least 16 characters/],
    [{ FLOORFLOW_TOPIC_PREFIX: 'a/b' }, /FLOORFLOW_TOPIC_PREFIX=a\/b may hold only/],
    [{ FLOORFLOW_LOG_LEVEL: 'loud' }, /FLOORFLOW_LOG_LEVEL=loud is not one of/],
    [{ FLOORFLOW_DRAIN_TIMEOUT_MS: '0' }, /FLOORFLOW_DRAIN_TIMEOUT_MS=0 is not valid/],
    [{ FLOORFLOW_HTTP_MAX_BODY: 'lots' }, /FLOORFLOW_HTTP_MAX_BODY=lots is not a size/],
    [
      { FLOORFLOW_INBOX_FLUSH_SPACING_MS: '-5' },
      /FLOORFLOW_INBOX_FLUSH_SPACING_MS=-5 is not valid: use a whole number of ms from 0 to 1000/,
    ],
    [
      { FLOORFLOW_SCAN_GROUP_COMMIT: 'sometimes' },
      /FLOORFLOW_SCAN_GROUP_COMMIT=sometimes is not valid: use on or off/,
    ],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${Object.entries(env)[0].join('=')} with one line naming the variable`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) =>
          err instanceof SettingsError && message.test(err.message) && !err.message.includes('\n'),
      );
    });
  }
});
