import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express5 from 'express';
import express4 from 'express4';

/** Both Express majors the adapter supports; tests run once per entry. */
export const expressVersions = [
  { name: 'express 5', express: express5 as unknown as typeof express5 },
  { name: 'express 4', express: express4 as unknown as typeof express5 },
] as const;

/** A listening server on a random loopback port. */
export interface Running {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Start an app (anything `http.createServer` accepts) on 127.0.0.1 with a random port. */
export async function listen(app: Parameters<typeof import('node:http').createServer>[1]): Promise<Running> {
  const { createServer } = await import('node:http');
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One response, with the Set-Cookie values split out. */
export interface Reply {
  status: number;
  body: string;
  headers: Headers;
  setCookie: string[];
}

/**
 * Send one request with node:http (so every header, Host included, is sent as given); `cookie` is
 * sent verbatim as the Cookie header. Redirects are not followed.
 */
export async function request(
  url: string,
  init: { method?: string; cookie?: string | undefined; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  const { request: send } = await import('node:http');
  const headers: Record<string, string> = { ...init.headers };
  if (init.cookie !== undefined) headers.cookie = init.cookie;
  if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
  return new Promise<Reply>((resolve, reject) => {
    const req = send(url, { method: init.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) h.append(raw[i] as string, raw[i + 1] as string);
        const setCookie = res.headers['set-cookie'] ?? [];
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: h, setCookie });
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** `name=value` of the first Set-Cookie for `name`, or undefined. */
export function cookiePair(reply: Reply, name = '__Host-sid'): string | undefined {
  const line = reply.setCookie.find((c) => c.startsWith(`${name}=`));
  return line?.split(';')[0];
}

/**
 * A minimal browser-like cookie jar for one cookie name: it sends the last value set and drops it
 * when the server clears it.
 */
export class Client {
  cookie: string | undefined;
  constructor(
    readonly base: string,
    readonly name = '__Host-sid',
  ) {}

  async send(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
    const reply = await request(this.base + path, { ...init, cookie: this.cookie });
    for (const line of reply.setCookie) {
      if (!line.startsWith(`${this.name}=`)) continue;
      const pair = line.split(';')[0] as string;
      this.cookie = /Max-Age=0/i.test(line) ? undefined : pair;
    }
    return reply;
  }
}
