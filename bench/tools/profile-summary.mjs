// Summarise a .cpuprofile (node --cpu-prof): self time per function and inclusive time of the
// functions whose name or file matches a filter. Usage: node bench/tools/profile-summary.mjs FILE [filter] [top]
import { readFileSync } from 'node:fs';

const [file, filter = '', topArg = '40'] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n) => {
  const f = n.callFrame;
  const url = f.url.replace(/^.*\/(node_modules\/|dist\/|src\/)/, '$1');
  return `${f.functionName || '(anon)'} ${url}:${f.lineNumber + 1}`;
};
let total = 0;
const incl = new Map();
for (const [id, t] of dt) {
  total += t;
  const n = byId.get(id);
  const l = label(n);
  self.set(l, (self.get(l) ?? 0) + t);
  // inclusive: add to every distinct ancestor label once
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const lab = label(byId.get(cur));
    if (seen.has(lab)) continue;
    seen.add(lab);
    incl.set(lab, (incl.get(lab) ?? 0) + t);
  }
}
const top = Number(topArg);
const pct = (t) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1000).toFixed(0)} ms`);
console.log('--- self');
for (const [l, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(t), l);
console.log(`--- inclusive${filter ? ` (${filter})` : ''}`);
for (const [l, t] of [...incl]
  .filter(([l]) => l.includes(filter))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  console.log(pct(t), l);
