/**
 * Keeps docs/security.md honest: every OWASP ASVS 5.0 V7 requirement is listed, every test it
 * cites still exists (a renamed or deleted test fails here), and every row of the attack catalog
 * (SECURITY.md §2, A01–A50 with A16b and A19b) has at least one test named after it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const doc = readFileSync(join(root, 'docs/security.md'), 'utf8');

/** ASVS 5.0 chapter V7, every requirement. */
const V7 = [
  '7.1.1',
  '7.1.2',
  '7.1.3',
  '7.2.1',
  '7.2.2',
  '7.2.3',
  '7.2.4',
  '7.3.1',
  '7.3.2',
  '7.4.1',
  '7.4.2',
  '7.4.3',
  '7.4.4',
  '7.4.5',
  '7.5.1',
  '7.5.2',
  '7.5.3',
  '7.6.1',
  '7.6.2',
];
/** Requirements about federation, which sesh does not do. */
const NOT_APPLICABLE = new Set(['7.1.3', '7.6.1']);

/** The attack catalog rows of SECURITY.md §2. */
const CATALOG = [...Array.from({ length: 50 }, (_, i) => `A${String(i + 1).padStart(2, '0')}`), 'A16b', 'A19b'];

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'fixtures') out.push(...testFiles(p));
    } else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The first string argument of every it/test/describe call (template placeholders kept as written). */
function titlesOf(source: string): string[] {
  const titles: string[] = [];
  for (const m of source.matchAll(/\b(?:it|test|describe)(?:\.each\([^)]*\))?\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g)) {
    titles.push((m[2] as string).replace(/\\(.)/g, '$1'));
  }
  return titles;
}

const titlesByFile = new Map<string, string[]>();
for (const f of [...testFiles(join(root, 'test')), ...testFiles(join(root, 'src'))]) {
  titlesByFile.set(relative(root, f), titlesOf(readFileSync(f, 'utf8')));
}
const allTitles = [...titlesByFile.values()].flat();

/** True when a test title is named after catalog row `code` (`A19 …`, `A42: …`, `A42–A44 …`). */
const namedAfter = (code: string) => (title: string) => title.startsWith(code) && !/[A-Za-z0-9]/.test(title.charAt(code.length));

function v7Rows(): Map<string, string> {
  const start = doc.indexOf('## OWASP ASVS 5.0 — V7');
  expect(start, 'docs/security.md has the ASVS V7 section').toBeGreaterThan(-1);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*(7\.\d\.\d)\b[^|]*\|[^|]*\|(.*)\|\s*$/.exec(line);
    if (m) rows.set(m[1] as string, m[2] as string);
  }
  return rows;
}

describe('docs/security.md', () => {
  it('lists every ASVS 5.0 V7 requirement, each with a covering test or marked not applicable', () => {
    const rows = v7Rows();
    expect([...rows.keys()].sort()).toEqual([...V7].sort());
    for (const [req, cell] of rows) {
      if (NOT_APPLICABLE.has(req)) {
        expect(cell, req).toMatch(/not applicable/);
        continue;
      }
      const cites = /\bA\d{2}b?\b/.test(cell) || /"[^"]+"/.test(cell);
      expect(cites, `${req} cites a test`).toBe(true);
    }
  });

  it('every test the V7 table cites still exists (file › title, and catalog rows)', () => {
    const missing: string[] = [];
    for (const [req, cell] of v7Rows()) {
      let file: string | undefined;
      for (const m of cell.matchAll(/`([^`]+\.test\.ts)`|"([^"]+)"|\b(A\d{2}b?)\b/g)) {
        if (m[1]) {
          file = m[1];
          if (!titlesByFile.has(file)) missing.push(`${req}: no file ${file}`);
        } else if (m[2]) {
          const titles = file ? (titlesByFile.get(file) ?? []) : [];
          if (!titles.some((t) => t.startsWith(m[2] as string))) missing.push(`${req}: no test "${m[2]}" in ${file ?? '(no file named)'}`);
        } else if (m[3] && !allTitles.some(namedAfter(m[3]))) {
          missing.push(`${req}: no test named after ${m[3]}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('every row of the attack catalog (A01–A50, A16b, A19b) has a test named after it', () => {
    const missing = CATALOG.filter((code) => !allTitles.some(namedAfter(code)));
    expect(missing).toEqual([]);
  });
});
