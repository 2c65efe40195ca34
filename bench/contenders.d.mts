/** A session layer under test (see contenders.mjs). */
export interface Layer {
  middleware?: (req: unknown, res: unknown, next: (err?: unknown) => void) => void;
  save?: (req: unknown) => Promise<void> | void;
  close?: () => Promise<unknown>;
  /** Installs the layer on the app itself (request accessor, response hooks) instead of a middleware. */
  install?: (app: unknown) => Promise<void>;
}
/** What the harness hands each factory. */
export interface ContenderEnv {
  redisUrl?: string;
  pg?: object;
  tmp: string;
}
export declare const SECRET: string;
export declare const contenders: Record<string, (env: ContenderEnv) => Promise<Layer>>;
export declare const needs: { redis: string[]; postgres: string[] };
export declare const FLOOR_PREFIX: string;
