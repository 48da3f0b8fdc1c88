/**
 * Proposal generation (iteration 0 and 1, multi-scale driver), de-overlap and the GCN-D upper bound, against the
 * original's outputs in ../shared/fixtures/ref_synth: partitions byte-identical, proposal node and edge arrays
 * identical (same order, same values), upper-bound metrics equal to 1e-9; plus configs, reuse and bad input.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFeatures } from "../shared/features.ts";
import { readKnn, writeKnn } from "../shared/knn_file.ts";
import { readLabels, writeLabels } from "../shared/meta.ts";
import { toNumbers } from "../shared/ndarray.ts";
import { readNpzArray, writeNpz } from "../shared/npy.ts";
import { listProposalFiles, readProposalNodes } from "../shared/proposal_io.ts";
import { pyFloatStr } from "../shared/py_format.ts";
import { deoverlapFolders, deoverlapOutputName, readPredScores } from "../cluster/deoverlap.ts";
import { FeatureCache } from "../cluster/knn_source.ts";
import {
  basicFolderName,
  generateBasicProposals,
  generateIterProposals,
  generateProposals,
  iterFolderName,
  loadProposalConfig,
  parseProposalFolderName,
  parseProposalParams,
  pySetOrder,
} from "../cluster/proposals/mod.ts";
import { clusterIous, readCandidateClusters, upperBound } from "../cluster/upper_bound.ts";
import { expected, HAS_SHARED, REF, runStage, tempDir, throwsWith } from "./_helpers.ts";

const FEAT = `${REF}/features/sref.bin`;
const KNN_PREFIX = `${REF}/knns/sref`;
const REF_PROPS = `${REF}/cluster_proposals/sref`;
const base = (th: number) => ({ knnMethod: "faiss" as const, k: 80, thKnn: th, thStep: 0.05, minsz: 3, maxsz: 300 });
const iter1 = (svMaxsz: number) => ({
  knnMethod: "faiss" as const,
  k: 2,
  thKnn: 0.4,
  thStep: 0.05,
  minsz: 3,
  maxsz: 500,
  svMinsz: 2,
  svMaxsz,
});

/** Proposals of a folder keyed by their sorted node set: node array and edge array as stored. */
function proposalsBySet(folder: string): Map<string, { nodes: number[]; edges: number[] }> {
  const out = new Map<string, { nodes: number[]; edges: number[] }>();
  for (const f of listProposalFiles([join(folder, "proposals")])) {
    const nodes = Array.from(readProposalNodes(f.node));
    const edgeArr = readNpzArray(f.edge);
    assert.equal(readNpzArray(f.node).dtype, "i8", `${f.node} dtype`);
    assert.equal(edgeArr.dtype, "f8", `${f.edge} dtype`);
    const key = JSON.stringify([...nodes].sort((a, b) => a - b));
    assert.ok(!out.has(key), `${folder}: proposal ${key.slice(0, 40)} appears twice`);
    out.set(key, { nodes, edges: Array.from(toNumbers(edgeArr)) });
  }
  return out;
}

/** Our folder equals the original's: same pred_labels.txt bytes, same proposals with identical arrays. */
function assertSameFolder(ours: string, theirs: string): void {
  assert.equal(
    Deno.readTextFileSync(join(ours, "pred_labels.txt")),
    Deno.readTextFileSync(join(theirs, "pred_labels.txt")),
    "pred_labels.txt",
  );
  const a = proposalsBySet(ours), b = proposalsBySet(theirs);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), "proposal node sets");
  for (const [key, p] of a) {
    const q = b.get(key)!;
    assert.deepEqual(p.nodes, q.nodes, `node order of ${key.slice(0, 40)}`);
    assert.deepEqual(p.edges, q.edges, `edge rows of ${key.slice(0, 40)}`);
  }
}

