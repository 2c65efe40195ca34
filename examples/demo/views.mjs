// Server-rendered HTML: a layout and one function per page. Every value goes through esc().

/** Escape text for HTML content and attribute values. */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function time(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '<span class="muted">unknown</span>';
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC</time>`;
}

function ago(ms, now) {
  const s = Math.round((now - ms) / 1000);
  if (s < 0) {
    const m = Math.round(-s / 60);
    return m < 1 ? 'in under a minute' : m < 120 ? `in ${m} min` : `in ${Math.round(m / 60)} h`;
  }
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function when(ms, now) {
  return `${time(ms)} <span class="muted">(${esc(ago(ms, now))})</span>`;
}

function csrfField(token) {
  return `<input type="hidden" name="_csrf" value="${esc(token)}">`;
}

/**
 * The page frame. `ctx` carries what every page shows: the signed-in user (or null), the flash
 * message, the visit counter and a CSRF token for the sign-out button.
 */
export function layout(ctx, title, body) {
  const { user, flash, visits, csrf, path } = ctx;
  const link = (href, label) => `<a href="${href}"${path === href ? ' aria-current="page"' : ''}>${label}</a>`;
  const nav = user
    ? `${link('/profile', 'Profile')}${link('/devices', 'Devices')}${user.roles.includes('admin') ? link('/admin', 'Admin') : ''}
      <form method="post" action="/logout" class="inline">${csrfField(csrf)}<button class="link" type="submit">Sign out</button></form>`
    : link('/login', 'Sign in');
  const flashHtml = flash ? `<p class="flash ${flash.type === 'error' ? 'error' : 'ok'}" role="status">${esc(flash.text)}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · sesh demo</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header>
  <a class="brand" href="/">sesh<span>demo</span></a>
  <nav>${nav}</nav>
</header>
<main>
${flashHtml}
${body}
</main>
<footer>
  <span>Visits in this session: <strong id="visits">${esc(visits)}</strong></span>
  <span>${user ? `Signed in as <strong>${esc(user.username)}</strong>` : 'Not signed in'}</span>
</footer>
</body>
</html>`;
}

export function homePage(ctx) {
  const { user } = ctx;
  return layout(
    ctx,
    'Home',
    `<section class="card">
  <h1>Sessions, done properly</h1>
  <p>This little app runs on <code>sesh</code> with its default embedded SQLite store. Everything you see
  here — the visit counter below, the flash messages, sign-in, the device list — is session data.</p>
  ${
    user
      ? `<p>Welcome back, <strong>${esc(user.name)}</strong>.</p><p class="actions"><a class="button" href="/profile">Your profile</a> <a class="button secondary" href="/devices">Your devices</a></p>`
      : '<p class="actions"><a class="button" href="/login">Sign in</a></p>'
  }
</section>
<section class="card">
  <h2>Try this</h2>
  <ul>
    <li>Sign in from two browsers (or a private window) and open <a href="/devices">Devices</a>.</li>
    <li>Revoke the other browser: its next click sends it back to the sign-in page.</li>
    <li>Restart the server: you stay signed in and the counter keeps counting.</li>
  </ul>
</section>`,
  );
}

export function loginPage(ctx, { error, username, next, accounts }) {
  return layout(
    ctx,
    'Sign in',
    `<section class="card narrow">
  <h1>Sign in</h1>
  ${error ? `<p class="flash error" role="alert" id="login-error">${esc(error)}</p>` : ''}
  <form method="post" action="/login" class="stack">
    ${csrfField(ctx.csrf)}
    <input type="hidden" name="next" value="${esc(next)}">
    <label>Username <input name="username" autocomplete="username" required autofocus value="${esc(username)}"></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Sign in</button>
  </form>
  <details class="hint" open>
    <summary>Demo accounts</summary>
    <table>
      <thead><tr><th>Username</th><th>Password</th><th>Role</th></tr></thead>
      <tbody>${accounts
        .map(
          (a) =>
            `<tr><td><code>${esc(a.username)}</code></td><td><code>${esc(a.password)}</code></td><td>${esc(a.roles.join(', ') || 'user')}</td></tr>`,
        )
        .join('')}</tbody>
    </table>
  </details>
</section>`,
  );
}

export function profilePage(ctx, { authTime, expiresAt, createdAt, now, idleTimeout, absoluteExpiry }) {
  const { user } = ctx;
  return layout(
    ctx,
    'Profile',
    `<section class="card">
  <h1>${esc(user.name)}</h1>
  <dl class="facts">
    <dt>Username</dt><dd id="username">${esc(user.username)}</dd>
    <dt>Roles</dt><dd id="roles">${esc(user.roles.join(', ') || 'none')}</dd>
    <dt>Signed in</dt><dd id="auth-time">${when(authTime, now)}</dd>
    <dt>Session started</dt><dd>${when(createdAt, now)}</dd>
    <dt>Session expires</dt><dd id="expires">${when(expiresAt, now)}${
      idleTimeout
        ? `<br><span class="muted">after ${esc(Math.round(idleTimeout / 60000))} min without activity; each visit moves it on, up to ${time(absoluteExpiry)} at the latest</span>`
        : ''
    }</dd>
  </dl>
  <p class="actions"><a class="button secondary" href="/devices">Manage your devices</a></p>
</section>`,
  );
}

export function devicesPage(ctx, { sessions, now }) {
  const others = sessions.filter((s) => !s.current).length;
  const rows = sessions
    .map(
      (s) => `<li class="device${s.current ? ' current' : ''}">
    <div class="device-head">
      <strong>${esc(s.device)}</strong>
      ${s.current ? '<span class="badge">This device</span>' : ''}
    </div>
    <dl class="facts small">
      <dt>IP</dt><dd>${esc(s.ip ?? 'unknown')}</dd>
      <dt>Created</dt><dd>${when(s.createdAt, now)}</dd>
      <dt>Last seen</dt><dd>${when(s.lastSeen, now)}</dd>
    </dl>
    <form method="post" action="/devices/revoke">
      ${csrfField(ctx.csrf)}<input type="hidden" name="handle" value="${esc(s.handle)}">
      <button type="submit" class="${s.current ? 'secondary' : 'danger'}">${s.current ? 'Sign out this device' : 'Revoke'}</button>
    </form>
  </li>`,
    )
    .join('\n');
  return layout(
    ctx,
    'Your sessions',
    `<section class="card">
  <h1>Your sessions</h1>
  <p class="muted">Every browser signed in to your account. Revoking one signs it out on its next request.</p>
  <ul class="devices" id="devices">
  ${rows}
  </ul>
  ${
    others > 0
      ? `<form method="post" action="/devices/revoke-others">${csrfField(ctx.csrf)}<button type="submit" class="danger">Sign out everywhere else (${others})</button></form>`
      : '<p class="muted">No other devices are signed in.</p>'
  }
</section>`,
  );
}

export function adminPage(ctx, { groups, now, currentHandle }) {
  const total = groups.reduce((n, g) => n + g.sessions.length, 0);
  const section = (
    g,
  ) => `<h2>${esc(g.user.name)} <span class="muted">(${esc(g.user.username)}${g.user.roles.length ? `, ${esc(g.user.roles.join(', '))}` : ''})</span></h2>
  ${
    g.sessions.length === 0
      ? '<p class="muted">No active sessions.</p>'
      : `<div class="table-wrap"><table class="sessions">
    <thead><tr><th>Device</th><th>IP</th><th>Created</th><th>Last seen</th><th></th></tr></thead>
    <tbody>${g.sessions
      .map(
        (s) => `<tr data-user="${esc(g.user.username)}">
      <td>${esc(s.device)}${s.handle === currentHandle ? ' <span class="badge">You</span>' : ''}</td>
      <td>${esc(s.ip ?? 'unknown')}</td>
      <td>${when(s.createdAt, now)}</td>
      <td>${when(s.lastSeen, now)}</td>
      <td><form method="post" action="/admin/revoke">${csrfField(ctx.csrf)}<input type="hidden" name="handle" value="${esc(s.handle)}"><input type="hidden" name="user" value="${esc(g.user.id)}"><button type="submit" class="danger small">Revoke</button></form></td>
    </tr>`,
      )
      .join('')}</tbody>
  </table></div>`
  }`;
  return layout(
    ctx,
    'Admin',
    `<section class="card">
  <h1>Active sessions</h1>
  <p class="muted"><span id="session-count">${total}</span> active session${total === 1 ? '' : 's'} across all users.</p>
  ${groups.map(section).join('\n')}
</section>`,
  );
}

export function errorPage(ctx, { status, title, message, action }) {
  return layout(
    ctx,
    title,
    `<section class="card narrow">
  <p class="status">${esc(status)}</p>
  <h1>${esc(title)}</h1>
  <p>${esc(message)}</p>
  ${action ? `<p class="actions"><a class="button" href="${esc(action.href)}">${esc(action.label)}</a></p>` : ''}
</section>`,
  );
}

export function logoutPage(ctx) {
  return layout(
    ctx,
    'Sign out',
    `<section class="card narrow">
  <h1>Sign out?</h1>
  <p>This ends the session on this device only.</p>
  <form method="post" action="/logout">${csrfField(ctx.csrf)}<button type="submit">Sign out</button></form>
</section>`,
  );
}
