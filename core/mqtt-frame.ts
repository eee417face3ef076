// Reads MQTT fixed headers as bytes stream past, without keeping any of them: the broker's
// parser buffers a whole packet before anyone can look at its size, so a CONNECT that declares
// 200 MB would be buffered in full before authentication. This meter sees the declared
// remaining length in the first five bytes of each packet and says "too large" at once.

export type FrameVerdict =
  { ok: true } | { ok: false; reason: 'too_large'; declared: number } | { ok: false; reason: 'malformed' };

/** Where in a packet the meter is: reading its fixed header, or skipping its body. */
type State =
  | { at: 'type' }
  | { at: 'length'; value: number; multiplier: number; bytes: number }
  | { at: 'body'; left: number };

export class MqttFrameMeter {
  private state: State = { at: 'type' };
  private verdict: FrameVerdict = { ok: true };

  /** @param maxPacketBytes largest remaining length (variable header + payload) allowed. */
  constructor(private readonly maxPacketBytes: number) {}

  /** Feeds the next bytes of the stream; once a verdict is not ok it stays so. */
  feed(chunk: Uint8Array): FrameVerdict {
    if (!this.verdict.ok) return this.verdict;
    let i = 0;
    while (i < chunk.length) {
      const state = this.state;
      if (state.at === 'body') {
        const skip = Math.min(state.left, chunk.length - i);
        i += skip;
        state.left -= skip;
        if (state.left === 0) this.state = { at: 'type' };
      } else if (state.at === 'type') {
        i += 1;
        this.state = { at: 'length', value: 0, multiplier: 1, bytes: 0 };
      } else {
        const byte = chunk[i++];
        state.value += (byte & 0x7f) * state.multiplier;
        state.multiplier *= 128;
        state.bytes += 1;
        // Decided as soon as the bytes read so far prove the length too large, not only at its end.
        if (state.value > this.maxPacketBytes) {
          this.verdict = { ok: false, reason: 'too_large', declared: this.declared(state, byte, chunk, i) };
          return this.verdict;
        }
        if (byte & 0x80) {
          // MQTT 3.1.1 §2.2.3: at most four length bytes.
          if (state.bytes === 4) {
            this.verdict = { ok: false, reason: 'malformed' };
            return this.verdict;
          }
        } else {
          this.state = state.value === 0 ? { at: 'type' } : { at: 'body', left: state.value };
        }
      }
    }
    return this.verdict;
  }

  /** The full declared length when the rest of its bytes are at hand (for the log line), else a lower bound. */
  private declared(
    state: { value: number; multiplier: number; bytes: number },
    byte: number,
    chunk: Uint8Array,
    i: number,
  ): number {
    let value = state.value;
    let multiplier = state.multiplier;
    let more = (byte & 0x80) !== 0;
    for (let bytes = state.bytes; more && bytes < 4 && i < chunk.length; bytes++) {
      const next = chunk[i++];
      value += (next & 0x7f) * multiplier;
      multiplier *= 128;
      more = (next & 0x80) !== 0;
    }
    return value;
  }
}
