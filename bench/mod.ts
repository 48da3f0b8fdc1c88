/**
 * `deno task bench [name …] [-- options]`: run the benchmarks in bench/<name>.ts (all when no name is given). Each
 * prints which backend/adapter ran and a ratio against a comparison point measured in the same run.
 * @module
 */

const BENCHES = ["evaluate", "knn", "ivf", "proposals", "gcn"] as const;

// Benchmark names come first; everything from the first option on is passed through (`knn --n 20000`).
const firstOption = Deno.args.findIndex((a) => a.startsWith("-"));
const names = firstOption < 0 ? Deno.args : Deno.args.slice(0, firstOption);
const rest = firstOption < 0 ? [] : Deno.args.slice(firstOption);
const chosen = names.length ? names : [...BENCHES];
for (const name of chosen) {
  if (!(BENCHES as readonly string[]).includes(name)) {
    console.error(`error: bench: unknown benchmark '${name}' (have: ${BENCHES.join(", ")})`);
    Deno.exit(2);
  }
}
for (const name of chosen) {
  console.log(`\n## bench ${name}`);
  const mod = await import(`./${name}.ts`);
  await mod.run(rest);
}
