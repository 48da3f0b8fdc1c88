/**
 * Helpers shared by the tests: where the original's fixtures live, temp folders, and running a stage as a
 * subprocess the way a user would.
 * @module
 */
import { existsSync } from "node:fs";

/** The read-only reference material beside the repo (outputs of the ORIGINAL code). */
export const SHARED = "../shared";
/** The ref_synth fixture folder. */
export const REF = `${SHARED}/fixtures/ref_synth`;
/** True when ../shared is present; tests that need it are ignored (with a note) otherwise. */
export const HAS_SHARED = existsSync(`${REF}/expected.json`);
if (!HAS_SHARED && Deno.env.get("LTC_REQUIRE_SHARED") === "1") {
  // CI has ../shared beside the clone: a skipped differential test there is a failure, not a pass
  throw new Error(`${SHARED} is absent but LTC_REQUIRE_SHARED=1: the differential tests must run here`);
}
if (!HAS_SHARED) console.error(`note: ${SHARED} is absent; differential tests against the original are skipped`);

/** The original's expected metrics (expected.json). */
export function expected(): Record<string, Record<string, unknown>> {
  return JSON.parse(Deno.readTextFileSync(`${REF}/expected.json`));
}

/** A fresh temp folder. */
export function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "ltc-test-" });
}

/** Result of running a stage. */
export interface StageRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `stages/<file>` with arguments in a subprocess (as `deno task <stage>` does). */
export async function runStage(file: string, args: string[]): Promise<StageRun> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `stages/${file}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const out = await cmd.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Assert that `fn` throws an error whose message contains every one of `parts`. */
export function throwsWith(fn: () => unknown, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) throw new Error(`expected an error mentioning ${parts.join(", ")}, got none`);
  for (const p of parts) {
    if (!err.message.includes(p)) throw new Error(`error "${err.message}" does not mention "${p}"`);
  }
}
