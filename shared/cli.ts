/**
 * Command-line parsing for every stage, on `node:util` parseArgs: kebab-case options, the original's underscore
 * spellings accepted as aliases (`--th_knn` = `--th-knn`), typed values with clear errors, `--help`, and unknown
 * options rejected.
 * @module
 */
import { parseArgs } from "node:util";
import { LtcError } from "./errors.ts";

/** One option of a stage. */
export interface OptionSpec {
  type: "string" | "boolean" | "number" | "int";
  /** shown in `--help` */
  help: string;
  default?: string | number | boolean;
  /** may be given several times (collected into a list) */
  multiple?: boolean;
  required?: boolean;
  /** allowed values of a string option */
  choices?: readonly string[];
  /** one-letter short form */
  short?: string;
}

/** A stage's command line. */
export interface CliSpec {
  /** the deno task name, e.g. `knn` */
  name: string;
  /** one paragraph shown at the top of `--help` */
  summary: string;
  options: Record<string, OptionSpec>;
}

/** Parsed values with typed accessors; every accessor names the option in its error. */
export class CliArgs {
  constructor(readonly spec: CliSpec, readonly values: Record<string, unknown>, readonly positionals: string[]) {}
  /** Whether the option was given on the command line (not just defaulted). */
  given(name: string): boolean {
    return this.values[name] !== undefined;
  }
  #get(name: string): unknown {
    const spec = this.spec.options[name];
    if (!spec) throw new Error(`option --${name} is not declared by ${this.spec.name}`);
    const v = this.values[name];
    if (v === undefined && spec.required) throw new LtcError(`${this.spec.name}: --${name} is required (see --help)`);
    return v ?? spec.default;
  }
  /** A string option (undefined when absent and without default). */
  str(name: string): string | undefined {
    const v = this.#get(name);
    return v === undefined ? undefined : String(v);
  }
  /** A string option that must be present. */
  reqStr(name: string): string {
    const v = this.str(name);
    if (v === undefined) throw new LtcError(`${this.spec.name}: --${name} is required (see --help)`);
    return v;
  }
  /** All values of a `multiple` option. */
  strs(name: string): string[] {
    const v = this.#get(name);
    if (v === undefined) return [];
    return Array.isArray(v) ? v.map(String) : [String(v)];
  }
  /** A boolean flag. */
  bool(name: string): boolean {
    return Boolean(this.#get(name));
  }
  /** A number option (`int` options are checked to be integers). */
  num(name: string): number {
    const v = this.#get(name);
    if (v === undefined) throw new LtcError(`${this.spec.name}: --${name} is required (see --help)`);
    return v as number;
  }
  /** A number option that may be absent. */
  optNum(name: string): number | undefined {
    const v = this.#get(name);
    return v === undefined ? undefined : v as number;
  }
}

/** Format `--help` text for a spec. */
export function helpText(spec: CliSpec): string {
  const lines = [`usage: deno task ${spec.name} [options]`, "", spec.summary, "", "options:"];
  for (const [name, o] of Object.entries(spec.options)) {
    const arg = o.type === "boolean" ? "" : ` <${o.choices ? o.choices.join("|") : o.type}>`;
    const def = o.default !== undefined ? ` (default ${o.default})` : o.required ? " (required)" : "";
    const alias = name.includes("-") ? `, --${name.replaceAll("-", "_")}` : "";
    lines.push(`  --${name}${arg}${alias}${o.multiple ? " (repeatable)" : ""}`);
    lines.push(`      ${o.help}${def}`);
  }
  lines.push("  --help", "      print this help");
  return lines.join("\n");
}

/**
 * Parse `args` against `spec`. Prints help and exits on `--help`; throws an {@linkcode LtcError} for an unknown
 * option, a missing value, a value of the wrong type, or a value outside `choices`.
 */
export function parseCli(spec: CliSpec, args: string[]): CliArgs {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean" },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    const type = o.type === "boolean" ? "boolean" : "string";
    const entry: { type: "string" | "boolean"; multiple?: boolean; short?: string } = { type };
    if (o.multiple) entry.multiple = true;
    if (o.short) entry.short = o.short;
    options[name] = entry;
    const alias = name.replaceAll("-", "_");
    if (alias !== name) options[alias] = o.multiple ? { type, multiple: true } : { type };
  }
  // parseArgs reads "-1" after an option as another option: join negative numbers to their option (--th-pos=-1).
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!, next = args[i + 1];
    const opt = /^--([^=]+)$/.exec(a)?.[1];
    if (opt && options[opt]?.type === "string" && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: joined, options, strict: true, allowPositionals: false });
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0]!.replace(/\. To specify a positional.*$/, "");
    throw new LtcError(`${spec.name}: ${msg} (see --help)`);
  }
  if (parsed.values.help) {
    console.log(helpText(spec));
    Deno.exit(0);
  }
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const alias = name.replaceAll("-", "_");
    let raw = (parsed.values as Record<string, unknown>)[name];
    const aliasRaw = alias !== name ? (parsed.values as Record<string, unknown>)[alias] : undefined;
    if (aliasRaw !== undefined) {
      raw = raw === undefined ? aliasRaw : o.multiple ? [...(raw as string[]), ...(aliasRaw as string[])] : aliasRaw;
    }
    if (raw === undefined) continue;
    const convert = (s: unknown): unknown => {
      if (o.type === "boolean") return s;
      const text = String(s);
      if (o.type === "number" || o.type === "int") {
        const v = Number(text);
        if (text.trim() === "" || !Number.isFinite(v)) {
          throw new LtcError(`${spec.name}: --${name} expects a number, got '${text}'`);
        }
        if (o.type === "int" && !Number.isInteger(v)) {
          throw new LtcError(`${spec.name}: --${name} expects an integer, got '${text}'`);
        }
        return v;
      }
      if (o.choices && !o.choices.includes(text)) {
        throw new LtcError(`${spec.name}: --${name} must be one of ${o.choices.join(", ")}, got '${text}'`);
      }
      return text;
    };
    values[name] = Array.isArray(raw) ? raw.map(convert) : convert(raw);
  }
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.required && values[name] === undefined) {
      throw new LtcError(`${spec.name}: --${name} is required (see --help)`);
    }
  }
  return new CliArgs(spec, values, parsed.positionals);
}
