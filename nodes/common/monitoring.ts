// This runtime's monitoring figures for /api/dashboard/status (the product API's monitoring): the
// HTTP front records each API answer's time here, and every live stream node registers its
// connection count. Process-wide, like the metrics registry: the figures describe this process.
import { performance } from 'node:perf_hooks';
import { ResponseWindow, type RouteTimes } from '../../core/monitoring';

const responses = new ResponseWindow();

/** Records one API answer (the runtime's HTTP front calls this when a response finishes). */
export function recordResponse(route: string, ms: number, status: number): void {
  responses.record(route, ms, status, performance.now());
}

export interface ResponseTimesView {
  windowSeconds: number;
  routes: RouteTimes[];
}

export function responseTimes(): ResponseTimesView {
  return {
    windowSeconds: responses.options.windowMs / 1000,
    routes: responses.summary(performance.now()),
  };
}

const streams = new Map<string, { path: string; count: () => number }>();

/** A live stream (an SSE node) makes its connections count; call the result when it closes. */
export function registerStream(id: string, path: string, count: () => number): () => void {
  const entry = { path, count };
  streams.set(id, entry);
  return () => {
    if (streams.get(id) === entry) streams.delete(id);
  };
}

export interface StreamConnectionsView {
  total: number;
  streams: Array<{ path: string; connections: number }>;
}

export function streamConnections(): StreamConnectionsView {
  const list = [...streams.values()]
    .map((s) => ({ path: s.path, connections: s.count() }))
    .sort((a, b) => a.path.localeCompare(b.path));
  return { total: list.reduce((n, s) => n + s.connections, 0), streams: list };
}
