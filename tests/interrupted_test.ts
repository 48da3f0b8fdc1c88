/**
 * Interrupted writes (issue #12): nothing half-written is ever trusted. The features of a dataset change, and
 * `proposals --force` — which rebuilds the kNN file and then the proposal folder — is killed with SIGKILL at 20
 * seeded moments spread over its run time (measured first on a clean run). On what each kill leaves:
 * - the next stage, `detect`, must either refuse with exit 2 and one error line naming an artifact of the
 *   interrupted chain (the kNN file or the proposal folder), writing nothing, or give exactly the scores and labels of
 *   a run on the clean outputs — never scores computed from a stale or partial folder;
 * - rerunning `proposals --force` must rebuild exactly the clean outputs (kNN file, `pred_labels.txt`, every
 *   proposal file byte for byte), with a finished sidecar and no temp file or folder of the killed run left behind.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Rng } from "../shared/random.ts";
import { listTree } from "./_files.ts";
import {
  copyTree,
  oneErrorLine,
  runIn,
  type RunOptions,
  snapshot,
  snapshotChanges,
  spawnStage,
  writeDataset,
} from "./_bad_input.ts";

const SEED = 20;
const MOMENTS = 20;
const N = 1500, DIM = 32, K = 20;
const P = "data/cluster_proposals/t/faiss_k_20_th_0.5_step_0.05_minsz_3_maxsz_300_iter_0";
const KNN = "data/knns/t/faiss_k_20.npz";
const PROPOSALS = ["--prefix", "data", "--name", "t", "--dim", String(DIM), "--k", String(K), "--th-knn", "0.5"];
const REBUILD = [...PROPOSALS, "--backend", "cpu", "--force"];
const DETECT = [
  "--feat-path",
  "data/features/t.bin",
  "--dim",
  String(DIM),
  "--proposal-folders",
  `${P}/proposals`,
  "--random-init",
  "--work-dir",
  "work",
  "--backend",
  "cpu",
];

/** Every file under `dir`, relative path → bytes. */
function files(dir: string): Map<string, Uint8Array> {
  return new Map(listTree(dir).files.map((rel) => [rel, Deno.readFileSync(join(dir, rel))]));
}

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/** What a killed run left, in words (for the summary). */
function leftover(dir: string, ref: Map<string, Uint8Array>): string {
  const all = [...files(join(dir, "data")).keys()];
  const parts: string[] = [];
  if (all.some((f) => /\.(tmp|old)-\d+(\/|$)/.test(f))) parts.push("temp files");
  const knnNew = same(Deno.readFileSync(join(dir, KNN)), ref.get(KNN));
  parts.push(knnNew ? "kNN file rebuilt" : "old kNN file");
  const side = JSON.parse(Deno.readTextFileSync(join(dir, `${KNN}.meta.json`)));
  if (knnNew && side.inputs?.[0]?.sha256 !== undefined) {
    const refSide = JSON.parse(new TextDecoder().decode(ref.get(`${KNN}.meta.json`)!));
    if (side.inputs[0].sha256 !== refSide.inputs[0].sha256) parts.push("kNN sidecar still old");
  }
  try {
    const p = JSON.parse(Deno.readTextFileSync(join(dir, `${P}/pred_labels.txt.meta.json`)));
    if (p.in_progress) parts.push("proposal folder marked in progress");
    else if (same(Deno.readFileSync(join(dir, `${P}/pred_labels.txt`)), ref.get(`${P}/pred_labels.txt`))) {
      parts.push("proposal folder finished");
    }
  } catch {
    parts.push("no proposal sidecar");
  }
  return parts.join(", ");
}

