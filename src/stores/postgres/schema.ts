import { createHash } from 'node:crypto';
import { OptionsError } from '../../errors.js';

/** The schema version this release of the store reads and writes. */
export const SCHEMA_VERSION = 2;

/** Where the store keeps its rows: a schema and a table name (both plain SQL identifiers). */
export interface PostgresTableOptions {
  /** Schema (namespace) of the table. Default `public`. */
  schema?: string;
  /** Table name. Default `sesh_sessions`. Its companion tables and indexes are named after it. */
  table?: string;
}

/** Every SQL name the store uses, already quoted. */
export interface SqlNames {
  schema: string;
  table: string;
  /** Quoted `schema`. */
  qSchema: string;
  /** Quoted, schema-qualified session table. */
  qTable: string;
  /** Quoted, schema-qualified table of applied migrations. */
  qVersions: string;
  /** Unquoted, schema-qualified name of the versions table, for `to_regclass`. */
  versionsRegclass: string;
  qExpiresIndex: string;
  qUserIndex: string;
  /** Key of the transaction-level advisory lock taken while migrating (a signed 64-bit integer, as text). */
  lockId: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function quote(ident: string): string {
  return `"${ident.replace(/"/g, '""')}"`;
}

function checkIdent(option: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || !IDENT.test(value) || value.length > max) {
    throw new OptionsError(
      `PostgresStore \`${option}\` must be a plain SQL identifier (letters, digits and _, not starting with a digit, at most ${max} characters); got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** Validate the table options and build every name, quoted (identifiers are never interpolated unchecked). */
export function sqlNames(options: PostgresTableOptions = {}): SqlNames {
  const schema = checkIdent('schema', options.schema ?? 'public', 63);
  // The longest derived name is `<table>_expires_at_idx`: 15 more characters, within PostgreSQL's 63.
  const table = checkIdent('table', options.table ?? 'sesh_sessions', 48);
  const lock = createHash('sha256').update(`sesh:postgres:${schema}.${table}`).digest();
  return {
    schema,
    table,
    qSchema: quote(schema),
    qTable: `${quote(schema)}.${quote(table)}`,
    qVersions: `${quote(schema)}.${quote(`${table}_migrations`)}`,
    versionsRegclass: `${quote(schema)}.${quote(`${table}_migrations`)}`,
    qExpiresIndex: quote(`${table}_expires_at_idx`),
    qUserIndex: quote(`${table}_user_id_idx`),
    lockId: lock.readBigInt64BE(0).toString(),
  };
}

/** One forward migration: idempotent statements, so re-running a script never hurts. */
export interface Migration {
  version: number;
  description: string;
  statements(n: SqlNames): string[];
}

/**
 * The forward migrations, oldest first. Never edit a released one: add a new version instead.
 * Times are bigint milliseconds since the epoch, compared with the store's (injectable) clock.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'session table, expiry index',
    statements: (n) => [
      `CREATE TABLE IF NOT EXISTS ${n.qTable} (
  key text PRIMARY KEY,
  data jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at bigint NOT NULL,
  last_seen bigint NOT NULL,
  expires_at bigint NOT NULL
)`,
      `CREATE INDEX IF NOT EXISTS ${n.qExpiresIndex} ON ${n.qTable} (expires_at)`,
    ],
  },
  {
    version: 2,
    description: 'library metadata kept apart from data, per-user index',
    statements: (n) => [
      `ALTER TABLE ${n.qTable} ADD COLUMN IF NOT EXISTS meta jsonb NOT NULL DEFAULT '{}'::jsonb`,
      `ALTER TABLE ${n.qTable} ADD COLUMN IF NOT EXISTS user_id text`,
      `CREATE INDEX IF NOT EXISTS ${n.qUserIndex} ON ${n.qTable} (user_id) WHERE user_id IS NOT NULL`,
    ],
  },
];

/** Statement creating the versions table (one row per applied migration). */
export function versionsTableSql(n: SqlNames): string {
  return `CREATE TABLE IF NOT EXISTS ${n.qVersions} (
  version integer PRIMARY KEY,
  description text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;
}

/** Statement recording one applied migration. */
export function recordVersionSql(n: SqlNames, m: Migration): string {
  return `INSERT INTO ${n.qVersions} (version, description) VALUES (${m.version}, '${m.description.replace(/'/g, "''")}') ON CONFLICT (version) DO NOTHING`;
}

/**
 * The whole schema as one SQL script, for teams that run migrations themselves
 * (`createSchema: false`). It is idempotent and runs in one transaction under the same advisory
 * lock the store takes, so it is safe to run again or alongside starting app instances.
 */
export function schemaSql(options: PostgresTableOptions = {}): string {
  const n = sqlNames(options);
  const lines: string[] = [
    `-- sesh PostgreSQL session store, schema version ${SCHEMA_VERSION} (${n.schema}.${n.table})`,
    'BEGIN;',
    `SELECT pg_advisory_xact_lock(${n.lockId});`,
  ];
  if (n.schema !== 'public') lines.push(`CREATE SCHEMA IF NOT EXISTS ${n.qSchema};`);
  lines.push(`${versionsTableSql(n)};`);
  for (const m of MIGRATIONS) {
    lines.push('', `-- version ${m.version}: ${m.description}`);
    for (const s of m.statements(n)) lines.push(`${s};`);
    lines.push(`${recordVersionSql(n, m)};`);
  }
  lines.push('COMMIT;', '');
  return lines.join('\n');
}
