import { readFeatures } from "../shared/features.ts";
import { ivfKnn } from "../gpu/knn/mod.ts";
const f = readFeatures("/work/p1/data/features/part1_test.bin", { dim: 256 });
for (const chunkRows of [89088, 36864]) {
  const t = performance.now();
  const r = await ivfKnn(f, { k: 80, chunkRows });
  console.log("chunk", chunkRows, "s", ((performance.now() - t) / 1000).toFixed(1), JSON.stringify(r.seconds ?? {}));
}
