// `npm start`: run the demo on http://localhost:3000 (PORT and HOST change it).
// Sessions go to the embedded SQLite store (./.sesh/sessions.db, or $SESH_SQLITE_PATH).
import { createDemoApp } from './app.mjs';
import { loadSecret } from './config.mjs';

let secret;
try {
  secret = loadSecret();
} catch (err) {
  console.error(`[demo] ${err.message}`);
  process.exit(1);
}

const { app, sessions } = createDemoApp({ secret });
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);

const server = app.listen(port, host);
server.on('listening', () => {
  const { port: actual } = server.address();
  const shown = process.env.HOST ? (host.includes(':') ? `[${host}]` : host) : 'localhost';
  const where = sessions.sessions.store.path;
  console.log(`sesh demo running at http://${shown}:${actual}`);
  if (where) console.log(`[demo] sessions are kept in ${where} (SQLite); Ctrl+C to stop`);
});
server.on('error', (err) => {
  console.error(
    err.code === 'EADDRINUSE' ? `[demo] port ${port} is in use: run with PORT=3001 npm start` : `[demo] could not listen: ${err.message}`,
  );
  process.exit(1);
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  await sessions.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
