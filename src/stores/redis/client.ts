import { OptionsError } from '../../errors.js';

/**
 * The part of an ioredis `Redis` or `Cluster` the store uses (structural: ioredis is never imported).
 * `status` is `'ready'` when connected; `call` sends any command, routed by key on a Cluster.
 */
export interface IoRedisLike {
  status: string;
  call(command: string, args: (string | number)[]): Promise<unknown>;
}

/** The part of a node-redis (v4/v5) client from `createClient` the store uses. */
export interface NodeRedisClientLike {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(args: string[]): Promise<unknown>;
}

/** The part of a node-redis (v4/v5) cluster from `createCluster` the store uses. */
export interface NodeRedisClusterLike {
  readonly isOpen: boolean;
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
}

/** Any client the Redis store accepts: ioredis `Redis`/`Cluster`, node-redis client/cluster. */
export type RedisClientLike = IoRedisLike | NodeRedisClientLike | NodeRedisClusterLike;

/** The store's internal view of a client: one command routed by key, plus a readiness check. */
export interface Driver {
  /** Which library and mode was detected, for messages and docs. */
  readonly kind: 'ioredis' | 'ioredis-cluster' | 'node-redis' | 'node-redis-cluster';
  /** Why the client cannot serve a command right now (so the store fails at once), or undefined. */
  notReady(): string | undefined;
  /** Send `command` with `args`; `key` routes it on a Cluster. The driver does not keep `args`. */
  send(key: string, command: string, args: string[]): Promise<unknown>;
}

/** ioredis states in which a command would wait in the offline queue instead of being sent. */
const IOREDIS_DOWN = new Set(['reconnecting', 'close', 'end']);

/** Detect which client library `client` comes from and wrap it. */
export function driverFor(client: unknown): Driver {
  const c = client as Record<string, unknown> | null;
  if (c && typeof c === 'object') {
    if (typeof c.call === 'function' && typeof c.status === 'string') {
      const io = client as IoRedisLike;
      // ioredis' Cluster has `nodes()`; a plain Redis instance has none.
      const cluster = typeof c.nodes === 'function';
      // Once the client has been ready, any other state means the connection was lost: while it
      // reconnects ('connecting', 'connect' included) commands would only wait in its offline queue.
      // Before the first 'ready' (startup, lazyConnect) commands go through, bounded by the timeout.
      let wasReady = false;
      return {
        kind: cluster ? 'ioredis-cluster' : 'ioredis',
        notReady: () => {
          const status = io.status;
          if (status === 'ready') {
            wasReady = true;
            return undefined;
          }
          if (IOREDIS_DOWN.has(status) || (wasReady && status !== 'wait')) {
            return `the ioredis ${cluster ? 'cluster' : 'client'} is ${status}`;
          }
          return undefined;
        },
        send: (_key, command, args) => io.call(command, args),
      };
    }
    if (typeof c.sendCommand === 'function' && typeof c.isReady === 'boolean') {
      const nr = client as NodeRedisClientLike;
      return {
        kind: 'node-redis',
        notReady: () => {
          if (!nr.isOpen) return 'the node-redis client is not connected (call `await client.connect()` at startup)';
          if (!nr.isReady) return 'the node-redis client is reconnecting';
          return undefined;
        },
        send: (_key, command, args) => nr.sendCommand([command, ...args]),
      };
    }
    // A node-redis cluster has `isOpen` but no `isReady`, and routes `sendCommand` by its first key.
    if (typeof c.sendCommand === 'function' && typeof c.isOpen === 'boolean') {
      const nc = client as NodeRedisClusterLike;
      return {
        kind: 'node-redis-cluster',
        notReady: () => (nc.isOpen ? undefined : 'the node-redis cluster is not connected (call `await cluster.connect()` at startup)'),
        // Never read from replicas (`useReplicas`): a session read must see the write just made.
        send: (key, command, args) => nc.sendCommand(key, false, [command, ...args]),
      };
    }
  }
  throw new OptionsError(
    'RedisStore `client` must be an ioredis `Redis` or `Cluster` instance, or a node-redis client from `createClient()` / `createCluster()`.',
  );
}
