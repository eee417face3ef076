// Watches node status the way the editor does: logs in as admin and subscribes to
// status/# on the editor's comms WebSocket, in a running runtime process.
import WebSocket from 'ws';

export interface NodeStatusEvent {
  nodeId: string;
  fill?: string;
  shape?: string;
  text?: string;
}

export interface NodeStatusWatch {
  readonly events: NodeStatusEvent[];
  close(): void;
}

export async function watchEditorStatus(baseUrl: string, adminPassword: string): Promise<NodeStatusWatch> {
  const login = await fetch(`${baseUrl}/editor/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: 'node-red-editor',
      grant_type: 'password',
      scope: '*',
      username: 'admin',
      password: adminPassword,
    }),
  });
  if (login.status !== 200) throw new Error(`admin login failed with ${login.status}`);
  const { access_token } = (await login.json()) as { access_token: string };
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/editor/comms`);
  const events: NodeStatusEvent[] = [];
  ws.on('message', (data: WebSocket.RawData) => {
    const parsed = JSON.parse(data.toString()) as unknown;
    for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
      const msg = m as { topic?: string; data?: { fill?: string; shape?: string; text?: string } };
      if (!msg.topic?.startsWith('status/')) continue;
      events.push({ nodeId: msg.topic.slice('status/'.length), ...msg.data });
    }
  });
  // Node-RED drops a subscription sent before it has answered the auth message.
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ auth: access_token })));
    ws.once('message', (data: WebSocket.RawData) => {
      if (!/"auth":"ok"/.test(data.toString()))
        return reject(new Error(`comms auth failed: ${data.toString()}`));
      ws.send(JSON.stringify({ subscribe: 'status/#' }));
      resolve();
    });
  });
  ws.on('error', () => undefined);
  return { events, close: () => ws.close() };
}
