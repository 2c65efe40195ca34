// The demo's user "database": two seeded users. Like a real user table it keeps only bcrypt
// hashes (cost 10); the plaintext demo passwords are listed separately for the sign-in page hint.
import bcrypt from 'bcryptjs';

const users = [
  {
    id: 'u1',
    username: 'alice',
    name: 'Alice Admin',
    roles: ['admin'],
    // bcrypt.hashSync('wonderland', 10)
    passwordHash: '$2b$10$sPFfCV4mHfla.gfG1NYr6.i/ENqmC9j4LCjLL.Bc9d7IBOjffNcUS',
  },
  {
    id: 'u2',
    username: 'bob',
    name: 'Bob Builder',
    roles: [],
    // bcrypt.hashSync('canwefixit', 10)
    passwordHash: '$2b$10$WePOX.531.0Mrli92HePZeCcJGWxZWi4gir96RaP7OlB7HiV/N4Ve',
  },
];

/** The demo credentials shown on the sign-in page (this is a demo: never do this in an app). */
export const DEMO_ACCOUNTS = [
  { username: 'alice', password: 'wonderland', roles: ['admin'] },
  { username: 'bob', password: 'canwefixit', roles: [] },
];

// Compared against when the username is unknown, so both cases cost one bcrypt comparison.
const DUMMY_HASH = '$2b$10$VRwb0bsyaAiVKqMk.o4NUOom2j9d2OE3C6ELvD.X2NPcVMBUuZ2de';

/** All users (the admin page lists their sessions). */
export function allUsers() {
  return users;
}

/** Look a user up by ID (sessions store the ID, not the whole user). */
export function findUser(id) {
  return users.find((u) => u.id === id) ?? null;
}

/** The user for a username and password, or null. Always does exactly one bcrypt comparison. */
export async function verifyPassword(username, password) {
  const name = String(username).trim().toLowerCase().slice(0, 100);
  const user = users.find((u) => u.username === name) ?? null;
  const ok = await bcrypt.compare(String(password).slice(0, 200), user ? user.passwordHash : DUMMY_HASH);
  return ok && user ? user : null;
}
