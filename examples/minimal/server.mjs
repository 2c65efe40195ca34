// The seed exercise on sesh: POST /login stores the username, GET /profile reads it,
// GET /logout destroys the session. Imports only public sesh subpaths, as an app would.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import express from 'express';
import { session } from 'sesh/express';

function devSecret() {
  if (process.env.SESSION_SECRET) return process.env.SESSION_SECRET;
  if (process.env.NODE_ENV === 'production') {
    console.error('SESSION_SECRET is required in production.');
    process.exit(1);
  }
  const file = '.sesh/dev-secret';
  if (!existsSync(file)) {
    mkdirSync('.sesh', { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
    console.log(`[demo] generated a development secret in ${file} (set SESSION_SECRET in production)`);
  }
  return readFileSync(file, 'utf8').trim();
}

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(session({ secret: devSecret() }));

const page = (body) => `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>sesh</title>${body}`;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

app.get('/', (req, res) => {
  req.session.visits = (req.session.visits ?? 0) + 1;
  res.send(
    page(`<h1>sesh</h1><p>Visits: ${req.session.visits}</p>
<form method="post" action="/login"><input name="username" placeholder="username" required> <button>Log in</button></form>
<p><a href="/profile">Profile</a> · <a href="/logout">Log out</a></p>`),
  );
});

app.post('/login', async (req, res) => {
  const username = String(req.body?.username ?? '').trim();
  if (!username) return res.status(400).send(page('<p>Username required. <a href="/">Back</a></p>'));
  await req.session.regenerate();
  req.session.username = username;
  res.redirect('/profile');
});

app.get('/profile', (req, res) => {
  if (!req.session.username) return res.status(401).send(page('<p>Not logged in. <a href="/">Log in</a></p>'));
  res.set('Cache-Control', 'no-store').send(page(`<h1>Hello, ${esc(req.session.username)}</h1><p><a href="/logout">Log out</a></p>`));
});

app.get('/logout', async (req, res) => {
  await req.session.destroy();
  res.redirect('/');
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, () => console.log(`sesh demo listening on http://localhost:${port}`));