Deno.test(`interrupted writes: proposals --force killed at ${MOMENTS} moments; detect refuses or matches, a rerun rebuilds`, async () => {
  const root = Deno.makeTempDirSync({ prefix: "ltc-interrupted-" });
  try {
    // The state before: outputs complete and consistent, built from the first features.
    const old = join(root, "old");
    writeDataset(old, { n: N, dim: DIM, seed: 7 });
    const first = await runIn("proposals", [...PROPOSALS, "--backend", "cpu"], { cwd: old });
    assert.equal(first.code, 0, first.stderr);
    // New features (same rows and labels): every artifact above them is now stale.
    const fresh = join(root, "fresh");
    writeDataset(fresh, { n: N, dim: DIM, seed: 8 });
    const newFeatures = Deno.readFileSync(join(fresh, "data/features/t.bin"));
    const prepare = (dir: string) => {
      copyTree(old, dir);
      Deno.writeFileSync(join(dir, "data/features/t.bin"), newFeatures);
    };

    // The clean run: its outputs are the reference, its wall time spreads the kill moments. The moments run two at a
    // time, so the time is measured the same way: two clean runs side by side, the slower one counts.
    const ref = join(root, "ref"), twin = join(root, "twin");
    prepare(ref);
    prepare(twin);
    const timed = async (dir: string) => {
      const t0 = performance.now();
      const r = await runIn("proposals", REBUILD, { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      return performance.now() - t0;
    };
    const runMs = Math.max(...await Promise.all([timed(ref), timed(twin)]));
    const refDetect = await runIn("detect", DETECT, { cwd: ref });
    assert.equal(refDetect.code, 0, refDetect.stderr);
    const refFiles = files(ref);

    const rng = new Rng(SEED);
    const moments = Array.from({ length: MOMENTS }, (_, i) => Math.round(runMs * (i + rng.next()) / MOMENTS));
    const outcomes: { at: number; killed: boolean; left: string; detect: string; wrong: string[] }[] = [];
    const runMoment = async (i: number) => {
      const dir = join(root, `m${i}`);
      prepare(dir);
      const opts: RunOptions = { cwd: dir };
      const child = spawnStage("proposals", REBUILD, { ...opts, output: "null" });
      let exited = false;
      const status = child.status.then((s) => (exited = true, s));
      await new Promise((r) => setTimeout(r, moments[i]));
      if (!exited) {
        // it may end between the check and the kill (its status not yet delivered): then it finished on its own
        try {
          child.kill("SIGKILL");
        } catch (e) {
          if (!(e instanceof TypeError && /already terminated/.test(e.message))) throw e;
        }
      }
      const st = await status;
      const killed = st.signal === "SIGKILL";
      const wrong: string[] = [];
      if (!killed && st.code !== 0) wrong.push(`the run to be killed failed on its own (exit ${st.code})`);
      const left = killed ? leftover(dir, refFiles) : "finished before the kill";

      // The next stage on what is left.
      const before = snapshot(dir);
      const det = await runIn("detect", DETECT, opts);
      let detect: string;
      if (det.code === 0) {
        detect = "ran, same result as the clean run";
        for (const f of ["work/random.npz", "work/pred_labels.txt"]) {
          if (!same(Deno.readFileSync(join(dir, f)), refFiles.get(f))) {
            wrong.push(`detect succeeded on what the kill left, but ${f} differs from the clean run's`);
            detect = "ran on stale or partial proposals";
          }
        }
      } else {
        const one = oneErrorLine(det);
        if ("problem" in one) wrong.push(`detect: ${one.problem}: ${det.stderr.trim()}`);
        else if (!one.line.includes(KNN) && !one.line.includes(P)) {
          wrong.push(`detect's error names neither the kNN file nor the proposal folder: ${one.line}`);
        }
        const changes = snapshotChanges(before, snapshot(dir));
        if (changes.length) wrong.push(`detect failed but wrote: ${changes.join(", ")}`);
        detect = "refused: " + ("line" in one ? one.line.replace(/^error: \S+: /, "").replace(/;.*$/, "") : "?");
      }

      // Rerunning the interrupted stage rebuilds the clean outputs and clears the killed run's leftovers.
      const again = await runIn("proposals", REBUILD, opts);
      if (again.code !== 0) wrong.push(`the rerun failed (${again.code}): ${again.stderr.trim()}`);
      else {
        const got = files(dir);
        for (const [f, bytes] of refFiles) {
          if (!f.startsWith("data/") || f.endsWith(".meta.json")) continue;
          if (!same(got.get(f), bytes)) wrong.push(`after the rerun ${f} differs from the clean run's`);
        }
        for (const f of got.keys()) {
          if (f.startsWith("data/") && !refFiles.has(f)) wrong.push(`after the rerun ${f} is left over`);
        }
        const side = JSON.parse(new TextDecoder().decode(got.get(`${P}/pred_labels.txt.meta.json`)));
        if (side.in_progress) wrong.push("after the rerun the proposal folder is still marked in progress");
      }
      outcomes[i] = { at: moments[i]!, killed, left, detect, wrong };
    };
    let next = 0;
    await Promise.all([0, 1].map(async () => {
      while (next < MOMENTS) await runMoment(next++);
    }));

    const tally = (key: "left" | "detect") => {
      const m = new Map<string, number>();
      for (const o of outcomes) m.set(o[key], (m.get(o[key]) ?? 0) + 1);
      return [...m].map(([k, v]) => `${v}× ${k}`).join("; ");
    };
    console.error(`interrupted: clean run ${runMs.toFixed(0)} ms; kills at ${moments.join(", ")} ms`);
    console.error(`  left behind: ${tally("left")}`);
    console.error(`  detect: ${tally("detect")}`);
    const bad = outcomes.flatMap((o, i) => o.wrong.map((w) => `moment ${i} (${o.at} ms; ${o.left}): ${w}`));
    for (const b of bad) console.error(`  ✗ ${b}`);
    assert.equal(bad.length, 0, `${bad.length} problems (listed above)`);
    // the moments must really have cut runs short, or this test tests nothing
    assert.ok(outcomes.filter((o) => o.killed).length >= MOMENTS / 2, "fewer than half of the runs were killed");
  } finally {
    // a run still going (after a failed assertion in a Promise.all) may write for a moment: retry, and never let the
    // clean-up hide the assertion that ended the test
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        Deno.removeSync(root, { recursive: true });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
});
