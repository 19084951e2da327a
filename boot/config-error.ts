// The configuration's error class, apart from the parser so that the checks
// split out of it (ranges, host, files) can throw it without an import cycle.
import { YamlError } from '../lib/yaml.ts';
import type { YamlErrorFactory } from '../lib/yaml.ts';

export class ConfigError extends YamlError {
  override name = 'ConfigError';
}

/** Reader failures (unreadable file, invalid YAML) as ConfigError. */
export const configError: YamlErrorFactory = (detail, where) => new ConfigError(detail, where);
