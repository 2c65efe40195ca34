import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from './common.js';

/** The definition, without the one-entry cache `isLoopbackHost` keeps. */
function reference(host: string | undefined): boolean {
  if (!host) return false;
  const h = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

const host = fc.oneof(
  fc.constantFrom('localhost', 'localhost:3000', 'app.localhost', '[::1]', '[::1]:8080', '127.0.0.1', '127.1.2.3:80', ''),
  fc.constantFrom('example.com', 'example.com:443', '10.0.0.1', '[2001:db8::1]', 'localhost.evil.com', '127.0.0.1.evil.com'),
  fc.string(),
);

describe('isLoopbackHost', () => {
  it('answers as its definition for any sequence of hosts (its cache of the last host never leaks an answer)', () => {
    fc.assert(
      fc.property(fc.array(fc.option(host, { nil: undefined }), { maxLength: 30 }), (hosts) => {
        for (const h of hosts) expect(isLoopbackHost(h)).toBe(reference(h));
      }),
    );
  });

  it('knows loopback hosts from others', () => {
    expect(['localhost:3000', 'a.localhost', '[::1]:80', '127.0.0.1'].map(isLoopbackHost)).toEqual([true, true, true, true]);
    expect(['example.com', 'localhost.evil.com', '127.0.0.1.evil.com', undefined].map(isLoopbackHost)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
