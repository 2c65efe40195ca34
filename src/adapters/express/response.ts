import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

type Args = unknown[];

/**
 * Make a response wait for `commit` before its headers leave the process.
 *
 * `writeHead`, `write`, `end` and `flushHeaders` are deferred from the first call until `commit`
 * settles; then the Set-Cookie values are appended (never replacing the app's own cookies, in
 * whatever form it passed them), the originals are restored and the deferred calls replayed in
 * order, so the body still goes out in one write. `write` reports back-pressure while the commit
 * runs and emits `drain` afterwards, so piped streams wait. If `commit` fails before any header
 * left, the app's response is replaced by `onError`'s status with a short plain-text body.
 */
export function deferUntilCommitted(
  res: ServerResponse,
  commit: () => Promise<{ setCookie: string[] }>,
  onError: (err: unknown) => number,
): void {
  const origWriteHead = res.writeHead;
  const origWrite = res.write;
  const origEnd = res.end;
  const origFlush = res.flushHeaders;
  let started = false;
  let head: Args | null = null;
  const queue: Array<() => void> = [];
  let owesDrain = false;

  const restore = () => {
    res.writeHead = origWriteHead;
    res.write = origWrite;
    res.end = origEnd;
    res.flushHeaders = origFlush;
  };

  const start = () => {
    if (started) return;
    started = true;
    commit().then(
      ({ setCookie }) => {
        restore();
        if (setCookie.length > 0 && !res.headersSent) {
          // A response that sets a session cookie must never be stored by a shared cache.
          res.setHeader('Cache-Control', 'no-store');
        }
        if (head) head = applyHead(res, head, setCookie);
        else if (setCookie.length > 0 && !res.headersSent) res.appendHeader('Set-Cookie', setCookie);
        if (head) origWriteHead.apply(res, head as Parameters<typeof origWriteHead>);
        for (const op of queue) op();
        if (owesDrain && !res.writableNeedDrain && !res.writableEnded) res.emit('drain');
      },
      (err: unknown) => {
        restore();
        const status = onError(err);
        if (res.headersSent) {
          res.destroy(err instanceof Error ? err : undefined);
          return;
        }
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        const body = status === 503 ? 'Service Unavailable' : 'Internal Server Error';
        res.statusCode = status;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('Cache-Control', 'no-store');
        res.setHeader('Content-Length', Buffer.byteLength(body));
        if (status === 503) res.setHeader('Retry-After', '1');
        (origEnd as (...a: Args) => unknown).call(res, body);
      },
    );
  };

  res.writeHead = function writeHead(this: ServerResponse, ...args: Args) {
    head = args;
    return this;
  } as typeof res.writeHead;
  res.write = function write(this: ServerResponse, ...args: Args) {
    queue.push(() => (origWrite as (...a: Args) => boolean).apply(res, args));
    owesDrain = true;
    start();
    return false;
  } as typeof res.write;
  res.end = function end(this: ServerResponse, ...args: Args) {
    queue.push(() => (origEnd as (...a: Args) => ServerResponse).apply(res, args));
    start();
    return this;
  } as typeof res.end;
  res.flushHeaders = function flushHeaders(this: ServerResponse) {
    queue.push(() => origFlush.call(res));
    start();
  };
}

/**
 * Fold the headers given to a deferred `writeHead(status, [message], headers)` into the response
 * with the progressive API, so Set-Cookie values from the app and ours are all kept, and return
 * the arguments to replay without the headers.
 */
function applyHead(res: ServerResponse, args: Args, setCookie: string[]): Args {
  const hasMessage = typeof args[1] === 'string';
  const headers = (hasMessage ? args[2] : args[1]) as OutgoingHttpHeaders | unknown[] | undefined;
  if (headers && typeof headers === 'object') {
    const seen = new Set<string>();
    const put = (name: unknown, value: unknown) => {
      if (typeof name !== 'string' || value === undefined) return;
      const lower = name.toLowerCase();
      const v = value as string | number | readonly string[];
      if (lower === 'set-cookie' || seen.has(lower)) res.appendHeader(name, v as string | readonly string[]);
      else res.setHeader(name, v);
      seen.add(lower);
    };
    if (Array.isArray(headers)) {
      if (headers.length > 0 && Array.isArray(headers[0])) {
        for (const pair of headers as unknown[][]) put(pair[0], pair[1]);
      } else {
        for (let i = 0; i + 1 < headers.length; i += 2) put(headers[i], headers[i + 1]);
      }
    } else {
      for (const name of Object.keys(headers)) put(name, (headers as OutgoingHttpHeaders)[name]);
    }
  }
  if (setCookie.length > 0) res.appendHeader('Set-Cookie', setCookie);
  return hasMessage ? [args[0], args[1]] : [args[0]];
}
