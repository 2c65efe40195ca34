/**
 * RedisStore conformance: the shared store suite (`runStoreSuite`) against real servers, on
 * standalone Redis with ioredis and with node-redis, and on a 3-master Cluster with both clients.
 * Every test gets its own key prefix, so each starts from an empty store.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis as IORedis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RedisStore } from '../src/stores/redis/index.js';
import { runStoreSuite } from '../src/testing/index.js';
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from './support/redis.js';

type NodeClient = ReturnType<typeof createClient>;
type NodeCluster = ReturnType<typeof createCluster>;

let server: RedisServer | undefined;
let cluster: RedisCluster | undefined;
let io: IORedis | undefined;
let nodeRedis: NodeClient | undefined;
const resp3Client = (url: string) => createClient({ url, RESP: 3 });
let nodeRedis3: ReturnType<typeof resp3Client> | undefined;
let ioCluster: Cluster | undefined;
let nodeCluster: NodeCluster | undefined;
/** Client errors are expected only in outage tests; here they fail the run at the end. */
const clientErrors: unknown[] = [];

beforeAll(async () => {
  [server, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  io = new IORedis({ host: server.host, port: server.port, maxRetriesPerRequest: 1 });
  io.on('error', (e) => clientErrors.push(e));
  nodeRedis = createClient({ url: server.url });
  nodeRedis.on('error', (e) => clientErrors.push(e));
  // RESP3 answers HGETALL with a map, not a flat array: the store must read both.
  nodeRedis3 = resp3Client(server.url);
  nodeRedis3.on('error', (e) => clientErrors.push(e));
  ioCluster = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  ioCluster.on('error', (e) => clientErrors.push(e));
  nodeCluster = createCluster({ rootNodes: cluster.startupNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })) });
  nodeCluster.on('error', (e) => clientErrors.push(e));
  await Promise.all([
    nodeRedis.connect(),
    nodeRedis3.connect(),
    nodeCluster.connect(),
    new Promise<void>((resolve, reject) => {
      ioCluster?.once('ready', () => resolve());
      ioCluster?.once('error', reject);
    }),
    io.ping(),
  ]);
});

afterAll(async () => {
  await Promise.allSettled([io?.quit(), ioCluster?.quit(), nodeRedis?.quit(), nodeRedis3?.quit(), nodeCluster?.quit()]);
  await Promise.allSettled([server?.dispose(), cluster?.dispose()]);
  if (clientErrors.length > 0) throw new Error(`unexpected client errors: ${clientErrors.map(String).join('; ')}`);
});

const prefix = () => `t${randomBytes(6).toString('hex')}:`;

function need<T>(v: T | undefined): T {
  if (v === undefined) throw new Error('the Redis servers did not start (see beforeAll)');
  return v;
}

const variants = [
  { name: 'standalone, ioredis', client: () => need(io) },
  { name: 'standalone, node-redis', client: () => need(nodeRedis) },
  { name: 'standalone, node-redis RESP3', client: () => need(nodeRedis3) },
  { name: 'Cluster, ioredis', client: () => need(ioCluster) },
  { name: 'Cluster, node-redis', client: () => need(nodeCluster) },
] as const;

for (const v of variants) {
  runStoreSuite(({ clock }) => new RedisStore({ client: v.client(), prefix: prefix(), clock }), {
    name: `RedisStore conformance (${v.name})`,
    require: ['userIndex', 'close'],
    describe,
    it,
  });
}
