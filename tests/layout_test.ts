/**
 * The house rules of the code layout, checked on the source tree itself: each floor imports only the floors below
 * it (`stages/` → `cluster/` → `gpu/` → `shared/`), no stage imports another stage, `bench/` uses the library and
 * never a stage, there are no import cycles, and stage scripts stay thin.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
// slurm/ (the cluster submit script) sits beside stages/: it runs stages as commands and imports none
const FLOORS = ["shared", "gpu", "cluster", "stages", "slurm"] as const;
const STAGE_MAX_LINES = 300;

/** Every `.ts` file under `dir`, relative to the repository root. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(ROOT, dir))) {
    const rel = join(dir, e.name);
    if (e.isDirectory) out.push(...tsFiles(rel));
    else if (e.name.endsWith(".ts")) out.push(rel);
  }
  return out.sort();
}

/** Relative `.ts` imports and re-exports of one file, resolved against the repository root. */
function localImports(file: string): string[] {
  const src = Deno.readTextFileSync(join(ROOT, file));
  const out: string[] = [];
  for (const m of src.matchAll(/^(?:import|export)\b[^;]*?from\s+"(\.[^"]+\.ts)";/gms)) {
    out.push(relative(ROOT, normalize(join(ROOT, dirname(file), m[1]!))));
  }
  // dynamic imports too (a worker's script is a separate module graph, so `new URL(…)` is no import)
  for (const m of src.matchAll(/import\(\s*"(\.[^"]+\.ts)"/g)) {
    out.push(relative(ROOT, normalize(join(ROOT, dirname(file), m[1]!))));
  }
  return out;
}

const floorOf = (file: string) => FLOORS.indexOf(file.split("/")[0] as typeof FLOORS[number]);
const files = [...FLOORS, "bench"].flatMap((d) => tsFiles(d));
const graph = new Map(files.map((f) => [f, localImports(f)]));

Deno.test("layout: every floor imports only itself and the floors below it", () => {
  const bad: string[] = [];
  for (const [file, deps] of graph) {
    if (file.startsWith("bench/")) continue;
    for (const dep of deps) {
      if (floorOf(dep) < 0 || floorOf(dep) > floorOf(file)) bad.push(`${file} → ${dep}`);
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("layout: no stage imports another stage, and bench/ and slurm/ import no stage", () => {
  const bad: string[] = [];
  for (const [file, deps] of graph) {
    if (!["stages/", "bench/", "slurm/"].some((d) => file.startsWith(d))) continue;
    for (const dep of deps) if (dep.startsWith("stages/")) bad.push(`${file} → ${dep}`);
  }
  assert.deepEqual(bad, []);
});

Deno.test("layout: no import cycles", () => {
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 2) return;
    if (state.get(f) === 1) {
      cycles.push([...path.slice(path.indexOf(f)), f].join(" → "));
      return;
    }
    state.set(f, 1);
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 2);
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});

Deno.test("layout: every local import resolves to a file", () => {
  const missing: string[] = [];
  for (const [file, deps] of graph) {
    for (const d of deps) {
      try {
        Deno.statSync(join(ROOT, d));
      } catch {
        missing.push(`${file} → ${d}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test(`layout: stage scripts are thin (≤ ${STAGE_MAX_LINES} lines) and runnable commands`, () => {
  const stages = tsFiles("stages");
  assert.ok(stages.length >= 10, `expected the pipeline's stages, found ${stages.length}`);
  for (const f of stages) {
    const src = Deno.readTextFileSync(join(ROOT, f));
    const lines = src.split("\n").length;
    assert.ok(lines <= STAGE_MAX_LINES, `${f} has ${lines} lines`);
    assert.match(src, /if \(import\.meta\.main\)/, `${f} is not a command`);
  }
});
