// The byte-level guard in front of the broker's MQTT parser, for TCP and WebSocket alike: the
// connection Aedes reads from is this Duplex, which passes bytes through unchanged while an
// MqttFrameMeter reads each packet's declared size, and destroys the connection the moment a
// packet says it is larger than the limit. Nothing of such a packet is ever buffered, before
// authentication or after.
import { Duplex } from 'node:stream';
import { FrameVerdict, MqttFrameMeter } from '../core/mqtt-frame';

export class FrameTooLargeError extends Error {
  constructor(readonly verdict: Exclude<FrameVerdict, { ok: true }>) {
    super(
      verdict.reason === 'too_large'
        ? `packet declares ${verdict.declared} bytes, more than allowed`
        : 'malformed packet length',
    );
  }
}

export class GuardedConnection extends Duplex {
  private readonly meter: MqttFrameMeter;

  constructor(
    private readonly inner: Duplex,
    /** Where the connection comes from, for log lines. */
    readonly remoteAddress: string,
    maxPacketBytes: number,
    private readonly refused: (verdict: Exclude<FrameVerdict, { ok: true }>) => void,
  ) {
    // Aedes reads with read(null) on 'readable'; one chunk in hand is enough, the socket holds the rest.
    super({ allowHalfOpen: false, readableHighWaterMark: 64 * 1024 });
    this.meter = new MqttFrameMeter(maxPacketBytes);
    inner.on('data', (chunk: Buffer) => {
      const verdict = this.meter.feed(chunk);
      if (!verdict.ok) {
        inner.pause();
        this.refused(verdict);
        this.destroy(new FrameTooLargeError(verdict));
        return;
      }
      // Backpressure: stop reading the socket while Aedes has not taken what it has.
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.forward(chunk, callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    // One write for what mqtt-packet writes between cork and uncork (a PUBLISH is several pieces).
    this.forward(Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  /** Done once the socket took the bytes (or drained): waiting for each flush would serialise every write. */
  private forward(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.inner.write(chunk)) callback();
    else this.inner.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end(callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.inner.destroy();
    callback(err);
  }
}

/**
 * Connections that have not yet authenticated: counted from the first byte, so a crowd of
 * sockets that never send CONNECT is refused at the door instead of each waiting for its deadline.
 */
export class PendingConnections {
  private readonly pending = new Set<Duplex>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.pending.size;
  }

  /** Admits a connection, or says no when `max` are already waiting. */
  admit(conn: Duplex): boolean {
    if (this.pending.size >= this.max) return false;
    this.pending.add(conn);
    conn.once('close', () => this.pending.delete(conn));
    return true;
  }

  authenticated(conn: Duplex): void {
    this.pending.delete(conn);
  }
}
