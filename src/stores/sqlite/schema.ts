import type { SqliteDatabase } from './driver.js';

/** Name of the table that records the schema version of each sessions table in the file. */
export const VERSION_TABLE = 'sesh_schema';

/**
 * Forward migrations, one per version, applied in order inside one `BEGIN IMMEDIATE` transaction.
 * Never edit a released step: add a new one. `t` is the (validated) sessions table name.
 */
export const MIGRATIONS: ReadonlyArray<(t: string) => string> = [
  // v1: the sessions table. `key` is the store key (a hash of the session ID), never the ID itself.
  (t) => `
    CREATE TABLE "${t}" (
      key        TEXT    PRIMARY KEY NOT NULL,
      data       TEXT    NOT NULL,
      meta       TEXT    NOT NULL,
      created_at INTEGER NOT NULL,
      last_seen  INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      user_id    TEXT
    );
    CREATE INDEX "${t}_expires_at" ON "${t}" (expires_at);`,
  // v2: the per-user index (listByUser / destroyByUser), only over sessions bound to a user.
  (t) => `CREATE INDEX "${t}_user_id" ON "${t}" (user_id, expires_at) WHERE user_id IS NOT NULL;`,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Outcome of {@link migrate}. */
export interface MigrationResult {
  /** Version found in the file before (0 for a new file). */
  from: number;
  /** Version after. */
  to: number;
}

/**
 * Bring the table to {@link SCHEMA_VERSION}. Runs in `BEGIN IMMEDIATE`, so two processes opening a
 * new file at once serialise on the write lock: the second one sees the version the first wrote.
 * Throws `NewerSchemaError` when the file was written by a newer schema.
 */
export function migrate(db: SqliteDatabase, table: string): MigrationResult {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (table_name TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)`);
    const row = db.prepare(`SELECT version FROM ${VERSION_TABLE} WHERE table_name = ?`).get(table) as
      | { version: number | bigint }
      | undefined;
    const from = row ? Number(row.version) : 0;
    if (from > SCHEMA_VERSION) throw new NewerSchemaError(from);
    for (let v = from; v < SCHEMA_VERSION; v++) db.exec((MIGRATIONS[v] as (t: string) => string)(table));
    // Always write (even when the version is current): a file the OS lets us open only read-only
    // fails here, at startup, instead of on the first request.
    db.prepare(
      `INSERT INTO ${VERSION_TABLE} (table_name, version) VALUES (?, ?) ON CONFLICT(table_name) DO UPDATE SET version = excluded.version`,
    ).run(table, SCHEMA_VERSION);
    db.exec('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (err) {
    try {
      db.exec('ROLLBACK');
    } catch {
      // No transaction left to roll back (BEGIN itself failed).
    }
    throw err;
  }
}

/** The file holds a schema version this code does not know. */
export class NewerSchemaError extends Error {
  constructor(readonly version: number) {
    super(`schema version ${version} is newer than ${SCHEMA_VERSION}`);
  }
}
