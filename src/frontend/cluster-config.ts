import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { NatsSettings } from '../bus/nats.js';
import { UsageError } from '../errors.js';

/** The command-line flags that say where the cluster's bus is. */
export interface ClusterFlags {
  cluster?: string;
  creds?: string;
  tlsCa?: string;
  config?: string;
}

/** What a config file may hold (JSON): the same as the flags. */
interface ConfigFile {
  cluster?: string;
  creds?: string;
  tlsCa?: string;
}

/** The config file: --config, else $FAY_CONFIG, else ~/.config/fay/config.json or /etc/fay/config.json if present. */
function readConfig(path: string | undefined): ConfigFile {
  const candidates = path !== undefined ? [path] : process.env.FAY_CONFIG ? [process.env.FAY_CONFIG] : [join(homedir(), '.config/fay/config.json'), '/etc/fay/config.json'];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    if (path !== undefined) throw new UsageError(`no config file ${path}`);
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(found, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read the config file ${found}: ${(error as Error).message}`, { hint: 'it is JSON, e.g. {"cluster": "nats://…", "creds": "/etc/fay/client.creds"}' });
  }
  if (typeof value !== 'object' || value === null) throw new UsageError(`the config file ${found} is not a JSON object`);
  const { cluster, creds, tlsCa } = value as Record<string, unknown>;
  for (const [key, v] of Object.entries({ cluster, creds, tlsCa })) {
    if (v !== undefined && typeof v !== 'string') throw new UsageError(`"${key}" in ${found} is not a string`);
  }
  return { cluster: cluster as string | undefined, creds: creds as string | undefined, tlsCa: tlsCa as string | undefined };
}

/** Where the cluster's bus is, from the flags or the config file; undefined: run embedded, on this machine. */
export function clusterSettings(flags: ClusterFlags, name: string): NatsSettings | undefined {
  const config = readConfig(flags.config);
  const url = flags.cluster ?? config.cluster;
  if (url === undefined) return undefined;
  const creds = flags.creds ?? config.creds;
  const tlsCa = flags.tlsCa ?? config.tlsCa;
  return { url, name, ...(creds !== undefined && { credsFile: creds }), ...(tlsCa !== undefined && { tlsCaFile: tlsCa }) };
}

/** Adds the cluster flags to a command. */
export function clusterFlags(command: Command, what = 'run it across the cluster whose NATS server is at <url> (user:password@ in the URL, or --creds)'): Command {
  return command
    .option('--cluster <url>', what)
    .option('--creds <file>', 'NATS credentials: user:password on one line, an nkey seed, or a .creds file')
    .option('--tls-ca <file>', 'CA certificate for a TLS connection to NATS')
    .option('--config <file>', 'a JSON config file with "cluster", "creds", "tlsCa" (default ~/.config/fay/config.json, /etc/fay/config.json)');
}
