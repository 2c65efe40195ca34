// The sesh demo app: sign-in, profile, device list with revocation, an admin view of every
// session, a visit counter and flash messages. It imports only public sesh subpaths, exactly as
// your app would.
import { fileURLToPath } from 'node:url';
import express from 'express';
import {
  authenticate,
  csrf,
  csrfToken,
  deviceLabel,
  getSessionState,
  listSessions,
  login,
  logout,
  requireAuth,
  requireRole,
  revokeOtherSessions,
  revokeSession,
  session,
} from 'sesh/express';
import { allUsers, DEMO_ACCOUNTS, findUser, verifyPassword } from './users.mjs';
import { adminPage, devicesPage, errorPage, homePage, loginPage, logoutPage, profilePage } from './views.mjs';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

/** Only same-site paths are accepted as a post-login destination (no open redirect). */
function safeNext(value) {
  return typeof value === 'string' && /^\/(?![/\\])[^\s]*$/.test(value) && value.length < 200 ? value : '/profile';
}

/**
 * Build the demo app. `options` go to `session()` (the demo passes only `secret`, so sessions land
 * in the default embedded SQLite store: ./.sesh/sessions.db or $SESH_SQLITE_PATH).
 */
export function createDemoApp(options) {
  const sessions = session(options);
  const app = express();
  app.disable('x-powered-by');
  if (process.env.TRUST_PROXY)
    app.set('trust proxy', /^\d+$/.test(process.env.TRUST_PROXY) ? Number(process.env.TRUST_PROXY) : process.env.TRUST_PROXY);

  // Static files first: no session is loaded for them.
  app.use(express.static(PUBLIC_DIR, { index: false, maxAge: '1h' }));
  app.get('/favicon.ico', (_req, res) => res.status(204).end());

  // Pages carry personal data and CSRF tokens: never cached, never framed, no inline scripts.
  app.use((_req, res, next) => {
    res.set({
      'Cache-Control': 'no-store',
      'Content-Security-Policy':
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'Referrer-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
    });
    next();
  });

  app.use(sessions);
  app.use(express.urlencoded({ extended: false, limit: '8kb' }));
  // Every unsafe request (all forms, sign-in and sign-out included) must come from this origin
  // and carry the session's CSRF token.
  app.use(csrf({ token: 'required' }));

  /** The signed-in user for display (no password hash), with the roles recorded in the session. */
  function currentUser(req) {
    const auth = authenticate(req);
    const record = auth.ok ? findUser(auth.user.id) : null;
    if (!record) return null;
    const { passwordHash: _, ...user } = record;
    return { ...user, roles: auth.user.roles };
  }

  /** What every page shows; also counts the visit and consumes the flash message. */
  function context(req) {
    const user = currentUser(req);
    const flash = req.session.flash ?? null;
    if (flash) delete req.session.flash;
    req.session.visits = (req.session.visits ?? 0) + 1;
    return { user, flash, visits: req.session.visits, csrf: csrfToken(req), path: req.path };
  }

  const flash = (req, type, text) => {
    req.session.flash = { type, text };
  };

  // Authenticated routes: the user must still exist; the demo user record goes to res.locals.user.
  const loadUser = (u) => findUser(u.id);
  const signedIn = requireAuth({ loadUser });
  const adminOnly = requireRole('admin', { loadUser });

  app.get('/', (req, res) => {
    res.send(homePage(context(req)));
  });

  app.get('/login', (req, res) => {
    if (authenticate(req).ok) return res.redirect(303, '/profile');
    res.send(loginPage(context(req), { error: null, username: '', next: safeNext(req.query.next), accounts: DEMO_ACCOUNTS }));
  });

  app.post('/login', async (req, res) => {
    const { username = '', password = '', next } = req.body ?? {};
    const user = await verifyPassword(username, password);
    if (!user) {
      // No login happens: the session stays anonymous, its ID unchanged.
      res
        .status(401)
        .send(loginPage(context(req), { error: 'Wrong username or password.', username, next: safeNext(next), accounts: DEMO_ACCOUNTS }));
      return;
    }
    // New session ID, user and roles recorded, CSRF secret renewed; the visit counter is kept.
    await login(req, user.id, { roles: user.roles, keep: ['visits'] });
    flash(req, 'ok', `Welcome, ${user.name}. You are signed in.`);
    res.redirect(303, safeNext(next));
  });

  app.get('/profile', signedIn, (req, res) => {
    const state = getSessionState(req);
    const auth = authenticate(req);
    res.send(
      profilePage(context(req), {
        authTime: auth.ok ? auth.user.authTime : undefined,
        createdAt: state.createdAt,
        expiresAt: state.expiresAt,
        idleTimeout: sessions.sessions.options.idleTimeout,
        absoluteExpiry: state.createdAt + sessions.sessions.options.absoluteTimeout,
        now: Date.now(),
      }),
    );
  });

  app.get('/logout', (req, res) => {
    if (!authenticate(req).ok) return res.redirect(303, '/login');
    res.send(logoutPage(context(req)));
  });

  app.post('/logout', async (req, res) => {
    const wasSignedIn = authenticate(req).ok;
    await logout(req);
    // The old session is gone; the flash starts a fresh anonymous one.
    if (wasSignedIn) flash(req, 'ok', 'You have been signed out.');
    res.redirect(303, '/login');
  });

  app.get('/devices', signedIn, async (req, res) => {
    // This device first, then the others by last activity.
    const list = (await listSessions(req)).sort((a, b) => Number(b.current) - Number(a.current));
    res.send(devicesPage(context(req), { sessions: list, now: Date.now() }));
  });

  app.post('/devices/revoke', signedIn, async (req, res) => {
    const handle = String(req.body?.handle ?? '');
    const current = handle === getSessionState(req).storeKey;
    const done = await revokeSession(req, handle);
    if (current && done) {
      flash(req, 'ok', 'This device has been signed out.');
      return res.redirect(303, '/login');
    }
    flash(req, done ? 'ok' : 'error', done ? 'The session was revoked: that device is signed out.' : 'That session no longer exists.');
    res.redirect(303, '/devices');
  });

  app.post('/devices/revoke-others', signedIn, async (req, res) => {
    const n = await revokeOtherSessions(req);
    flash(req, 'ok', n === 1 ? 'Signed out 1 other session.' : `Signed out ${n} other sessions.`);
    res.redirect(303, '/devices');
  });

  /** Live sessions of every user, read through the store's per-user index. */
  async function sessionsByUser() {
    const store = sessions.sessions.store;
    const now = Date.now();
    return Promise.all(
      allUsers().map(async (user) => {
        const entries = await store.listByUser(user.id);
        const list = entries
          .filter((e) => e.session.userId === user.id && e.session.expiresAt > now)
          .map((e) => ({
            handle: e.key,
            device: deviceLabel(typeof e.session.meta.userAgent === 'string' ? e.session.meta.userAgent : undefined),
            ip: typeof e.session.meta.ip === 'string' ? e.session.meta.ip : undefined,
            createdAt: e.session.createdAt,
            lastSeen: e.session.lastSeen,
          }))
          .sort((a, b) => b.lastSeen - a.lastSeen);
        return { user, sessions: list };
      }),
    );
  }

  app.get('/admin', adminOnly, async (req, res) => {
    const groups = await sessionsByUser();
    res.send(adminPage(context(req), { groups, now: Date.now(), currentHandle: getSessionState(req).storeKey }));
  });

  app.post('/admin/revoke', adminOnly, async (req, res) => {
    const handle = String(req.body?.handle ?? '');
    const group = (await sessionsByUser()).find((g) => g.user.id === String(req.body?.user ?? ''));
    if (!group?.sessions.some((s) => s.handle === handle)) {
      flash(req, 'error', 'That session no longer exists.');
      return res.redirect(303, '/admin');
    }
    if (handle === getSessionState(req).storeKey) {
      await logout(req);
      flash(req, 'ok', 'You revoked your own session and are signed out.');
      return res.redirect(303, '/login');
    }
    await sessions.sessions.store.destroy(handle);
    flash(req, 'ok', `Revoked one session of ${group.user.username}.`);
    res.redirect(303, '/admin');
  });

  app.use((req, res) => {
    res.status(404).send(
      errorPage(safeContext(req), {
        status: 404,
        title: 'Not found',
        message: 'There is no page here.',
        action: { href: '/', label: 'Home' },
      }),
    );
  });

  /**
   * Page context for error pages. It writes nothing to the session: a refused cross-site post
   * arrives without the cookie (SameSite=Lax), and answering it with a fresh session cookie would
   * sign the victim out. It also works when the session could not be loaded at all.
   */
  function safeContext(req) {
    try {
      const user = currentUser(req);
      return { user, flash: null, visits: req.session.visits ?? 0, csrf: user ? csrfToken(req) : '', path: req.path };
    } catch {
      return { user: null, flash: null, visits: 0, csrf: '', path: req.path };
    }
  }

  // Errors: sign-in required → sign-in page; role missing or CSRF refusal → 403 page.
  app.use((err, req, res, _next) => {
    if (err?.code === 'UNAUTHENTICATED') {
      flash(req, 'error', 'Please sign in to see that page.');
      const next = req.method === 'GET' ? `?next=${encodeURIComponent(req.originalUrl)}` : '';
      return res.redirect(303, `/login${next}`);
    }
    const known = {
      FORBIDDEN: ['Forbidden', 'This page is for administrators only.'],
      CSRF_REJECTED: ['Request refused', 'This form came from another site, or the page was too old. Reload the page and try again.'],
      STORE_UNAVAILABLE: ['Try again shortly', 'The session store is not answering right now.'],
    }[err?.code];
    const status = known ? err.status : typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status >= 500 && !known) console.error('[demo]', err);
    const [title, message] =
      known ?? (status < 500 ? ['Bad request', 'The request could not be understood.'] : ['Something went wrong', 'Please try again.']);
    res.status(status).send(errorPage(safeContext(req), { status, title, message, action: { href: '/', label: 'Home' } }));
  });

  return { app, sessions };
}
