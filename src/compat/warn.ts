const warned = new Set<string>();

/** Print a deprecation warning once per message (express-session uses `depd`; we use Node's warnings). */
export function deprecate(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.emitWarning(`sesh/express-session: ${message}`, { type: 'DeprecationWarning', code: 'SESH_EXPRESS_SESSION' });
}
