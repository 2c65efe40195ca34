/**
 * Micro-benchmark: our targeted Cookie header reader (src/cookie `readCookie`) against the `cookie`
 * package's `parse` (what express-session uses), on the headers a session layer sees. Run with
 * `npx tsx bench/cookie-parse.ts`. Both must find the same session value; ns per call, best of 5.
 */
import { parse } from 'cookie';
import { readCookie } from '../src/cookie/index.js';

const NAME = '__Host-sid';
const token = `v1.${'a'.repeat(43)}.${'b'.repeat(43)}`;
const analytics = [
  '_ga=GA1.1.1234567890.1700000000',
  '_gid=GA1.1.987654321.1700000000',
  '_fbp=fb.1.1700000000000.1234567890',
  'theme=dark',
  'lang=en-GB',
  'consent=%7B%22ads%22%3Afalse%2C%22stats%22%3Atrue%7D',
  '_hjSessionUser_123=eyJpZCI6IjEyMzQ1Njc4OTAiLCJjcmVhdGVkIjoxNzAwMDAwMDAwMDAwfQ==',
  'ajs_anonymous_id=%2212345678-90ab-cdef-1234-567890abcdef%22',
];
const headers: Record<string, string> = {
  'session cookie only': `${NAME}=${token}`,
  'session + 8 other cookies': [...analytics.slice(0, 4), `${NAME}=${token}`, ...analytics.slice(4)].join('; '),
  'no session cookie (8 others)': analytics.join('; '),
  '40 cookies, session last': [...Array.from({ length: 39 }, (_, i) => `c${i}=${'x'.repeat(30)}`), `${NAME}=${token}`].join('; '),
};

function bench(fn: (h: string) => unknown, header: string): number {
  const n = 200_000;
  for (let i = 0; i < n; i++) fn(header);
  let best = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(header);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

const ours = (h: string) => readCookie(h, NAME, 256)[0];
const theirs = (h: string) => parse(h)[NAME];
console.log('| Cookie header | readCookie (ns) | cookie.parse (ns) | speed-up |');
console.log('|---|---:|---:|---:|');
for (const [label, header] of Object.entries(headers)) {
  if (ours(header) !== theirs(header)) throw new Error(`parsers disagree on "${label}"`);
  const a = bench(ours, header);
  const b = bench(theirs, header);
  console.log(`| ${label} (${header.length} B) | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(1)}× |`);
}
