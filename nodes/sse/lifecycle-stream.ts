// The clients of one lifecycle event stream (Server-Sent Events) and the pump that feeds them
// from the durable event log. Every client has a cursor (the last event id it was sent); a pump
// reads the log after the lowest cursor and gives each client what lies beyond its own, so a
// client resuming with Last-Event-ID and a live client are served by the same code, and an
// event is never sent twice or skipped. Pumps run one at a time.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import { parseLastEventId, sseFrame, sseFramesFor } from '../../core/lifecycle-stream';
import { eventsAfter, lastEventId } from '../../store/lifecycle';
import type { Clock, TimerHandle } from '../common/services';

export interface StreamOptions {
  /** Lifecycle models whose events this stream carries. */
  lifecycles: string[];
  maxClients: number;
  heartbeatMs: number;
}

interface Client {
  res: ServerResponse;
  /** The last event id sent (or skipped) for this client; undefined until it is set up. */
  cursor?: bigint;
}

const PAGE = 500;

export class LifecycleStream {
  private readonly clients = new Set<Client>();
  private work: Promise<void> = Promise.resolve();
  private heartbeat: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly pool: () => Pool,
    private readonly clock: Clock,
    private readonly options: StreamOptions,
    private readonly warn: (message: string) => void,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /** Serves one stream request: refuses past maxClients (503), otherwise keeps the response open. */
  connect(req: IncomingMessage & { query?: Record<string, unknown> }, res: ServerResponse): void {
    if (this.closed || this.clients.size >= this.options.maxClients) {
      res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '5' });
      res.end(
        JSON.stringify({
          success: false,
          error: this.closed
            ? 'the stream is closing; reconnect shortly'
            : `too many stream clients (at most ${this.options.maxClients}); retry later`,
        }),
      );
      return;
    }
    const resumeAfter =
      parseLastEventId(req.headers['last-event-id']) ?? parseLastEventId(req.query?.lastEventId);
    const client: Client = { res };
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // Proxies (nginx) would otherwise buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    this.enqueue(async () => {
      // A new client starts at the end of the log; a resuming one after its last event, and
      // the pump below sends it everything it missed before anything new.
      client.cursor = BigInt(resumeAfter ?? (await lastEventId(this.pool())));
      this.write(
        client,
        sseFrame({
          type: 'connection_established',
          data: {
            clients: this.clients.size,
            resumedAfter: resumeAfter ?? null,
            lifecycles: this.options.lifecycles,
          },
          timestamp: this.clock.now().toISOString(),
        }),
      );
      await this.pumpNow();
    });
    this.scheduleHeartbeat();
  }

  /** Something was logged: send it. Also safe to call when nothing was. */
  notify(): void {
    this.enqueue(() => this.pumpNow());
  }

  /** Ends every stream (clients reconnect elsewhere or later) and stops the heartbeat. */
  async close(): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
    for (const client of this.clients) client.res.end();
    this.clients.clear();
    await this.work;
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((err: unknown) => {
      this.warn(`lifecycle stream: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  private async pumpNow(): Promise<void> {
    for (;;) {
      const ready = [...this.clients].filter((c): c is Client & { cursor: bigint } => c.cursor !== undefined);
      if (ready.length === 0) return;
      const from = ready.reduce((min, c) => (c.cursor < min ? c.cursor : min), ready[0].cursor);
      const events = await eventsAfter(this.pool(), from.toString(), {
        lifecycles: this.options.lifecycles,
        limit: PAGE,
      });
      for (const event of events) {
        const id = BigInt(event.id);
        const frames = sseFramesFor(event);
        for (const client of ready) {
          if (client.cursor >= id) continue;
          if (frames) this.write(client, frames);
          client.cursor = id;
        }
      }
      if (events.length < PAGE) return;
    }
  }

  private write(client: Client, text: string): void {
    if (client.res.writableEnded || client.res.destroyed) {
      this.clients.delete(client);
      return;
    }
    client.res.write(text);
  }

  private scheduleHeartbeat(): void {
    if (this.heartbeat || this.closed) return;
    this.heartbeat = this.clock.setTimeout(() => {
      this.heartbeat = undefined;
      if (this.clients.size === 0 || this.closed) return;
      const beat = sseFrame({
        type: 'heartbeat',
        data: { clients: this.clients.size },
        timestamp: this.clock.now().toISOString(),
      });
      for (const client of this.clients) if (client.cursor !== undefined) this.write(client, beat);
      // Also picks up events another runtime on the same database logged.
      this.notify();
      this.scheduleHeartbeat();
    }, this.options.heartbeatMs);
  }
}
