// Runtime configuration of the demo: the signing secret, where to listen.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Where the generated development secret is kept (.sesh/ is git-ignored). */
export const DEV_SECRET_FILE = '.sesh/dev-secret';

/**
 * The session secret: SESSION_SECRET when set (required with NODE_ENV=production); otherwise a
 * development secret generated once into .sesh/dev-secret, with a notice, and reused afterwards.
 */
export function loadSecret(env = process.env) {
  if (env.SESSION_SECRET) return env.SESSION_SECRET;
  if (env.NODE_ENV === 'production') {
    throw new Error(
      'SESSION_SECRET is required when NODE_ENV=production. Generate one with\n' +
        `  node -e "console.log(crypto.randomBytes(32).toString('base64url'))"\n` +
        'and keep it in your secret manager.',
    );
  }
  if (!existsSync(DEV_SECRET_FILE)) {
    mkdirSync(dirname(DEV_SECRET_FILE), { recursive: true });
    writeFileSync(DEV_SECRET_FILE, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    console.log(`[demo] No SESSION_SECRET set: generated a development secret in ${DEV_SECRET_FILE} (git-ignored).`);
    console.log('[demo] Production needs SESSION_SECRET (the demo refuses to start without it when NODE_ENV=production).');
  }
  return readFileSync(DEV_SECRET_FILE, 'utf8').trim();
}
