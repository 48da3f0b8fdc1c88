/**
 * Progress on stderr for long loops: a bar redrawn in place on a terminal; in a log (stderr not a terminal) one
 * plain line every ~10 s, so a long stage shows it is alive without flooding the log.
 * @module
 */

/** Milliseconds between progress lines in a log. */
const LOG_INTERVAL_MS = 10_000;

/** A progress counter: `tick(n)` as work completes, `done()` at the end. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #tty: boolean;
  #count = 0;
  #lastDraw = 0;
  #lastLine = 0;
  readonly #logEveryMs: number;
  readonly #start = performance.now();
  #extra = "";

  /**
   * @param label what is being counted; @param total how many units in all
   * @param options `tty`: draw a bar (default: whether stderr is a terminal); `logEveryMs`: seconds between plain
   * lines in a log, in ms (default 10,000)
   */
  constructor(label: string, total: number, options: { tty?: boolean; logEveryMs?: number } = {}) {
    this.#label = label;
    this.#total = total;
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
    this.#logEveryMs = options.logEveryMs ?? LOG_INTERVAL_MS;
  }

  /** Add `n` finished units (and an optional status such as the current loss). */
  tick(n = 1, extra?: string): void {
    this.#count += n;
    if (extra !== undefined) this.#extra = extra;
    const now = performance.now();
    if (!this.#tty) {
      if (now - Math.max(this.#start, this.#lastLine) >= this.#logEveryMs) {
        this.#lastLine = now;
        console.error(this.#status(now));
      }
      return;
    }
    if (now - this.#lastDraw < 100 && this.#count < this.#total) return;
    this.#lastDraw = now;
    this.#draw(now);
  }

  #fraction(): number {
    return this.#total > 0 ? Math.min(1, this.#count / this.#total) : 1;
  }

  /** `count/total (pct) elapsed eta extra` */
  #status(now: number): string {
    const frac = this.#fraction();
    const el = (now - this.#start) / 1000;
    const eta = frac > 0 ? el / frac - el : 0;
    return `${this.#label}: ${this.#count}/${this.#total} (${(frac * 100).toFixed(1)} %) ${el.toFixed(1)}s ` +
      `eta ${eta.toFixed(1)}s ${this.#extra}`.trimEnd();
  }

  #draw(now: number): void {
    const width = 30;
    const filled = Math.round(this.#fraction() * width);
    const el = (now - this.#start) / 1000;
    const frac = this.#fraction();
    const eta = frac > 0 ? el / frac - el : 0;
    const line = `\r${this.#label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ` +
      `${this.#count}/${this.#total} ${el.toFixed(1)}s eta ${eta.toFixed(1)}s ${this.#extra}`;
    Deno.stderr.writeSync(new TextEncoder().encode(line.padEnd(100)));
  }

  /** Finish the bar (a newline on a terminal; in a log, a closing line when lines were printed). */
  done(): void {
    if (!this.#tty) {
      if (this.#lastLine > 0) console.error(this.#status(performance.now()));
      return;
    }
    this.#draw(performance.now());
    Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

/** Log a line to stderr (stage chatter; stdout is kept for results). */
export function log(message: string): void {
  console.error(message);
}
