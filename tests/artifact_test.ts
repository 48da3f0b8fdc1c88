/**
 * Temp names and their clean-up (shared/artifact.ts): a killed writer's temps are removed by the next writer in that
 * folder, a live process's and another machine's never (Slurm shards share folders over a network filesystem).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { removeStaleTemps, tempPath, writeFileAtomic } from "../shared/artifact.ts";

/** The id of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("artifact: temp names carry the process id and the host", () => {
  const t = tempPath("/x/y.npz");
  assert.match(t, new RegExp(`^/x/y\\.npz\\.tmp-${Deno.pid}@[A-Za-z0-9._-]+$`));
  assert.ok(tempPath("/x/d", "old").startsWith(`/x/d.old-${Deno.pid}@`));
});

Deno.test("artifact: stale temps of this host's dead processes go, others stay", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dead = await deadPid();
    const host = tempPath("").split("@")[1]!;
    const names = {
      deadHere: `a.npz.tmp-${dead}@${host}`,
      deadOldFormat: `b.npz.tmp-${dead}`,
      deadFolder: `c.old-${dead}@${host}`,
      live: `d.npz.tmp-${Deno.pid}@${host}`,
      otherHost: `e.npz.tmp-${dead}@another-node.cluster`,
      artifact: "f.npz",
    };
    for (const [key, name] of Object.entries(names)) {
      if (key === "deadFolder") Deno.mkdirSync(join(dir, name));
      else Deno.writeTextFileSync(join(dir, name), key);
    }
    removeStaleTemps(dir);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(left, [names.live, names.otherHost, names.artifact].sort());
    // a writer's rename leaves no temp of its own behind
    writeFileAtomic(join(dir, "g.txt"), "x");
    assert.equal(Deno.readTextFileSync(join(dir, "g.txt")), "x");
    assert.ok(![...Deno.readDirSync(dir)].some((e) => e.name.startsWith("g.txt.")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
