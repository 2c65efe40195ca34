import { createRequire } from 'node:module';
import { SeshError } from '../../errors.js';

/**
 * The part of a prepared statement sesh uses. Both `better-sqlite3` statements and `node:sqlite`
 * `StatementSync` objects have this shape.
 */
export interface SqliteStatement {
  /** Run a write; `changes` is the number of rows it changed. */
  run(...params: unknown[]): { changes: number | bigint };
  /** The first row, or `undefined`. */
  get(...params: unknown[]): unknown;
  /** Every row. */
  all(...params: unknown[]): unknown[];
}

/**
 * The part of a database handle sesh uses: a `better-sqlite3` `Database` or a `node:sqlite`
 * `DatabaseSync` both fit, so an app can pass the handle it already has.
 */
export interface SqliteDatabase {
  /** Compile a statement. */
  prepare(sql: string): SqliteStatement;
  /** Run one or more statements without results. */
  exec(sql: string): unknown;
  /** Close the handle. */
  close(): unknown;
}

/** Which library opens the database file. */
export type SqliteDriverName = 'better-sqlite3' | 'node:sqlite';

/** Opens a database file (or `:memory:`) and returns the handle. */
type Opener = (path: string) => SqliteDatabase;

/** The install command printed when no driver is available. */
export const INSTALL_HINT =
  'Install the driver with `npm install better-sqlite3@12` (12.x supports Node 20 and later; 13.x requires Node 22)';

function requireFn(): NodeRequire {
  // Resolve better-sqlite3 from where sesh is installed, like a normal import would. tsup rewrites
  // `import.meta.url` to this file's URL in the CJS build, so both builds take the same path.
  return createRequire(import.meta.url);
}

function isModuleNotFound(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return (
    !!e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND') && typeof e.message === 'string' && e.message.includes(name)
  );
}

/** better-sqlite3 13.x is built for Node 22+ and crashes the process on older Node: refuse it first. */
function checkVersion(req: NodeRequire): void {
  let version: unknown;
  try {
    version = (req('better-sqlite3/package.json') as { version?: unknown }).version;
  } catch {
    return; // no readable package.json: let the require below decide
  }
  const major = typeof version === 'string' ? Number.parseInt(version, 10) : Number.NaN;
  const nodeMajor = Number.parseInt(process.versions.node, 10);
  if (major >= 13 && nodeMajor < 22) {
    throw new SeshError(
      'DRIVER_MISSING',
      `better-sqlite3 ${String(version)} is installed, but 13.x requires Node 22 and this is Node ${process.versions.node}. Install the 12.x line: \`npm install better-sqlite3@12\`.`,
    );
  }
}

function loadBetterSqlite3(): Opener | null {
  let mod: unknown;
  const req = requireFn();
  try {
    req.resolve('better-sqlite3');
  } catch (err) {
    if (isModuleNotFound(err, 'better-sqlite3')) return null;
  }
  checkVersion(req);
  try {
    mod = req('better-sqlite3');
  } catch (err) {
    if (isModuleNotFound(err, 'better-sqlite3')) return null;
    // Installed but unusable: usually a native build for another Node version (or 13.x on Node 20).
    throw new SeshError(
      'DRIVER_MISSING',
      `better-sqlite3 is installed but could not be loaded (${(err as Error)?.message ?? String(err)}). Reinstall it for this Node version: \`npm install better-sqlite3@12\` (13.x requires Node 22), then \`npm rebuild better-sqlite3\` if the error persists.`,
      { cause: err },
    );
  }
  const Database = ((mod as { default?: unknown }).default ?? mod) as new (path: string) => SqliteDatabase;
  return (path) => new Database(path);
}

function loadNodeSqlite(): Opener | null {
  // node:sqlite exists from Node 22.5 (behind a flag before 22.13); never on Node 20.
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (typeof get !== 'function') return null;
  let mod: { DatabaseSync?: new (path: string) => SqliteDatabase } | undefined;
  try {
    mod = get('node:sqlite') as typeof mod;
  } catch {
    return null;
  }
  const DatabaseSync = mod?.DatabaseSync;
  if (typeof DatabaseSync !== 'function') return null;
  return (path) => new DatabaseSync(path);
}

/**
 * Find a driver: `better-sqlite3` first, then `node:sqlite` where the runtime has it (only when
 * `driver` is `'auto'`). Throws `DRIVER_MISSING` with the install command when none is available.
 */
export function loadDriver(driver: SqliteDriverName | 'auto'): { name: SqliteDriverName; open: Opener } {
  if (driver !== 'node:sqlite') {
    const open = loadBetterSqlite3();
    if (open) return { name: 'better-sqlite3', open };
    if (driver === 'better-sqlite3') {
      throw new SeshError('DRIVER_MISSING', `The SQLite store needs better-sqlite3, which is not installed. ${INSTALL_HINT}.`);
    }
  }
  const open = loadNodeSqlite();
  if (open) return { name: 'node:sqlite', open };
  if (driver === 'node:sqlite') {
    throw new SeshError(
      'DRIVER_MISSING',
      `node:sqlite is not available in Node ${process.versions.node} (it needs Node 22.5 or later). Use driver 'better-sqlite3' instead: ${INSTALL_HINT}.`,
    );
  }
  throw new SeshError(
    'DRIVER_MISSING',
    `The SQLite session store needs better-sqlite3, which is not installed. ${INSTALL_HINT}. Or pass another store, e.g. \`store: new MemoryStore()\` from 'sesh/stores/memory'.`,
  );
}
