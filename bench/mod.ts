/**
 * `deno task bench [name …] [-- options]`: run the benchmarks in bench/<name>.ts (all when no name is given). Each
 * prints which backend/adapter ran and a ratio against a comparison point measured in the same run.
 * @module
 */
const BENCHES = ["evaluate", "knn", "proposals", "gcn"] as const;

const names = Deno.args.filter((a) => !a.startsWith("-"));
const rest = Deno.args.filter((a) => a.startsWith("-"));
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