Deno.test("pyFloatStr formats like Python's str(float)", () => {
  const cases: [number, string][] = [
    [0.7, "0.7"],
    [0.75, "0.75"],
    [0.05, "0.05"],
    [1, "1.0"],
    [-1, "-1.0"],
    [0, "0.0"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [1.5e-7, "1.5e-07"],
    [123456789012345680, "1.2345678901234568e+17"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [0.1 + 0.2, "0.30000000000000004"],
    [300, "300.0"],
  ];
  for (const [x, s] of cases) assert.equal(pyFloatStr(x), s, String(x));
});

Deno.test("pySetOrder is CPython's list(set(keys)) order", () => {
  assert.deepEqual([...pySetOrder([5, 13, 21, 29, 37])], [37, 5, 13, 21, 29]);
  assert.deepEqual([...pySetOrder([0, 8, 16, 1, 9, 2])], [0, 1, 2, 8, 9, 16]);
  const a = Array.from({ length: 40 }, (_, i) => (i * 37) % 1000);
  assert.deepEqual(
    [...pySetOrder(a)],
    [0, 258, 259, 518, 777, 147, 148, 406, 407, 666, 925, 36, 37, 295, 296, 555, 814, 184, 185, 443, 444, 703, 962, 73]
      .concat([74, 332, 333, 592, 851, 221, 222, 481, 740, 999, 110, 111, 369, 370, 629, 888]),
  );
  const b = Array.from({ length: 30 }, (_, i) => (1000003 * i) % 65536);
  assert.deepEqual(
    [...pySetOrder(b)],
    [0, 62469, 33926, 30859, 2316, 64785, 36242, 33175, 4632, 38558, 6948, 40874, 9264, 43190, 11580, 45506, 16963]
      .concat([13896, 50889, 47822, 19279, 16212, 53205, 21595, 55521, 23911, 57837, 26227, 60153, 28543]),
  );
  assert.deepEqual([...pySetOrder([4, 4, 2])], [2, 4]);
});

Deno.test("folder names follow the original", () => {
  assert.equal(basicFolderName(base(0.7)), "faiss_k_80_th_0.7_step_0.05_minsz_3_maxsz_300_iter_0");
  assert.equal(
    iterFolderName(iter1(16), 1),
    "faiss_k_2_th_0.4_step_0.05_minsz_3_maxsz_500_sv_minsz_2_maxsz_16_iter_1",
  );
  assert.deepEqual(parseProposalFolderName("x/hnsw_k_80_th_0.6_step_0.05_minsz_3_maxsz_300_iter_0/"), {
    knnMethod: "hnsw",
    k: 80,
    iter: 0,
  });
  throwsWith(() => parseProposalFolderName("/tmp/somewhere"), "not a proposal folder name");
});

Deno.test({
  name: "iteration 0 equals the original at th 0.6 / 0.65 / 0.7 / 0.75 (labels, node and edge arrays)",
  ignore: !HAS_SHARED,
  async fn() {
    const out = tempDir();
    const features = new FeatureCache({ path: FEAT });
    for (const th of [0.6, 0.65, 0.7, 0.75]) {
      const r = await generateBasicProposals({ oprefix: out, knnPrefix: KNN_PREFIX, features, params: base(th) });
      assert.equal(r.reused, false);
      const e = expected()[`proposals_th${th}`]!;
      assert.equal(r.numProposals, e.n_proposals);
      assert.equal(new Set(readLabels(r.predLabels)).size, e.clusters);
      assertSameFolder(r.folder, join(REF_PROPS, basicFolderName(base(th))));
    }
    // Up to date: a second run reuses; a missing proposal file or --force recomputes.
    const again = await generateBasicProposals({ oprefix: out, knnPrefix: KNN_PREFIX, features, params: base(0.75) });
    assert.equal(again.reused, true);
    Deno.removeSync(join(again.proposalsDir, "3_edge.npz"));
    const redo = await generateBasicProposals({ oprefix: out, knnPrefix: KNN_PREFIX, features, params: base(0.75) });
    assert.equal(redo.reused, false);
    assert.ok(existsSync(join(redo.proposalsDir, "3_edge.npz")));
    Deno.removeSync(out, { recursive: true });
  },
});

Deno.test({
  name: "iteration 1 (k 2, th 0.4, sv_maxsz 8 / 16) equals the original, super-vertex kNN included",
  ignore: !HAS_SHARED,
  async fn() {
    const out = tempDir();
    const features = new FeatureCache({ path: FEAT });
    const i0 = await generateBasicProposals({ oprefix: out, knnPrefix: KNN_PREFIX, features, params: base(0.75) });
    const refI0 = join(REF_PROPS, basicFolderName(base(0.75)));
    for (const m of [8, 16]) {
      const r = await generateIterProposals({
        svLabels: i0.predLabels,
        svKnnPrefix: KNN_PREFIX,
        features,
        params: iter1(m),
      });
      const e = expected()[`iter1_k2_th0.4_svmax${m}`]!;
      assert.equal(r.numProposals, e.n_proposals);
      assertSameFolder(r.folder, join(refI0, iterFolderName(iter1(m), 1)));
    }
    const ours = readKnn(join(i0.folder, "knns", "faiss_k_2.npz"));
    const theirs = readKnn(join(refI0, "knns", "faiss_k_2.npz"));
    assert.equal(ours.n, theirs.n);
    assert.deepEqual(ours.nbrs, theirs.nbrs);
    let maxDiff = 0;
    for (let t = 0; t < ours.dists.length; t++) {
      maxDiff = Math.max(maxDiff, Math.abs(ours.dists[t]! - theirs.dists[t]!));
    }
    assert.ok(maxDiff < 1e-5, `super-vertex kNN distances differ by ${maxDiff}`);
    Deno.removeSync(out, { recursive: true });
  },
});

Deno.test({
  name: "multi-scale driver: a YAML config gives the proposal folders in config order",
  ignore: !HAS_SHARED,
  async fn() {
    const out = tempDir();
    const cfg = join(out, "cfg.yaml");
    Deno.writeTextFileSync(
      cfg,
      `proposal_params:
  - { k: 80, th_knn: 0.7 }
  - k: 80
    th_knn: 0.75
    iter0: false
    iter1_params:
      - { k: 2, sv_maxsz: 8 }
      - { k: 2, sv_maxsz: 16 }
`,
    );
    const folders = await generateProposals(loadProposalConfig(cfg), {
      prefix: REF,
      name: "sref",
      oprefix: join(out, "cp"),
    });
    const i0 = join(out, "cp", "sref", basicFolderName(base(0.75)));
    assert.deepEqual(folders, [
      join(out, "cp", "sref", basicFolderName(base(0.7)), "proposals"),
      join(i0, iterFolderName(iter1(8), 1), "proposals"),
      join(i0, iterFolderName(iter1(16), 1), "proposals"),
    ]);
    assertSameFolder(
      join(folders[2]!, ".."),
      join(REF_PROPS, basicFolderName(base(0.75)), iterFolderName(iter1(16), 1)),
    );
    Deno.removeSync(out, { recursive: true });
  },
});

Deno.test("configs/proposals reproduce the original's 2 / 5 / 8 / 20 (and training 4 / 8 / 84) folder counts", () => {
  const counts: Record<string, number> = {
    "ms1m_2_prpsls.yaml": 2,
    "ms1m_5_prpsls.yaml": 5,
    "ms1m_8_prpsls.yaml": 8,
    "ms1m_20_prpsls.yaml": 20,
    "train_ms1m_4_prpsls.yaml": 4,
    "train_ms1m_8_prpsls.yaml": 8,
    "train_ms1m_84_prpsls.yaml": 84,
  };
  for (const [file, n] of Object.entries(counts)) {
    const sets = loadProposalConfig(`configs/proposals/${file}`);
    assert.equal(sets.reduce((a, s) => a + (s.iter0 ? 1 : 0) + s.iter1.length, 0), n, file);
  }
  const eight = loadProposalConfig("configs/proposals/ms1m_8_prpsls.yaml");
  assert.deepEqual(eight.map((s) => [s.knnMethod, s.thKnn, s.iter0]), [
    ["hnsw", 0.6, true],
    ["hnsw", 0.7, true],
    ["hnsw", 0.75, false],
  ]);
  assert.deepEqual(eight[0]!.iter1.map((p) => [p.k, p.svMaxsz, p.thKnn, p.maxsz, p.svMinsz]), [
    [2, 8, 0.4, 500, 2],
    [3, 5, 0.4, 500, 2],
  ]);
  throwsWith(() => parseProposalParams([{ k: 80, th_knn: 0.7, thknn: 1 }], "cfg"), "unknown config key 'thknn'");
  throwsWith(() => parseProposalParams([], "cfg"), "non-empty list");
  throwsWith(
    () => parseProposalParams([{ th_knn: 0.7, iter1_params: [{ k: 2, sv_maxsz: 8, sv_minsz: 1 }] }], "cfg"),
    "sv_minsz must be an integer ≥ 2",
  );
});

Deno.test({
  name: "upper bound equals expected.json to 1e-9 (iter-0 sets, and with each iter-1 set)",
  ignore: !HAS_SHARED,
  fn() {
    const gt = readLabels(`${REF}/labels/sref.meta`);
    const i0 = (th: string) => `${REF_PROPS}/faiss_k_80_th_${th}_step_0.05_minsz_3_maxsz_300_iter_0`;
    const cases: [string, string[]][] = [
      ["upper_bound_0.7_0.75", [`${i0("0.7")}/pred_labels.txt`, `${i0("0.75")}/pred_labels.txt`]],
      ["upper_bound_0.6_0.65_0.7_0.75", ["0.6", "0.65", "0.7", "0.75"].map((t) => `${i0(t)}/pred_labels.txt`)],
      ["upper_bound_0.7_0.75+iter1_k2_th0.4_svmax8", [
        i0("0.7"),
        i0("0.75"),
        `${i0("0.75")}/${iterFolderName(iter1(8), 1)}`,
      ]],
      [
        "upper_bound_0.7_0.75+iter1_k2_th0.4_svmax16",
        [`${i0("0.7")}/proposals`, `${i0("0.75")}/proposals`, `${i0("0.75")}/${iterFolderName(iter1(16), 1)}`],
      ],
    ];
    for (const [name, paths] of cases) {
      const e = expected()[name] as { pairwise: number[]; bcubed: number[]; nmi: number; clusters?: number };
      const { metrics, labels } = upperBound(readCandidateClusters(paths), gt);
      const got = [metrics.pairwise.precision, metrics.pairwise.recall, metrics.pairwise.fscore];
      got.forEach((v, t) => assert.ok(Math.abs(v - e.pairwise[t]!) < 1e-9, `${name} pairwise ${t}`));
      const bc = [metrics.bcubed.precision, metrics.bcubed.recall, metrics.bcubed.fscore];
      bc.forEach((v, t) => assert.ok(Math.abs(v - e.bcubed[t]!) < 1e-9, `${name} bcubed ${t}`));
      assert.ok(Math.abs(metrics.nmi - e.nmi) < 1e-9, `${name} nmi`);
      if (e.clusters !== undefined) assert.equal(new Set(labels).size, e.clusters);
    }
  },
});

Deno.test("clusterIous: majority label met first on ties, IoU against the whole class", () => {
  const gt = [0, 0, 0, 1, 1, 2];
  const ious = clusterIous([[0, 1, 3], [3, 0], [5], []], gt);
  assert.equal(ious[0], 2 / 4);
  assert.equal(ious[1], 1 / 3); // label 1 (met first) ties with label 0: |{3}| / |{0,3,4}|
  assert.equal(ious[2], 1);
  assert.equal(ious[3], -1e6);
  throwsWith(() => clusterIous([[9]], gt), "holds node 9");
});

Deno.test("deoverlap: scores and meta from the original's npz (pickled meta) or our sidecar; output name", () => {
  const p = readPredScores("fixtures/npy/pred_scores.npz");
  assert.deepEqual([...p.scores], [Math.fround(0.9), Math.fround(0.1), 0.5]);
  assert.deepEqual(p.proposalFolders, ["a/proposals", "b/proposals"]);
  assert.equal(p.totInstNum, 10);
  assert.equal(deoverlapOutputName("w/x.npz", 1, -1), "w/x_th_iou_1.0_pos_-1.0_pred_label.txt");
  assert.equal(deoverlapOutputName("w/x.npz", 0.5, 0), "w/x_th_iou_0.5_pos_0.0_pred_label.txt");

  const dir = tempDir();
  const score = join(dir, "s.npz");
  writeNpz(score, { data: { dtype: "f4", shape: [2], data: new Float32Array([0.2, 0.8]) } });
  Deno.writeTextFileSync(
    `${score}.meta.json`,
    JSON.stringify({ stage: "detect", proposal_folders: ["p"], tot_inst_num: 4 }),
  );
  assert.deepEqual(readPredScores(score).proposalFolders, ["p"]);
  Deno.writeTextFileSync(`${score}.meta.json`, JSON.stringify({ extra: { proposal_folders: ["q"], tot_inst_num: 5 } }));
  assert.equal(readPredScores(score).totInstNum, 5);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test({
  name: "deoverlap with ground-truth IoU scores reproduces the upper bound; bad folders are clear errors",
  ignore: !HAS_SHARED,
  fn() {
    const gt = readLabels(`${REF}/labels/sref.meta`);
    const folders = ["0.7", "0.75"].map((t) =>
      `${REF_PROPS}/faiss_k_80_th_${t}_step_0.05_minsz_3_maxsz_300_iter_0/proposals`
    );
    const clusters = listProposalFiles(folders).map((f) => readProposalNodes(f.node));
    const ious = clusterIous(clusters, gt);
    const labels = deoverlapFolders(ious, folders, { n: gt.length });
    assert.deepEqual(labels, upperBound(clusters, gt).labels);
    throwsWith(() => deoverlapFolders(ious.slice(1), folders, { n: gt.length }), "111 scores but 112 proposals");
    throwsWith(() => deoverlapFolders([0.5], ["/nonexistent/proposals"], { n: 5 }), "/nonexistent/proposals", "exist");
    const empty = tempDir();
    throwsWith(() => deoverlapFolders([], [empty], { n: 5 }), empty, "no *_node.npz");
    throwsWith(() => readCandidateClusters([empty]), "no *_node.npz");
    throwsWith(() => upperBound([], gt), "candidate set is empty");
    Deno.removeSync(empty, { recursive: true });
  },
});

Deno.test({
  name: "bad input: a kNN file whose N differs from the features names both files",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    writeFeatures(join(dir, "f.bin"), new Float32Array(10 * 256).fill(1));
    const features = new FeatureCache({ path: join(dir, "f.bin") });
    await assert.rejects(
      generateBasicProposals({ oprefix: dir, knnPrefix: KNN_PREFIX, features, params: base(0.7) }),
      (e: Error) =>
        e.message.includes("faiss_k_80.npz") && e.message.includes("4287 rows") && e.message.includes("f.bin"),
    );
    // A kNN file with fewer neighbours than asked for.
    await writeKnn(join(dir, "faiss_k_80.npz"), {
      n: 2,
      k: 1,
      nbrs: new Int32Array([0, 1]),
      dists: new Float32Array(2),
    });
    await assert.rejects(
      generateBasicProposals({ oprefix: dir, knnPrefix: dir, params: base(0.7) }),
      /fewer than k = 80/,
    );
    Deno.removeSync(dir, { recursive: true });
  },
});

Deno.test({
  name: "CLIs: proposals, upper-bound and deoverlap run end to end with the original's file names",
  ignore: !HAS_SHARED,
  async fn() {
    const out = tempDir();
    const r = await runStage("proposals.ts", ["--prefix", REF, "--name", "sref", "--th-knn", "0.75", "--oprefix", out]);
    assert.equal(r.code, 0, r.stderr);
    const folder = join(out, "sref", basicFolderName(base(0.75)));
    assert.equal(r.stdout.trim(), join(folder, "proposals"));
    assertSameFolder(folder, join(REF_PROPS, basicFolderName(base(0.75))));

    const ub = await runStage("upper_bound.ts", [
      "--cluster-path",
      join(folder, "pred_labels.txt"),
      "--gt-labels",
      `${REF}/labels/sref.meta`,
      "--output-folder",
      out,
    ]);
    assert.equal(ub.code, 0, ub.stderr);
    assert.ok(existsSync(join(out, "ub_th_iou_1_pos_-1_pred_labels.txt")));
    // One partition has no overlaps: its upper bound is the partition itself.
    const p75 = expected()["proposals_th0.75"]!.pairwise as number[];
    assert.match(ub.stdout, new RegExp(`pairwise\\s+${(p75[0]! * 100).toFixed(2)}\\s+${(p75[1]! * 100).toFixed(2)}`));

    const score = join(out, "det.npz");
    const n = listProposalFiles([join(folder, "proposals")]).length;
    writeNpz(score, { data: { dtype: "f4", shape: [n], data: new Float32Array(n).fill(0.5) } });
    Deno.writeTextFileSync(
      `${score}.meta.json`,
      JSON.stringify({ extra: { proposal_folders: [join(folder, "proposals")], tot_inst_num: 4287 } }),
    );
    const de = await runStage("deoverlap.ts", ["--pred-score", score, "--th-pos=-1", "--th-iou", "1"]);
    assert.equal(de.code, 0, de.stderr);
    // Equal scores keep proposal order; proposals of one partition do not overlap: the partition comes back.
    const labels = readLabels(join(out, "det_th_iou_1.0_pos_-1.0_pred_label.txt"));
    assert.equal(new Set(labels).size, expected()["proposals_th0.75"]!.clusters);

    const bad = await runStage("proposals.ts", ["--prefix", REF, "--name", "nope", "--oprefix", out]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: .*nope/);
    const unknown = await runStage("proposals.ts", ["--prefix", REF, "--name", "sref", "--thknn", "1"]);
    assert.equal(unknown.code, 2);
    Deno.removeSync(out, { recursive: true });
  },
});

Deno.test({
  name: "a missing kNN file is built by the kNN stage and gives the original's partition",
  ignore: !HAS_SHARED,
  async fn() {
    const dir = tempDir();
    const features = new FeatureCache({ path: FEAT });
    const r = await generateBasicProposals({
      oprefix: dir,
      knnPrefix: join(dir, "knns"),
      features,
      params: base(0.7),
      backend: "cpu",
    });
    assert.ok(existsSync(join(dir, "knns", "faiss_k_80.npz.meta.json")));
    assert.equal(
      Deno.readTextFileSync(r.predLabels),
      Deno.readTextFileSync(join(REF_PROPS, basicFolderName(base(0.7)), "pred_labels.txt")),
    );
    Deno.removeSync(dir, { recursive: true });
  },
});

Deno.test("upper-bound reads a 2-D .npz list of clusters and .txt partitions", () => {
  const dir = tempDir();
  writeNpz(join(dir, "c.npz"), { data: { dtype: "i8", shape: [2, 2], data: new BigInt64Array([0n, 1n, 2n, 3n]) } });
  Deno.writeTextFileSync(join(dir, "p.txt"), "7\n7\n5\n5\n");
  const clusters = readCandidateClusters([join(dir, "c.npz"), join(dir, "p.txt")]);
  assert.deepEqual(clusters.map((c) => [...c]), [[0, 1], [2, 3], [0, 1], [2, 3]]);
  const { labels, metrics } = upperBound(clusters, [1, 1, 2, 2]);
  assert.deepEqual([...labels], [0, 0, 1, 1]);
  assert.equal(metrics.pairwise.fscore, 1);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("upper bound: a label file of a million clusters reads (no one-call spread of its clusters)", () => {
  const dir = tempDir();
  try {
    const n = 1_000_000; // every row its own cluster but pairs 0–1, 2–3 … in the first 10 rows
    const labels = Int32Array.from({ length: n }, (_, i) => (i < 10 ? i >> 1 : i));
    const path = join(dir, "pred_labels.txt");
    writeLabels(path, labels);
    const clusters = readCandidateClusters([path]);
    assert.equal(clusters.length, n - 5);
    assert.deepEqual([...clusters[0]!], [0, 1]);
    assert.deepEqual([...clusters.at(-1)!], [n - 1]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
