/** A session layer under test (see contenders.mjs). */
export interface Layer {
  middleware?: (req: unknown, res: unknown, next: (err?: unknown) => void) => void;
  save?: (req: unknown) => Promise<void> | void;
  close?: () => Promise<unknown>;
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
