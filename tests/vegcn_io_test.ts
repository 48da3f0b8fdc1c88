import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { NpzFile, writeNpz } from "../shared/npy.ts";
import { readPredConfs, readPredConns, writePredConfs, writePredConns } from "../shared/vegcn_io.ts";
import { SHARED, tempDir, throwsWith } from "./_helpers.ts";

const CONFS = `${SHARED}/fixtures/gcn_v/gcnv_pred_confs.npz`;

Deno.test({
  name: "vegcn io: the original's pred_confs file reads, and ours is written with the same keys and dtypes",
  ignore: !existsSync(CONFS),
  fn() {
    const confs = readPredConfs(CONFS, { n: 4287 });
    assert.equal(confs.length, 4287);
    assert.equal(confs[0], Math.fround(-0.05379517748951912));
    throwsWith(() => readPredConfs(CONFS, { n: 100 }), "gcnv_pred_confs.npz", "4287 confidences", "100 rows");
    const dir = tempDir();
    writePredConfs(`${dir}/c.npz`, confs);
    assert.deepEqual(readPredConfs(`${dir}/c.npz`), confs);
    const ours = new NpzFile(`${dir}/c.npz`), orig = new NpzFile(CONFS);
    for (const key of ["pred_confs", "inst_num"]) {
      assert.equal(ours.get(key).dtype, orig.get(key).dtype, key);
      assert.deepEqual(ours.get(key).shape, orig.get(key).shape, key);
    }
    Deno.removeSync(dir, { recursive: true });
  },
});

Deno.test("vegcn io: pred_conns round-trip; a wrong inst_num is an error", () => {
  const dir = tempDir();
  const conns = Int32Array.from([3, 0, 7, 1]);
  writePredConns(`${dir}/p.npz`, conns, { maxConn: 1, instNum: 10 });
  assert.deepEqual(readPredConns(`${dir}/p.npz`), { conns, maxConn: 1, instNum: 10 });
  writePredConfs(`${dir}/c.npz`, new Float32Array([0.1, 0.2]));
  assert.equal(readPredConfs(`${dir}/c.npz`).length, 2);
  throwsWith(() => readPredConfs(`${dir}/p.npz`), "p.npz", "no array 'pred_confs'");
  writeNpz(`${dir}/bad.npz`, {
    pred_confs: { dtype: "f4", shape: [2], data: new Float32Array([0.1, 0.2]) },
    inst_num: { dtype: "i8", shape: [], data: BigInt64Array.of(3n) },
  });
  throwsWith(() => readPredConfs(`${dir}/bad.npz`), "bad.npz", "2 confidences but inst_num = 3");
  Deno.removeSync(dir, { recursive: true });
});
