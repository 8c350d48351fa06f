/** Reads the config file: an explicit --config, else /etc/svtrace.toml when it exists. */
import { readFileSync, existsSync } from 'node:fs';
import { SvtraceError } from '../errors.ts';
import { parseConfigText, resolveConfig, type Overrides } from './resolve.ts';
import type { SvtraceConfig } from './schema.ts';

export const DEFAULT_CONFIG_PATH = '/etc/svtrace.toml';

export function loadConfig(path: string | undefined, overrides: Overrides = {}): SvtraceConfig {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (!file) return resolveConfig(null, overrides, 'flags');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SvtraceError('CONFIG_UNREADABLE', `cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`, { hint: 'check the path given to --config', cause: e });
  }
  return resolveConfig(parseConfigText(text, file), overrides, file);
}
