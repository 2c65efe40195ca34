// The demo's user "database": two seeded users with bcrypt password hashes.
import bcrypt from 'bcryptjs';

const COST = 10;

/** Seeded accounts. The passwords are printed on the login page: this is a demo. */
export const DEMO_ACCOUNTS = [
  { id: 'u1', username: 'alice', name: 'Alice Admin', password: 'wonderland', roles: ['admin'] },
  { id: 'u2', username: 'bob', name: 'Bob Builder', password: 'canwefixit', roles: [] },
];

/** Users as an app would keep them: no plaintext password, only its bcrypt hash. */
const users = DEMO_ACCOUNTS.map(({ password, ...user }) => ({ ...user, passwordHash: bcrypt.hashSync(password, COST) }));

// Compared against when the username is unknown, so both cases take the same time.
const DUMMY_HASH = bcrypt.hashSync('not-a-real-password', COST);

/** All users (the admin page lists their sessions). */
export function allUsers() {
  return users;
}

/** Look a user up by ID (sessions store the ID, not the whole user). */
export function findUser(id) {
  return users.find((u) => u.id === id) ?? null;
}

/** The user for a username and password, or null. Always does one bcrypt comparison. */
export async function verifyPassword(username, password) {
  const user = users.find((u) => u.username === String(username).trim().toLowerCase()) ?? null;
  const ok = await bcrypt.compare(String(password), user ? user.passwordHash : DUMMY_HASH);
  return ok && user ? user : null;
}
