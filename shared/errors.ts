/**
 * One error type for every bad input the tool can meet. Its message always names the file (or option) and the
 * problem, so the stage CLIs can print it as a single line and exit non-zero.
 * @module
 */

/** A user-facing error: bad input file, bad option, bad config. Printed as one line by {@linkcode runMain}. */
export class LtcError extends Error {
  /** @param message what went wrong, already naming the file or option */
  constructor(message: string) {
    super(message);
    this.name = "LtcError";
  }
}

/** Throw an {@linkcode LtcError} naming `path` unless `cond` holds. */
export function check(cond: unknown, path: string, problem: string): asserts cond {
  if (!cond) throw new LtcError(`${path}: ${problem}`);
}

/**
 * Run a stage's main function: a known {@linkcode LtcError} prints as `error: <message>` and exits 2; anything else
 * is a bug and keeps its stack trace.
 */
export async function runMain(main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof LtcError) {
      console.error(`error: ${err.message}`);
      Deno.exit(2);
    }
    throw err;
  }
}

/** Read a whole file, turning "not found" and friends into one clear {@linkcode LtcError}. */
export function readFileChecked(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new LtcError(`${path}: no such file`);
    if (err instanceof Deno.errors.IsADirectory) throw new LtcError(`${path}: is a directory, expected a file`);
    if (err instanceof Deno.errors.PermissionDenied) throw new LtcError(`${path}: permission denied`);
    throw new LtcError(`${path}: cannot read (${(err as Error).message})`);
  }
}

/** Read a text file with the same clear errors as {@linkcode readFileChecked}. */
export function readTextChecked(path: string): string {
  return new TextDecoder().decode(readFileChecked(path));
}
