/**
 * Bounded fuzz test of the file readers (issue #12): 2,000 seeded mutations of the format fixtures — byte flips,
 * truncations, insertions, deletions, interesting integers, copied spans and format-aware field edits (npy header
 * dict, zip record sizes and offsets, pickle opcodes), applied to `.npy` files, `.npz` archives and their members
 * (re-packed with a valid CRC so the member parser is reached), a kNN file as we write it, the original's GCN-D
 * checkpoints (zip and legacy containers) and their object pickles. Every mutant must either read or fail with an
 * `LtcError` naming the file — never another exception — and every case must finish within a time bound (cases run
 * in workers, so a hang is caught and reported instead of stalling the suite).
 *
 * A failure prints `seed`, case index, target and the mutations; `runFuzzCase(loadFuzzTargets(...), {seed, index})`
 * from `tests/_fuzz_cases.ts` replays it. `LTC_FUZZ_SEED` / `LTC_FUZZ_CASES` change the seed and the count.
 * @module
 */
import assert from "node:assert/strict";
import { HAS_SHARED, SHARED } from "./_helpers.ts";
import type { FuzzOutcome } from "./_fuzz_cases.ts";
import type { FuzzJob } from "./_fuzz_worker.ts";

const SEED = Number(Deno.env.get("LTC_FUZZ_SEED") ?? 12);
const CASES = Number(Deno.env.get("LTC_FUZZ_CASES") ?? 2000);
/** A case that takes longer than this is a hang (the slowest legitimate case takes a few milliseconds). */
const CASE_LIMIT_MS = 10_000;
const WORKERS = 2;

type WorkerMsg = { kind: "start"; index: number } | { kind: "done"; outcome: FuzzOutcome } | {
  kind: "end";
  targets: string[];
};

/** Run cases [from, to) in one worker at a time; a case over the time limit is recorded and the rest continue. */
async function runRange(
  range: { from: number; to: number; tmpDir: string },
  targetNames: Set<string>,
): Promise<FuzzOutcome[]> {
  const { from, to, tmpDir } = range;
  const outcomes: FuzzOutcome[] = [];
  const failed = (index: number, error: string) =>
    outcomes.push({ index, target: "?", mutation: "?", result: "bug", error });
  let next = from;
  while (next < to) {
    const worker = new Worker(new URL("./_fuzz_worker.ts", import.meta.url).href, { type: "module" });
    let current = -1, lastHeard = performance.now();
    const finished = await new Promise<"end" | "hang" | "crash">((resolve) => {
      const stop = (how: "end" | "hang" | "crash") => {
        clearInterval(watchdog);
        resolve(how);
      };
      // silence longer than the limit — in a case, or while the worker loads the fixtures — is a hang
      const watchdog = setInterval(() => {
        if (performance.now() - lastHeard > CASE_LIMIT_MS) stop("hang");
      }, 250);
      worker.onmessage = (ev: MessageEvent<WorkerMsg>) => {
        const m = ev.data;
        lastHeard = performance.now();
        if (m.kind === "start") current = m.index;
        else if (m.kind === "done") outcomes.push(m.outcome), next = m.outcome.index + 1;
        else {
          m.targets.forEach((t) => targetNames.add(t));
          stop("end");
        }
      };
      worker.onerror = (ev) => {
        ev.preventDefault();
        failed(current, `worker died: ${ev.message}`);
        stop("crash");
      };
      const job: FuzzJob = {
        seed: SEED,
        from: next,
        to,
        tmpDir,
        npyDir: new URL("../fixtures/npy", import.meta.url).pathname,
        gcnDir: HAS_SHARED ? `${SHARED}/fixtures/gcn_d` : undefined,
      };
      worker.postMessage(job);
    });
    worker.terminate();
    if (finished === "end") break;
    if (finished === "hang") failed(current, `no result after ${CASE_LIMIT_MS} ms`);
    // a worker that fails before its first case would fail again: stop; otherwise go on past the bad case
    if (current < next) break;
    next = current + 1;
  }
  return outcomes;
}

Deno.test(`fuzz: ${CASES} seeded mutations of npy / npz / pickle / torch fixtures → read, or one LtcError naming the file`, async () => {
  if (!HAS_SHARED) console.error(`note: ${SHARED} is absent; the PyTorch checkpoint targets are left out`);
  const t0 = performance.now();
  const names = new Set<string>();
  const per = Math.ceil(CASES / WORKERS);
  const tmpDir = Deno.makeTempDirSync({ prefix: "ltc-fuzz-" });
  let parts: FuzzOutcome[][];
  try {
    parts = await Promise.all(
      Array.from(
        { length: WORKERS },
        (_, w) => runRange({ from: w * per, to: Math.min(CASES, (w + 1) * per), tmpDir }, names),
      ),
    );
  } finally {
    Deno.removeSync(tmpDir, { recursive: true });
  }
  const outcomes = parts.flat().sort((a, b) => a.index - b.index);
  const bugs = outcomes.filter((o) => o.result === "bug");
  const byTarget = new Map<string, { ok: number; ltc: number; bug: number }>();
  for (const o of outcomes) {
    const row = byTarget.get(o.target) ?? { ok: 0, ltc: 0, bug: 0 };
    row[o.result]++;
    byTarget.set(o.target, row);
  }
  const ok = outcomes.filter((o) => o.result === "ok").length;
  console.error(
    `fuzz: seed ${SEED}, ${outcomes.length} cases over ${names.size} targets in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s: ${ok} read fine, ${outcomes.length - ok - bugs.length} ` +
      `refused with LtcError, ${bugs.length} other`,
  );
  for (const b of bugs.slice(0, 25)) {
    console.error(`  seed ${SEED} case ${b.index} ${b.target} [${b.mutation}]: ${b.error}`);
  }
  assert.equal(outcomes.length, CASES, "every case ran once");
  // the mix reached every target, and mutations did find bad input (a fuzzer whose mutants all read fine tests nothing)
  if (CASES >= 1000) { for (const t of names) assert.ok(byTarget.has(t), `no case reached ${t}`); }
  assert.ok(outcomes.length - ok - bugs.length > CASES / 4, "most mutants should be refused");
  assert.equal(bugs.length, 0, `${bugs.length} mutants ended in something other than an LtcError (listed above)`);
});
