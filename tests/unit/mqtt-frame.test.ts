import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MqttFrameMeter } from '../../core/mqtt-frame';

/** Remaining-length bytes of MQTT 3.1.1 §2.2.3. */
function lengthBytes(length: number): number[] {
  const out: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    out.push(byte);
  } while (length > 0);
  return out;
}

/** A QoS 1 PUBLISH, as a client writes it. */
function publish(topic: string, payload: Uint8Array): Buffer {
  const name = Buffer.from(topic, 'utf8');
  const body = Buffer.concat([
    Buffer.from([name.length >> 8, name.length & 0xff]),
    name,
    Buffer.from([0, 1]),
    Buffer.from(payload),
  ]);
  return Buffer.concat([Buffer.from([0x32, ...lengthBytes(body.length)]), body]);
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(bytes.subarray(from, p));
    from = p;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

describe('MQTT frame meter (the guard in front of the parser)', () => {
  it('passes any stream of packets within the limit, however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(
            payloads.map((payload) => publish('floorflow/machines/m1/scan', payload)),
          );
          const meter = new MqttFrameMeter(400);
          for (const part of splitAt(stream, cuts)) assert.deepEqual(meter.feed(part), { ok: true });
        },
      ),
    );
  });

  it('refuses a packet declaring more than the limit from its length bytes alone, split anywhere', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1001, max: 268435455 }), fc.nat(6), (declared, cut) => {
        const header = Buffer.from([0x10, ...lengthBytes(declared)]);
        const meter = new MqttFrameMeter(1000);
        const verdicts = [meter.feed(header.subarray(0, cut)), meter.feed(header.subarray(cut))];
        const last = verdicts[1];
        assert.equal(last.ok, false);
        assert.equal(!last.ok && last.reason, 'too_large');
        // Once refused, more bytes do not change the verdict.
        assert.equal(meter.feed(Buffer.alloc(10)).ok, false);
      }),
    );
  });

  it('refuses the 200 MB CONNECT of the probe within its first bytes', () => {
    const meter = new MqttFrameMeter(256 * 1024 + 4096);
    const verdict = meter.feed(Buffer.from([0x10, ...lengthBytes(200 * 1024 * 1024)]));
    assert.deepEqual(verdict, { ok: false, reason: 'too_large', declared: 200 * 1024 * 1024 });
  });

  it('refuses a length of more than four bytes as malformed', () => {
    const meter = new MqttFrameMeter(Number.MAX_SAFE_INTEGER);
    assert.deepEqual(meter.feed(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])), {
      ok: false,
      reason: 'malformed',
    });
  });

  it('passes packets of exactly the limit and packets with no body (PINGREQ)', () => {
    const meter = new MqttFrameMeter(1000);
    const exact = Buffer.concat([Buffer.from([0x30, ...lengthBytes(1000)]), Buffer.alloc(1000)]);
    assert.deepEqual(meter.feed(Buffer.concat([exact, Buffer.from([0xc0, 0x00]), exact])), { ok: true });
  });
});
