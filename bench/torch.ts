/**
 * The benchmarks' one way to run a PyTorch comparison script (bench/torch_*.py): `python3 SCRIPT ARGS…`, whose last
 * stdout line is one JSON object; a script that cannot run (no torch, no CUDA device) exits non-zero with
 * `{"skip": why}`.
 * @module
 */

/** What a comparison script printed last (`torch`, `device`, `tf32` and its own timings), or null with the reason printed. */
// deno-lint-ignore no-explicit-any
export async function runTorchScript(script: string, args: string[]): Promise<Record<string, any> | null> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("python3", {
      args: [new URL(`./${script}`, import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    console.log("  torch: no python3 — comparison skipped");
    return null;
  }
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success) {
    const why = line.startsWith("{") ? JSON.parse(line).skip : new TextDecoder().decode(out.stderr).trim();
    console.log(`  torch: comparison skipped (${why})`);
    return null;
  }
  const r = JSON.parse(line);
  console.log(`  torch ${r.torch} on ${r.device}, TF32 ${r.tf32 ? "on" : "off"}`);
  return r;
}
