import { type Reply, request } from './support/http.js';

/**
 * A browser-like cookie jar for every cookie a server sets (sesh/stateless may split a session
 * across `<name>.0`, `<name>.1`, ...): sends all current cookies, drops cleared ones.
 */
export class Jar {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  /** The Cookie header the jar would send. */
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Apply the Set-Cookie lines of a reply. */
  absorb(reply: Reply): void {
    for (const line of reply.setCookie) {
      const pair = line.split(';')[0] as string;
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      if (/;\s*Max-Age=0|;\s*expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1));
    }
  }

  async send(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
    const reply = await request(this.base + path, { ...init, cookie: this.header() });
    this.absorb(reply);
    return reply;
  }
}
