import assert from "node:assert/strict";
import { Progress } from "../shared/progress.ts";

Deno.test("progress: in a log (no terminal) one plain line per interval and a closing line, none for quick work", () => {
  const lines: string[] = [];
  const original = console.error;
  console.error = (msg: string) => void lines.push(msg);
  try {
    const quick = new Progress("quick", 10, { tty: false });
    for (let i = 0; i < 10; i++) quick.tick();
    quick.done();
    assert.equal(lines.length, 0, "work shorter than the interval prints nothing");
    const slow = new Progress("slow", 4, { tty: false, logEveryMs: 20 });
    for (let i = 0; i < 4; i++) {
      const until = performance.now() + 25;
      while (performance.now() < until) { /* wait past the interval */ }
      slow.tick(1, `step ${i + 1}`);
    }
    slow.done();
  } finally {
    console.error = original;
  }
  assert.ok(lines.length >= 4, lines.join("\n"));
  assert.match(lines[0]!, /^slow: 1\/4 \(25\.0 %\) [\d.]+s eta [\d.]+s step 1$/);
  assert.match(lines[lines.length - 1]!, /^slow: 4\/4 \(100\.0 %\)/);
  assert.ok(lines.every((l) => !l.includes("\r")), "no carriage returns in a log");
});
