// A Server-Sent Events client for tests: reads a stream over a real socket and keeps every
// message, so a test can await a message type or the end of the stream.
import http from 'node:http';
import type { StreamMessage } from '../../core/lifecycle-stream';

export interface SseMessage extends StreamMessage {
  id?: string;
}

/** A Server-Sent Events client that keeps every message it receives. */
export interface SseClient {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: SseMessage[];
  /** Resolves with the first message of this type not yet returned by next(). */
  next(type: string, timeoutMs?: number): Promise<SseMessage>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): Promise<void>;
}

export function openStream(
  port: number,
  path: string,
  lastEventId?: string,
  headers: Record<string, string> = {},
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { ...headers, ...(lastEventId ? { 'Last-Event-ID': lastEventId } : {}) },
      },
      (res) => {
        const messages: SseMessage[] = [];
        const consumed = new Set<SseMessage>();
        const ended = new Promise<void>((done) => res.once('end', () => done()));
        const waiters: Array<{ type: string; resolve: (m: SseMessage) => void }> = [];
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const id = /^id: (.*)$/m.exec(frame)?.[1];
            const data = /^data: (.*)$/m.exec(frame)?.[1];
            if (data === undefined) continue;
            const message: SseMessage = { ...(JSON.parse(data) as StreamMessage), ...(id ? { id } : {}) };
            messages.push(message);
            for (const w of waiters.filter((w) => w.type === message.type)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(message);
            }
          }
        });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          messages,
          ended,
          next(type, timeoutMs = 5000) {
            const seen = messages.find((m) => m.type === type && !consumed.has(m));
            if (seen) {
              consumed.add(seen);
              return Promise.resolve(seen);
            }
            return new Promise((ok, fail) => {
              const timer = setTimeout(() => fail(new Error(`no ${type} within ${timeoutMs} ms`)), timeoutMs);
              waiters.push({
                type,
                resolve: (m) => {
                  clearTimeout(timer);
                  consumed.add(m);
                  ok(m);
                },
              });
            });
          },
          close() {
            if (res.closed) return Promise.resolve();
            return new Promise((done) => {
              res.once('close', () => done());
              req.destroy();
            });
          },
        });
      },
    );
    req.on('error', reject);
  });
}
