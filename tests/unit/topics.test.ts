import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clientIdAllowed, mayPublish, maySubscribe, parseMachineTopic } from '../../core/topics';

describe('machine topic rules', () => {
  it('lets a machine publish its scan, status and event topics', () => {
    for (const kind of ['scan', 'status', 'event']) {
      assert.equal(mayPublish('floorflow', 'press-1', `floorflow/machines/press-1/${kind}`), true);
    }
  });

  it("never lets a machine publish to its own cmd or another machine's topics", () => {
    assert.equal(mayPublish('floorflow', 'press-1', 'floorflow/machines/press-1/cmd'), false);
    assert.equal(mayPublish('floorflow', 'press-1', 'floorflow/machines/press-1/cmd/x'), false);
    assert.equal(mayPublish('floorflow', 'press-1', 'floorflow/machines/press-2/scan'), false);
    assert.equal(mayPublish('floorflow', 'press-1', 'floorflow/alerts'), false);
    assert.equal(mayPublish('floorflow', 'press-1', 'other/machines/press-1/scan'), false);
  });

  it('lets a machine subscribe only to its own cmd', () => {
    assert.equal(maySubscribe('floorflow', 'press-1', 'floorflow/machines/press-1/cmd'), true);
    assert.equal(maySubscribe('floorflow', 'press-1', 'floorflow/machines/press-1/#'), false);
    assert.equal(maySubscribe('floorflow', 'press-1', 'floorflow/machines/+/cmd'), false);
    assert.equal(maySubscribe('floorflow', 'press-1', '#'), false);
  });

  it('reads the machine and kind from a topic', () => {
    assert.deepEqual(parseMachineTopic('floorflow', 'floorflow/machines/s-1/scan'), {
      machineId: 's-1',
      kind: 'scan',
      suffix: 'scan',
    });
    assert.equal(parseMachineTopic('floorflow', 'floorflow/machines//scan'), undefined);
  });

  it('never allows a publish outside the own prefix, for any topic', () => {
    fc.assert(
      fc.property(fc.string(), (topic) => {
        if (mayPublish('floorflow', 'm1', topic)) {
          assert.ok(topic.startsWith('floorflow/machines/m1/'));
          assert.ok(!topic.startsWith('floorflow/machines/m1/cmd'));
        }
      }),
    );
  });
});

describe('MQTT client ids (docs/machines.md)', () => {
  it("accepts the machine's id and <machine id>/<suffix>", () => {
    assert.equal(clientIdAllowed('EMB-1', 'EMB-1'), true);
    assert.equal(clientIdAllowed('EMB-1', 'EMB-1/display'), true);
    assert.equal(clientIdAllowed('EMB-1', 'EMB-1/sim-3f.a:b@c_d-e'), true);
  });

  it("refuses another machine's id, a prefix that is not followed by /, and empty or odd suffixes", () => {
    for (const id of [
      'EMB-2',
      'EMB-10',
      'EMB-1x',
      'EMB-1/',
      'EMB-1/a/b',
      'EMB-1/+',
      'EMB-1/#',
      '',
      'mqttjs_1a2b',
    ]) {
      assert.equal(clientIdAllowed('EMB-1', id), false, id);
    }
    assert.equal(clientIdAllowed('EMB-1', `EMB-1/${'x'.repeat(65)}`), false);
  });

  it('never lets a client id name another machine, for any pair of ids', () => {
    const machineId = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
    fc.assert(
      fc.property(machineId, machineId, fc.string(), (a, b, suffix) => {
        if (a === b) return;
        for (const id of [b, `${b}/${suffix}`]) {
          if (clientIdAllowed(a, id)) assert.ok(id === a || id.startsWith(`${a}/`), `${a} may use ${id}`);
        }
      }),
    );
  });
});
