import assert from "node:assert/strict";
import { type CliSpec, helpText, parseCli } from "../shared/cli.ts";
import { checkKeys, loadYaml } from "../shared/config.ts";
import { tempDir, throwsWith } from "./_helpers.ts";

const spec: CliSpec = {
  name: "demo",
  summary: "demo stage",
  options: {
    "th-knn": { type: "number", default: 0.7, help: "threshold" },
    k: { type: "int", default: 80, help: "neighbours" },
    method: { type: "string", default: "faiss", choices: ["faiss", "hnsw"], help: "kNN method" },
    "proposal-folders": { type: "string", multiple: true, help: "folders" },
    "no-normalize": { type: "boolean", help: "raw features" },
    name: { type: "string", required: true, help: "dataset" },
  },
};

Deno.test("cli: kebab-case options, underscore aliases, defaults, repeatable options", () => {
  const a = parseCli(spec, ["--name", "x", "--th_knn", "0.75", "--proposal-folders", "a", "--proposal_folders", "b"]);
  assert.equal(a.num("th-knn"), 0.75);
  assert.equal(a.num("k"), 80);
  assert.equal(a.str("method"), "faiss");
  assert.deepEqual(a.strs("proposal-folders"), ["a", "b"]);
  assert.equal(a.bool("no-normalize"), false);
  assert.equal(a.given("k"), false);
  assert.equal(parseCli(spec, ["--name=y", "--no_normalize"]).bool("no-normalize"), true);
  // negative numbers as separate arguments (the original's --th_pos -1)
  assert.equal(parseCli(spec, ["--name", "x", "--th-knn", "-1"]).num("th-knn"), -1);
  assert.equal(parseCli(spec, ["--name", "x", "--th_knn", "-0.5"]).num("th-knn"), -0.5);
  assert.match(helpText(spec), /--th-knn <number>, --th_knn/);
});

Deno.test("cli: unknown options, bad numbers, bad choices and missing required options are one clear error", () => {
  throwsWith(() => parseCli(spec, ["--name", "x", "--bogus"]), "demo", "bogus");
  throwsWith(() => parseCli(spec, ["--name", "x", "--k", "8.5"]), "--k expects an integer", "8.5");
  throwsWith(() => parseCli(spec, ["--name", "x", "--th-knn", "abc"]), "--th-knn expects a number");
  throwsWith(() => parseCli(spec, ["--name", "x", "--method", "annoy"]), "--method must be one of faiss, hnsw");
  throwsWith(() => parseCli(spec, []), "--name is required");
});

Deno.test("config: YAML mapping with strict keys; invalid YAML names the file", () => {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/c.yaml`, "k: 80\nth_knn: 0.7\nlr_config:\n  step: [15, 24, 28]\n");
  const cfg = loadYaml(`${dir}/c.yaml`);
  assert.deepEqual(cfg, { k: 80, th_knn: 0.7, lr_config: { step: [15, 24, 28] } });
  checkKeys(cfg, ["k", "th_knn", "lr_config"], `${dir}/c.yaml`);
  throwsWith(() => checkKeys(cfg, ["k", "th_knn"], "c.yaml"), "c.yaml", "unknown config key 'lr_config'");
  Deno.writeTextFileSync(`${dir}/bad.yaml`, "k: [1, 2\n");
  throwsWith(() => loadYaml(`${dir}/bad.yaml`), "bad.yaml", "invalid YAML");
  Deno.writeTextFileSync(`${dir}/list.yaml`, "- 1\n- 2\n");
  throwsWith(() => loadYaml(`${dir}/list.yaml`), "list.yaml", "mapping");
});
