// The scanners of the scan-ingest bench as plain TCP sockets speaking just enough MQTT 3.1.1:
// CONNECT, QoS 1 PUBLISH, and reading CONNACK and PUBACK. Fifty mqtt.js clients cost the bench
// process ~210 µs of CPU a scan (their stream and packet machinery), which on 2 cores is taken
// from whichever side is measured; these write packets encoded before the clock starts and read
// back four-byte PUBACKs, so the load costs both sides the same and little. Nothing here retries
// or reconnects: a bench run that loses a connection fails.
import net from 'node:net';

/** MQTT's remaining length: 7 bits a byte, high bit set while more follow. */
function remainingLength(n: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return bytes;
}

function utf8Field(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(2 + body.length);
  out.writeUInt16BE(body.length, 0);
  body.copy(out, 2);
  return out;
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte, ...remainingLength(body.length)]), body]);
}

/**
 * CONNECT, clean session, keepalive 600 s (the embedded broker's limit; 0 it refuses): a run is
 * shorter, so no PINGREQ is ever due.
 */
export function connectPacket(clientId: string, username?: string, password?: string): Buffer {
  let flags = 0x02; // clean session
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const parts = [utf8Field('MQTT'), Buffer.from([4, flags, 0x02, 0x58]), utf8Field(clientId)];
  if (username !== undefined) parts.push(utf8Field(username));
  if (password !== undefined) parts.push(utf8Field(password));
  return packet(0x10, Buffer.concat(parts));
}

/** A QoS 1 PUBLISH with its packet id (1..65535). */
export function publishPacket(topic: string, payload: string | Buffer, packetId: number): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId, 0);
  return packet(0x32, Buffer.concat([utf8Field(topic), id, Buffer.from(payload)]));
}

export interface ScannerLogin {
  clientId: string;
  username?: string;
  password?: string;
}

/**
 * One scanner connection. publish() writes a pre-encoded PUBLISH and resolves on its PUBACK;
 * several may be in flight (each with its own packet id).
 */
export class RawScanner {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private connack?: { resolve: () => void; reject: (err: Error) => void };
  private failure?: Error;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    // A lost connection fails every publish waiting for its PUBACK: the run stops instead of hanging.
    const fail = (err: Error) => {
      this.failure ??= err;
      this.connack?.reject(err);
      for (const waiter of this.waiting.values()) waiter.reject(err);
      this.waiting.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the broker closed the connection')));
  }

  static async connect(host: string, port: number, login: ScannerLogin): Promise<RawScanner> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const scanner = new RawScanner(socket);
    await new Promise<void>((resolve, reject) => {
      scanner.connack = { resolve, reject };
      socket.write(connectPacket(login.clientId, login.username, login.password));
    });
    scanner.connack = undefined;
    return scanner;
  }

  /** Writes one PUBLISH (from publishPacket, with `packetId`) and resolves on its PUBACK. */
  publish(encoded: Buffer, packetId: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(packetId, { resolve, reject });
      this.socket.write(encoded);
    });
  }

  end(): void {
    this.failure ??= new Error('the scanner was closed');
    this.socket.destroy();
  }

  /** Reads whole packets off the stream: CONNACK and PUBACK matter, anything else is skipped. */
  private read(chunk: Buffer): void {
    let data = this.buffered.length > 0 ? Buffer.concat([this.buffered, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (data.length - at < 2) break;
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      while (i < data.length && i < at + 5) {
        const byte = data[i++];
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || data.length < i + length) break;
      const type = data[at] >> 4;
      if (type === 4 && length >= 2) {
        const id = data.readUInt16BE(i);
        const waiter = this.waiting.get(id);
        if (waiter) {
          this.waiting.delete(id);
          waiter.resolve();
        }
      } else if (type === 2 && this.connack) {
        const code = length >= 2 ? data[i + 1] : 255;
        if (code === 0) this.connack.resolve();
        else this.connack.reject(new Error(`CONNACK refused the scanner: return code ${code}`));
      }
      at = i + length;
    }
    data = data.subarray(at);
    this.buffered = data.length > 0 ? Buffer.from(data) : Buffer.alloc(0);
  }
}
