import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A loopback TCP relay that a test can cut and restore, to take a real server "down" without touching it. */
export interface TcpProxy {
  port: number;
  /** Drops every connection and refuses new ones until `up()`. */
  down(): void;
  /** Keeps every connection open but passes nothing on (a server that hangs), until `up()`. */
  freeze(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let isUp = true;
  let frozen = false;
  const held: Array<() => void> = [];
  const server: Server = createServer((client) => {
    if (!isUp) return void client.destroy();
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    const relay = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (frozen) held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    relay(client, upstream);
    relay(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    down() {
      isUp = false;
      for (const s of sockets) s.destroy();
    },
    freeze() {
      frozen = true;
    },
    up() {
      isUp = true;
      frozen = false;
      for (const send of held.splice(0)) send();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
