/**
 * Progress on stderr for long loops, drawn only when stderr is a terminal (so logs and CI stay clean).
 * @module
 */

/** A progress counter: `tick(n)` as work completes, `done()` at the end. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #tty: boolean;
  #count = 0;
  #lastDraw = 0;
  readonly #start = performance.now();
  #extra = "";

  /** @param label what is being counted; @param total how many units in all */
  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
    this.#tty = Deno.stderr.isTerminal();
  }

  /** Add `n` finished units (and an optional status such as the current loss). */
  tick(n = 1, extra?: string): void {
    this.#count += n;
    if (extra !== undefined) this.#extra = extra;
    if (!this.#tty) return;
    const now = performance.now();
    if (now - this.#lastDraw < 100 && this.#count < this.#total) return;
    this.#lastDraw = now;
    this.#draw(now);
  }

  #draw(now: number): void {
    const frac = this.#total > 0 ? Math.min(1, this.#count / this.#total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const el = (now - this.#start) / 1000;
    const eta = frac > 0 ? el / frac - el : 0;
    const line = `\r${this.#label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ` +
      `${this.#count}/${this.#total} ${el.toFixed(1)}s eta ${eta.toFixed(1)}s ${this.#extra}`;
    Deno.stderr.writeSync(new TextEncoder().encode(line.padEnd(100)));
  }

  /** Finish the bar (a newline on a terminal). */
  done(): void {
    if (!this.#tty) return;
    this.#draw(performance.now());
    Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

/** Log a line to stderr (stage chatter; stdout is kept for results). */
export function log(message: string): void {
  console.error(message);
}
