/**
 * YAML configs (npm:yaml) with strict keys: a misspelt key is an error naming the file and the key, never a silently
 * ignored setting.
 * @module
 */
import { LtcError, readTextChecked } from "./errors.ts";
import { parse } from "yaml";

/** A parsed YAML mapping. */
export type ConfigObject = Record<string, unknown>;

/** Read a YAML file whose top level must be a mapping. */
export function loadYaml(path: string): ConfigObject {
  const text = readTextChecked(path);
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new LtcError(`${path}: invalid YAML (${(err as Error).message.split("\n")[0]})`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new LtcError(`${path}: top level must be a mapping`);
  return value as ConfigObject;
}

/** Throw for any key of `obj` not in `allowed`; `where` names the file and section in the message. */
export function checkKeys(obj: ConfigObject, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new LtcError(`${where}: unknown config key '${key}' (allowed: ${allowed.join(", ")})`);
    }
  }
}

/** Typed getters for config values, each naming file and key in its error. */
export function cfgNumber(obj: ConfigObject, key: string, where: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new LtcError(`${where}: '${key}' must be a number`);
  return v;
}

/** A string value (or the fallback). */
export function cfgString(obj: ConfigObject, key: string, where: string, fallback?: string): string {
  const v = obj[key] ?? fallback;
  if (typeof v !== "string") throw new LtcError(`${where}: '${key}' must be a string`);
  return v;
}

/** A boolean value (or the fallback). */
export function cfgBool(obj: ConfigObject, key: string, where: string, fallback?: boolean): boolean {
  const v = obj[key] ?? fallback;
  if (typeof v !== "boolean") throw new LtcError(`${where}: '${key}' must be true or false`);
  return v;
}

/** A nested mapping (or an empty one when absent). */
export function cfgObject(obj: ConfigObject, key: string, where: string): ConfigObject {
  const v = obj[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new LtcError(`${where}: '${key}' must be a mapping`);
  return v as ConfigObject;
}
