import assert from "node:assert/strict";
import {
  clustersToIdx2lb,
  parseMeta,
  readLabelsPadded,
  readMeta,
  relabelDense,
  relabelLikeWriteMeta,
  writeLabels,
  writeMeta,
} from "../shared/meta.ts";
import { tempDir, throwsWith } from "./_helpers.ts";

Deno.test("meta: labels and lb2idxs in order of first appearance; -1 is an ordinary label", () => {
  const m = parseMeta("5\n-1\n5\n3\n", "x.meta");
  assert.deepEqual([...m.labels], [5, -1, 5, 3]);
  assert.deepEqual([...m.lb2idxs.entries()], [[5, [0, 2]], [-1, [1]], [3, [3]]]);
});

Deno.test("meta: bad lines and empty files name the file and line", () => {
  throwsWith(() => parseMeta("1\n2\nfoo\n", "bad.meta"), "bad.meta", "line 3", "foo");
  throwsWith(() => parseMeta("1\n2.5\n", "frac.meta"), "frac.meta", "line 2");
  throwsWith(() => parseMeta("", "empty.meta"), "empty.meta", "empty");
  throwsWith(() => readMeta("/nonexistent/x.meta"), "/nonexistent/x.meta", "no such file");
});

Deno.test("write_meta: renumber by first appearance, unassigned rows become singletons after cls_num", () => {
  // idx2lb {1: 9, 3: 4, 4: 9}, inst_num 6 → cls_num 2; idx 0 → 2, 1 → 0, 2 → 3, 3 → 1, 4 → 0, 5 → 4
  const idx2lb = new Map([[1, 9], [3, 4], [4, 9]]);
  assert.deepEqual([...relabelLikeWriteMeta(idx2lb, 6)], [2, 0, 3, 1, 0, 4]);
  // without inst_num the length is max index + 1 (the original drops trailing unlabelled rows)
  assert.deepEqual([...relabelLikeWriteMeta(idx2lb)], [2, 0, 3, 1, 0]);
  assert.deepEqual([...relabelDense([7, -1, 7, 3], -1)], [0, 2, 0, 1]);
  assert.deepEqual([...relabelLikeWriteMeta(clustersToIdx2lb([[4, 2], [0]]), 5)], [0, 2, 1, 3, 1]);
});

Deno.test("write_meta: writes one int per line atomically and reads back; padding adds singletons", () => {
  const dir = tempDir();
  const labels = writeMeta(`${dir}/p.txt`, new Map([[0, 3], [2, 3]]), 4);
  assert.equal(Deno.readTextFileSync(`${dir}/p.txt`), "0\n1\n0\n2\n");
  assert.deepEqual([...labels], [0, 1, 0, 2]);
  writeLabels(`${dir}/short.txt`, [0, 0, 1]);
  assert.deepEqual([...readLabelsPadded(`${dir}/short.txt`, 5)], [0, 0, 1, 2, 3]);
  throwsWith(() => readLabelsPadded(`${dir}/short.txt`, 2), "short.txt", "more than the 2 rows");
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["p.txt", "short.txt"]);
});
