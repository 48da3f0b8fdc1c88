/**
 * Bad input, table-driven (issue #12, "Nothing half-written is ever trusted"): every stage and every reader meets
 * truncated, byte-flipped and foreign files (`.bin`, `.meta`, `.npy` members, `.npz`, `.pth`, YAML, sidecars,
 * proposal folders), wrong dims, NaN/Inf, k ≥ N, empty inputs and unwritable outputs. Each case runs the stage as a
 * user would (a subprocess in a copy of a small dataset that the stages themselves built) and asserts:
 * - exit code 2 and exactly one `error:` line on stderr, with no stack trace;
 * - the line names the file (or option) and the problem;
 * - no new file appeared under the case folder (no final artifact, no temp file left behind), and no existing file
 *   changed or vanished (sha256 and mtime of every file before and after).
 *
 * To add a case: append to `CASES` — a `setup` that spoils a copy of the base dataset, the stage's arguments, and what
 * the error must name. Unwritable-output cases run as `nobody` when the suite runs as root (root ignores
 * permissions); they are skipped, with the reason printed, only where that is impossible.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { npyHeader, parseNpy, readNpzArray } from "../shared/npy.ts";
import { concat } from "../shared/zip.ts";
import {
  buildBase,
  copyTree,
  DATA_ARGS,
  DETECT_ARGS,
  editZipMember,
  FEATS,
  flipByte,
  K,
  KNN,
  LABELS,
  N,
  oneErrorLine,
  openForReading,
  P0,
  P0_PROPOSALS,
  patchText,
  PROPOSAL_ARGS,
  removeUnprivilegedHome,
  ringKnn,
  runIn,
  setFloat,
  snapshot,
  snapshotChanges,
  trainConfig,
  truncateFile,
  unprivileged,
  writeKnnFile,
  writeNpzFile,
} from "./_bad_input.ts";
import { HAS_SHARED, SHARED } from "./_helpers.ts";

/** The kinds of bad input, as the README's "Failure behaviour" section lists them. */
type CaseClass =
  | "features .bin"
  | "labels .meta"
  | ".npz"
  | ".npy member"
  | "pickle / .pth checkpoint"
  | "YAML config"
  | "proposal folder"
  | "sidecar: stale / interrupted / corrupt"
  | "wrong dims"
  | "NaN / Inf"
  | "k ≥ N"
  | "empty input"
  | "unwritable output"
  | "bad option";

/** One row of the table. */
interface BadCase {
  name: string;
  cls: CaseClass;
  /** stage file name without `.ts` */
  stage: string;
  args: string[];
  /** spoil the case folder (a fresh copy of the base dataset); paths are relative to it */
  setup?: (at: (rel: string) => string) => void;
  /** what the error line must name: a file as the command line (or a sidecar) spells it, or an option */
  names: string;
  /** the problem, as the error line states it */
  problem: RegExp;
  /** needs file permissions to bite: run as `nobody` when the suite runs as root */
  unprivileged?: boolean;
  /** needs the original's checkpoints in ../shared */
  needsShared?: boolean;
}

const GCN_D = `${SHARED}/fixtures/gcn_d`;
/** Copy one of the original's checkpoints into the case folder (tests read ../shared in place, never write it). */
const copyCkpt = (at: (rel: string) => string, name: string) => {
  Deno.mkdirSync(at("ckpt"), { recursive: true });
  Deno.copyFileSync(join(GCN_D, name), at(`ckpt/${name}`));
};
const KNN_ARGS = [...DATA_ARGS, "--k", String(K), "--backend", "cpu"];
const FEATS_ARGS_BASELINE = [...DATA_ARGS, "--oprefix", "bl"];
const lines = (path: string) => Deno.readTextFileSync(path).trimEnd().split("\n");
const keepLines = (path: string, n: number) => Deno.writeTextFileSync(path, lines(path).slice(0, n).join("\n") + "\n");
/** A stale knn file: the features it was built from changed by one value. */
const nudgeFeatures = (at: (rel: string) => string) => setFloat(at(FEATS), { at: 5, to: 0.123 });
const withDetect = (...extra: string[]) => [...DETECT_ARGS, ...extra];
const detectFrom = (ckpt: string) => [...DETECT_ARGS.filter((a) => a !== "--random-init"), "--load-from", ckpt];
const deoverlapArgs = ["--pred-score", "work/random.npz"];
const trainArgs = (cfg: string) => ["--config", cfg, "--work-dir", "train2", "--backend", "cpu"];

const CASES: BadCase[] = [
  // ---- features .bin ------------------------------------------------------------------------------------------
  {
    name: "knn: features truncated by 3 bytes",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => truncateFile(at(FEATS), -3),
    names: FEATS,
    problem: /not a multiple of 4·dim = 64 \(wrong --dim, or a truncated file\?\)/,
  },
  {
    name: "knn: features truncated by one whole row (labels beside have one more)",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => truncateFile(at(FEATS), -4 * 16),
    names: FEATS,
    problem: /it has 199 rows, but data\/labels\/t\.meta has 200/,
  },
  {
    name: "knn: features replaced by a foreign file (PNG bytes)",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) =>
      Deno.writeFileSync(
        at(FEATS),
        concat([Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10), new Uint8Array(100)]),
      ),
    names: FEATS,
    problem: /size 108 bytes is not a multiple of 4·dim/,
  },
  {
    name: "knn: features byte-flipped into an all-ones exponent",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => {
      const b = Deno.readFileSync(at(FEATS));
      b[4 * 40 + 3] = 0x7f, b[4 * 40 + 2] = b[4 * 40 + 2]! | 0x80;
      Deno.writeFileSync(at(FEATS), b);
    },
    names: FEATS,
    problem: /row 2 holds NaN or Inf \(column 8\)/,
  },
  {
    name: "knn: a row of zeros cannot be normalised",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => {
      for (let j = 0; j < 16; j++) setFloat(at(FEATS), { at: 7 * 16 + j, to: 0 });
    },
    names: FEATS,
    problem: /row 7 has zero norm/,
  },
  {
    name: "knn: features path is a folder",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => {
      Deno.removeSync(at(FEATS));
      Deno.mkdirSync(at(FEATS));
    },
    names: FEATS,
    problem: /not a regular file/,
  },
  {
    name: "knn: features missing",
    cls: "features .bin",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => Deno.removeSync(at(FEATS)),
    names: FEATS,
    problem: /no such file/,
  },
  {
    name: "baseline fast_hac: features truncated",
    cls: "features .bin",
    stage: "baseline",
    args: ["--method", "fast_hac", ...FEATS_ARGS_BASELINE, "--distance", "0.6"],
    setup: (at) => truncateFile(at(FEATS), -5),
    names: FEATS,
    problem: /not a multiple of 4·dim/,
  },
  {
    name: "split: features one row short of the labels",
    cls: "features .bin",
    stage: "split",
    args: [...DATA_ARGS, "--oprefix", "sp"],
    setup: (at) => truncateFile(at(FEATS), -64),
    names: FEATS,
    problem: /199 rows/,
  },
  {
    name: "detect: features truncated",
    cls: "features .bin",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => truncateFile(at(FEATS), 1000),
    names: FEATS,
    problem: /not a multiple of 4·dim/,
  },
  // ---- NaN / Inf ------------------------------------------------------------------------------------------------
  {
    name: "knn: a NaN in the features",
    cls: "NaN / Inf",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => setFloat(at(FEATS), { at: 17 * 16 + 3, to: NaN }),
    names: FEATS,
    problem: /row 17 holds NaN or Inf \(column 3\)/,
  },
  {
    name: "baseline fast_hac: +Inf in the features",
    cls: "NaN / Inf",
    stage: "baseline",
    args: ["--method", "fast_hac", ...FEATS_ARGS_BASELINE],
    setup: (at) => setFloat(at(FEATS), { at: 199 * 16 + 15, to: Infinity }),
    names: FEATS,
    problem: /row 199 holds NaN or Inf \(column 15\)/,
  },
  {
    name: "proposals: NaN distances in a kNN file",
    cls: "NaN / Inf",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => {
      const g = ringKnn(N, K);
      g.dists[5 * K + 2] = NaN;
      Deno.removeSync(at(`${KNN}.meta.json`));
      writeKnnFile(at(KNN), g);
    },
    names: KNN,
    problem: /row 5 has distance NaN/,
  },
  {
    name: "deoverlap: a NaN score",
    cls: "NaN / Inf",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) =>
      editZipMember(at("work/random.npz"), {
        member: "data.npy",
        edit: (b) => {
          const out = b.slice();
          new DataView(out.buffer).setFloat32(out.length - 8, NaN, true);
          return out;
        },
      }),
    names: "work/random.npz",
    problem: /score of proposal 18 is NaN/,
  },
  {
    name: "detect: an edge with a NaN distance in a proposal",
    cls: "NaN / Inf",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => {
      const edge = at(`${P0_PROPOSALS}/0_edge.npz`);
      const arr = readNpzArray(edge);
      (arr.data as Float64Array)[2] = NaN;
      writeNpzFile(edge, { data: arr });
    },
    names: `${P0_PROPOSALS}/0_edge.npz`,
    problem: /edge 0 has a non-finite distance/,
  },
  // ---- wrong dims -----------------------------------------------------------------------------------------------
  {
    name: "knn: --dim 32 on 16-d features (labels beside say 200 rows)",
    cls: "wrong dims",
    stage: "knn",
    args: [...KNN_ARGS, "--dim", "32"],
    names: FEATS,
    problem: /read with dim 32 it has 100 rows, but data\/labels\/t\.meta has 200 \(wrong --dim\?\)/,
  },
  {
    name: "knn: --dim 15 does not divide the file",
    cls: "wrong dims",
    stage: "knn",
    args: [...KNN_ARGS, "--dim", "15"],
    names: FEATS,
    problem: /not a multiple of 4·dim = 60/,
  },
  {
    name: "detect: the features' sidecar records another dim",
    cls: "wrong dims",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => Deno.writeTextFileSync(at(`${FEATS}.meta.json`), JSON.stringify({ stage: "synth", dim: 32 })),
    names: FEATS,
    problem: /its sidecar records dim 32, but it is read with dim 16/,
  },
  {
    name: "proposals: --dim 8 (labels beside say 200 rows)",
    cls: "wrong dims",
    stage: "proposals",
    args: [...PROPOSAL_ARGS, "--dim", "8", "--force"],
    names: FEATS,
    problem: /read with dim 8 it has 400 rows/,
  },
  {
    name: "detect: the original's 256-d GCN-D checkpoint on 16-d features",
    cls: "wrong dims",
    stage: "detect",
    args: detectFrom("ckpt/gcn_d_zip.pth"),
    setup: (at) => copyCkpt(at, "gcn_d_zip.pth"),
    names: "ckpt/gcn_d_zip.pth",
    problem: /model expects 256-d features, but the features are 16-d/,
    needsShared: true,
  },
  {
    name: "train: the original's 256-d checkpoint as --load-from for a 16-d config",
    cls: "wrong dims",
    stage: "train",
    args: [...trainArgs("configs/train.yaml"), "--load-from", "ckpt/gcn_d_legacy.pth"],
    setup: (at) => copyCkpt(at, "gcn_d_legacy.pth"),
    names: "ckpt/gcn_d_legacy.pth",
    problem: /model expects 256-d features, but the features are 16-d/,
    needsShared: true,
  },
  {
    name: "detect: a config whose test_data feature_dim differs from the model's",
    cls: "wrong dims",
    stage: "detect",
    args: ["--config", "configs/d.yaml", "--random-init", "--work-dir", "work2", "--backend", "cpu"],
    setup: (at) =>
      Deno.writeTextFileSync(
        at("configs/d.yaml"),
        trainConfig().replace("train_data:", "test_data:") + "  feature_dim: 32\n",
      ),
    names: "configs/d.yaml",
    problem: /'feature_dim' 32 differs from the model's 16/,
  },
  // ---- labels .meta ---------------------------------------------------------------------------------------------
  {
    name: "evaluate: a garbage line in the ground truth",
    cls: "labels .meta",
    stage: "evaluate",
    args: ["--gt-labels", LABELS, "--pred-labels", "work/pred_labels.txt", "--json", "out/m.json"],
    setup: (at) => {
      const l = lines(at(LABELS));
      l[4] = "abc";
      Deno.writeTextFileSync(at(LABELS), l.join("\n") + "\n");
    },
    names: LABELS,
    problem: /line 5 is not an integer label: 'abc'/,
  },
  {
    name: "evaluate: a byte-flipped prediction",
    cls: "labels .meta",
    stage: "evaluate",
    args: ["--gt-labels", LABELS, "--pred-labels", "work/pred_labels.txt", "--json", "out/m.json"],
    setup: (at) => flipByte(at("work/pred_labels.txt"), 0, { xor: 0xff }),
    names: "work/pred_labels.txt",
    problem: /line 1 is not an integer label/,
  },
  {
    name: "evaluate: a truncated prediction",
    cls: "labels .meta",
    stage: "evaluate",
    args: ["--gt-labels", LABELS, "--pred-labels", "work/pred_labels.txt", "--json", "out/m.json"],
    setup: (at) => keepLines(at("work/pred_labels.txt"), 120),
    names: "work/pred_labels.txt",
    problem: /has 120 labels but data\/labels\/t\.meta has 200 \(use --pad-singletons/,
  },
  {
    name: "evaluate: a foreign file (a zip archive) as ground truth",
    cls: "labels .meta",
    stage: "evaluate",
    args: ["--gt-labels", LABELS, "--pred-labels", "work/pred_labels.txt"],
    setup: (at) => Deno.copyFileSync(at(KNN), at(LABELS)),
    names: LABELS,
    problem: /line 1 is not an integer label/,
  },
  {
    name: "detect: ground truth shorter than the features",
    cls: "labels .meta",
    stage: "detect",
    args: withDetect("--label-path", "short.meta"),
    setup: (at) => Deno.writeTextFileSync(at("short.meta"), lines(at(LABELS)).slice(0, 150).join("\n") + "\n"),
    names: "short.meta",
    problem: /has 150 labels but data\/features\/t\.bin has 200 rows/,
  },
  {
    name: "baseline: ground truth shorter than the result",
    cls: "labels .meta",
    stage: "baseline",
    args: ["--method", "knn_dbscan", ...FEATS_ARGS_BASELINE, "--knn", String(K), "--gt-labels", "short.meta"],
    setup: (at) => Deno.writeTextFileSync(at("short.meta"), lines(at(LABELS)).slice(0, 150).join("\n") + "\n"),
    names: "short.meta",
    problem: /has 150 labels/,
  },
  {
    name: "deoverlap: ground truth shorter than the instances",
    cls: "labels .meta",
    stage: "deoverlap",
    args: [...deoverlapArgs, "--gt-labels", "short.meta"],
    setup: (at) => Deno.writeTextFileSync(at("short.meta"), lines(at(LABELS)).slice(0, 150).join("\n") + "\n"),
    names: "short.meta",
    problem: /has 150 labels/,
  },
  {
    name: "upper-bound: ground truth shorter than the proposals' nodes",
    cls: "labels .meta",
    stage: "upper_bound",
    args: ["--cluster-path", P0, "--gt-labels", "short.meta", "--output-folder", "ub"],
    setup: (at) => Deno.writeTextFileSync(at("short.meta"), lines(at(LABELS)).slice(0, 150).join("\n") + "\n"),
    names: "short.meta",
    problem: /has 150 labels/,
  },
  {
    name: "report: a prediction shorter than the ground truth, without --pad-singletons",
    cls: "labels .meta",
    stage: "report",
    args: ["--run-dir", "run", "--gt-labels", LABELS, "--method", "X=short.txt"],
    setup: (at) => Deno.writeTextFileSync(at("short.txt"), "0\n1\n2\n"),
    names: "short.txt",
    problem: /has 3 labels but data\/labels\/t\.meta has 200/,
  },
  {
    name: "train: the config's label file is one line short",
    cls: "labels .meta",
    stage: "train",
    args: trainArgs("configs/t.yaml"),
    setup: (at) => {
      Deno.writeTextFileSync(at("data/short.meta"), lines(at(LABELS)).slice(0, 199).join("\n") + "\n");
      Deno.writeTextFileSync(at("configs/t.yaml"), trainConfig().replace("labels/t.meta", "short.meta"));
    },
    names: "data/short.meta",
    problem: /has 199 labels but data\/features\/t\.bin has 200 rows/,
  },
  {
    name: "split: a non-integer label",
    cls: "labels .meta",
    stage: "split",
    args: [...DATA_ARGS, "--oprefix", "sp"],
    setup: (at) => {
      const l = lines(at(LABELS));
      l[2] = "3.5";
      Deno.writeTextFileSync(at(LABELS), l.join("\n") + "\n");
    },
    names: LABELS,
    problem: /line 3 is not an integer label: '3\.5'/,
  },
  {
    name: "proposals --sv-labels: the iteration-0 labels truncated",
    cls: "labels .meta",
    stage: "proposals",
    args: [...DATA_ARGS, "--sv-labels", `${P0}/pred_labels.txt`, "--k", "3", "--backend", "cpu"],
    setup: (at) => keepLines(at(`${P0}/pred_labels.txt`), 100),
    names: `${P0}/pred_labels.txt`,
    problem: /has 100 labels but data\/features\/t\.bin has 200 rows/,
  },
  // ---- .npz -----------------------------------------------------------------------------------------------------
  {
    name: "proposals: the kNN file truncated",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => truncateFile(at(KNN), 4000),
    names: KNN,
    problem: /corrupt or truncated zip archive/,
  },
  {
    name: "proposals: the kNN file byte-flipped in its deflated data",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => flipByte(at(KNN), 2000, { xor: 0x5a }),
    names: KNN,
    // the streaming reader may meet a spoiled value before the CRC at the end of the member
    problem: /corrupt or truncated zip archive \(member data\.npy|has neighbour id|has distance/,
  },
  {
    name: "proposals: a foreign file (text) as the kNN file",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => Deno.writeTextFileSync(at(KNN), "this is not a zip archive, just some text\n".repeat(3)),
    names: KNN,
    problem: /corrupt or truncated zip archive \(no end-of-central-directory record\)/,
  },
  {
    name: "proposals: a neighbour id outside the rows",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => {
      const g = ringKnn(N, K);
      g.nbrs[3] = 999;
      Deno.removeSync(at(`${KNN}.meta.json`));
      writeKnnFile(at(KNN), g);
    },
    names: KNN,
    problem: /row 0 has neighbour id 999, outside 0\.\.199/,
  },
  {
    name: "proposals: a kNN array of the wrong shape",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => {
      Deno.removeSync(at(`${KNN}.meta.json`));
      writeNpzFile(at(KNN), { data: { dtype: "f8", shape: [N, 3, K], data: new Float64Array(N * 3 * K) } });
    },
    names: KNN,
    problem: /kNN array has shape \(200, 3, 10\), expected \(N, 2, k\)/,
  },
  {
    name: "proposals: a kNN file of another dataset (150 rows)",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => {
      Deno.removeSync(at(`${KNN}.meta.json`));
      writeKnnFile(at(KNN), ringKnn(150, K));
    },
    names: KNN,
    problem: /kNN graph has 150 rows but data\/features\/t\.bin has 200/,
  },
  {
    name: "proposals: a kNN file with fewer neighbours than its name says",
    cls: ".npz",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => {
      Deno.removeSync(at(`${KNN}.meta.json`));
      writeKnnFile(at(KNN), ringKnn(N, 5));
    },
    names: KNN,
    problem: /has 5 neighbours per row, fewer than k = 10/,
  },
  {
    name: "deoverlap: the scores file truncated",
    cls: ".npz",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) => truncateFile(at("work/random.npz"), -30),
    names: "work/random.npz",
    problem: /corrupt or truncated zip archive/,
  },
  {
    name: "deoverlap: 2-D scores",
    cls: ".npz",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) =>
      writeNpzFile(at("work/random.npz"), { data: { dtype: "f4", shape: [10, 2], data: new Float32Array(20) } }),
    names: "work/random.npz",
    problem: /'data' must be 1-D scores, got \(10, 2\)/,
  },
  {
    name: "deoverlap: fewer scores than proposals",
    cls: ".npz",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) =>
      editZipMember(at("work/random.npz"), {
        member: "data.npy",
        edit: (b) => {
          const data = (parseNpy(b, "data.npy").data as Float32Array).slice(1);
          return concat([npyHeader("<f4", [data.length]), new Uint8Array(data.buffer)]);
        },
      }),
    names: P0_PROPOSALS,
    problem: /19 scores but 20 proposals/,
  },
  {
    name: "upper-bound: a cluster list with a negative index",
    cls: ".npz",
    stage: "upper_bound",
    args: ["--cluster-path", "c.npz", "--gt-labels", LABELS, "--output-folder", "ub"],
    setup: (at) =>
      writeNpzFile(at("c.npz"), { data: { dtype: "i8", shape: [2, 2], data: BigInt64Array.of(0n, 1n, 2n, -3n) } }),
    names: "c.npz",
    problem: /holds bad index -3/,
  },
  // ---- .npy members ---------------------------------------------------------------------------------------------
  {
    name: "proposals: the kNN file's data.npy lost its magic",
    cls: ".npy member",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => editZipMember(at(KNN), { member: "data.npy", edit: (b) => (b[1] = 0x00, b) }),
    names: `${KNN}:data`,
    problem: /not a valid \.npy array \(missing \\x93NUMPY magic\)/,
  },
  {
    name: "proposals: the kNN file's data.npy has an unsupported dtype",
    cls: ".npy member",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) =>
      editZipMember(at(KNN), { member: "data.npy", edit: (b) => patchText(b, { find: "'<f8'", repl: "'<c8'" }) }),
    names: `${KNN}:data`,
    problem: /unsupported dtype '<c8'/,
  },
  {
    name: "proposals: the kNN file's data.npy claims more rows than it holds",
    cls: ".npy member",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) =>
      editZipMember(at(KNN), {
        member: "data.npy",
        edit: (b) => patchText(b, { find: "(200, 2, 10)", repl: "(900, 2, 10)" }),
      }),
    names: `${KNN}:data`,
    problem: /data truncated/,
  },
  {
    name: "proposals: the kNN file's data.npy is in Fortran order",
    cls: ".npy member",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) =>
      editZipMember(at(KNN), {
        member: "data.npy",
        edit: (b) => patchText(b, { find: "'fortran_order': False", repl: "'fortran_order': True " }),
      }),
    names: `${KNN}:data`,
    problem: /Fortran-order arrays are not supported/,
  },
  {
    name: "upper-bound: a cluster list whose .npy header is cut short",
    cls: ".npy member",
    stage: "upper_bound",
    args: ["--cluster-path", "c.npz", "--gt-labels", LABELS, "--output-folder", "ub"],
    setup: (at) => {
      writeNpzFile(at("c.npz"), { data: { dtype: "i8", shape: [1, 2], data: BigInt64Array.of(0n, 1n) } }, {
        compress: false,
      });
      editZipMember(at("c.npz"), { member: "data.npy", edit: (b) => b.slice(0, 30) });
    },
    names: "c.npz:data",
    problem: /not a valid \.npy array \(truncated header\)/,
  },
  {
    name: "deoverlap: the scores' data.npy loses its last bytes",
    cls: ".npy member",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) => editZipMember(at("work/random.npz"), { member: "data.npy", edit: (b) => b.slice(0, b.length - 6) }),
    names: "work/random.npz:data",
    problem: /data truncated/,
  },
  // ---- pickle / .pth checkpoints --------------------------------------------------------------------------------
  {
    name: "deoverlap: the scores' meta pickle names os.system",
    cls: "pickle / .pth checkpoint",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) => {
      Deno.removeSync(at("work/random.npz.meta.json"));
      const pickle = concat([
        Uint8Array.of(0x80, 2, 0x63),
        new TextEncoder().encode("os\nsystem\n"),
        Uint8Array.of(0x2e),
      ]);
      editZipMember(at("work/random.npz"), { member: "meta.npy", edit: () => concat([npyHeader("|O", []), pickle]) });
    },
    names: "work/random.npz:meta",
    problem: /pickle refers to os\.system, which is not an allowed type \(no code is executed\)/,
  },
  {
    name: "detect: the original's zip checkpoint truncated",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("ckpt/gcn_d_zip.pth"),
    setup: (at) => {
      copyCkpt(at, "gcn_d_zip.pth");
      truncateFile(at("ckpt/gcn_d_zip.pth"), 300_000);
    },
    names: "ckpt/gcn_d_zip.pth",
    problem: /corrupt or truncated zip archive/,
    needsShared: true,
  },
  {
    name: "detect: the original's legacy checkpoint with a byte-flipped global name",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("ckpt/gcn_d_legacy.pth"),
    setup: (at) => {
      copyCkpt(at, "gcn_d_legacy.pth");
      const p = at("ckpt/gcn_d_legacy.pth");
      Deno.writeFileSync(p, patchText(Deno.readFileSync(p), { find: "OrderedDict\n", repl: "OrderedDicx\n" }));
    },
    names: "ckpt/gcn_d_legacy.pth",
    problem: /pickle refers to collections\.OrderedDicx, which is not an allowed type/,
    needsShared: true,
  },
  {
    name: "detect: the original's legacy checkpoint cut inside its storages",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("ckpt/gcn_d_legacy.pth"),
    setup: (at) => {
      copyCkpt(at, "gcn_d_legacy.pth");
      truncateFile(at("ckpt/gcn_d_legacy.pth"), -1000);
    },
    names: "ckpt/gcn_d_legacy.pth",
    problem: /truncated checkpoint \(storage \S+ needs \d+ bytes\)/,
    needsShared: true,
  },
  {
    name: "detect: the zip checkpoint's pickle calls a function off the allow-list",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("ckpt/gcn_d_zip.pth"),
    setup: (at) => {
      copyCkpt(at, "gcn_d_zip.pth");
      editZipMember(at("ckpt/gcn_d_zip.pth"), {
        member: "data.pkl",
        edit: (b) => patchText(b, { find: "_rebuild_tensor_v2", repl: "_rebuild_tensor_v9" }),
      });
    },
    names: "ckpt/gcn_d_zip.pth",
    problem: /pickle refers to torch\._utils\._rebuild_tensor_v9, which is not an allowed type/,
    needsShared: true,
  },
  {
    name: "detect: a foreign file (the features) as checkpoint",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("ckpt/x.pth"),
    setup: (at) => {
      Deno.mkdirSync(at("ckpt"));
      Deno.copyFileSync(at(FEATS), at("ckpt/x.pth"));
    },
    names: "ckpt/x.pth",
    problem: /not a PyTorch checkpoint \(neither zip nor legacy pickle format\)/,
  },
  {
    name: "detect: our checkpoint truncated",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("train/latest.npz"),
    setup: (at) => truncateFile(at("train/latest.npz"), -100),
    names: "train/latest.npz",
    problem: /corrupt or truncated zip archive/,
  },
  {
    name: "detect: our checkpoint's config is not JSON",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("train/latest.npz"),
    setup: (at) =>
      editZipMember(at("train/latest.npz"), {
        member: "config.npy",
        edit: (b) => patchText(b, { find: '{"format"', repl: '["format"' }),
      }),
    names: "train/latest.npz",
    problem: /'config' is not valid JSON/,
  },
  {
    name: "detect: our checkpoint lost a weight",
    cls: "pickle / .pth checkpoint",
    stage: "detect",
    args: detectFrom("train/latest.npz"),
    setup: (at) => editZipMember(at("train/latest.npz"), { member: "classifier_bias.npy", edit: () => null }),
    names: "train/latest.npz",
    problem: /state dict does not match GCN-D .*missing classifier\.bias/,
  },
  {
    name: "train: --resume-from a checkpoint that does not exist",
    cls: "pickle / .pth checkpoint",
    stage: "train",
    args: [...trainArgs("configs/train.yaml"), "--resume-from", "train/nope.npz"],
    names: "train/nope.npz",
    problem: /no such file/,
  },
  // ---- YAML configs ---------------------------------------------------------------------------------------------
  {
    name: "proposals --config: invalid YAML",
    cls: "YAML config",
    stage: "proposals",
    args: [...DATA_ARGS, "--config", "configs/p.yaml"],
    setup: (at) => Deno.writeTextFileSync(at("configs/p.yaml"), "proposal_params: [{k: 10, th_knn: 0.5\n"),
    names: "configs/p.yaml",
    problem: /invalid YAML/,
  },
  {
    name: "proposals --config: a misspelt key",
    cls: "YAML config",
    stage: "proposals",
    args: [...DATA_ARGS, "--config", "configs/p.yaml"],
    setup: (at) => Deno.writeTextFileSync(at("configs/p.yaml"), "proposal_parms:\n  - {k: 10, th_knn: 0.5}\n"),
    names: "configs/p.yaml",
    problem: /unknown config key 'proposal_parms'/,
  },
  {
    name: "proposals --config: th_knn outside [0, 1]",
    cls: "YAML config",
    stage: "proposals",
    args: [...DATA_ARGS, "--config", "configs/p.yaml"],
    setup: (at) => Deno.writeTextFileSync(at("configs/p.yaml"), "proposal_params:\n  - {k: 10, th_knn: 1.5}\n"),
    names: "configs/p.yaml",
    problem: /th_knn must be a similarity in \[0, 1\], got 1\.5/,
  },
  {
    name: "train --config: truncated mid-mapping",
    cls: "YAML config",
    stage: "train",
    args: trainArgs("configs/t.yaml"),
    setup: (at) =>
      Deno.writeTextFileSync(at("configs/t.yaml"), trainConfig().slice(0, trainConfig().indexOf("hidden_dims") + 5)),
    names: "configs/t.yaml",
    problem: /invalid YAML/,
  },
  {
    name: "train --config: a foreign file (a zip archive)",
    cls: "YAML config",
    stage: "train",
    args: trainArgs("configs/t.yaml"),
    setup: (at) => Deno.copyFileSync(at(KNN), at("configs/t.yaml")),
    names: "configs/t.yaml",
    problem: /invalid YAML|top level must be a mapping/,
  },
  {
    name: "train --config: a byte-flipped key",
    cls: "YAML config",
    stage: "train",
    args: trainArgs("configs/t.yaml"),
    setup: (at) => Deno.writeTextFileSync(at("configs/t.yaml"), trainConfig().replace("total_epochs", "total_epochz")),
    names: "configs/t.yaml",
    problem: /unknown config key 'total_epochz'/,
  },
  {
    name: "train --config: an lr policy the original does not have",
    cls: "YAML config",
    stage: "train",
    args: trainArgs("configs/t.yaml"),
    setup: (at) => Deno.writeTextFileSync(at("configs/t.yaml"), trainConfig("lr_config: {policy: cosine}")),
    names: "configs/t.yaml",
    problem: /lr_config\.policy must be 'step'/,
  },
  {
    name: "detect --config: missing file",
    cls: "YAML config",
    stage: "detect",
    args: ["--config", "configs/none.yaml", "--random-init", "--backend", "cpu"],
    names: "configs/none.yaml",
    problem: /no such file/,
  },
  // ---- proposal folders -----------------------------------------------------------------------------------------
  {
    name: "detect: the proposal folder does not exist",
    cls: "proposal folder",
    stage: "detect",
    args: [...DETECT_ARGS.slice(0, 4), "--proposal-folders", "data/nope/proposals", ...DETECT_ARGS.slice(6)],
    names: "data/nope/proposals",
    problem: /proposal folder does not exist/,
  },
  {
    name: "detect: an edge file is missing",
    cls: "proposal folder",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => Deno.removeSync(at(`${P0_PROPOSALS}/3_edge.npz`)),
    names: P0_PROPOSALS,
    problem: /20 node files but 19 edge files/,
  },
  {
    name: "detect: a proposal more than the sidecar records",
    cls: "proposal folder",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => {
      Deno.copyFileSync(at(`${P0_PROPOSALS}/0_node.npz`), at(`${P0_PROPOSALS}/99_node.npz`));
      Deno.copyFileSync(at(`${P0_PROPOSALS}/0_edge.npz`), at(`${P0_PROPOSALS}/99_edge.npz`));
    },
    names: P0_PROPOSALS,
    problem: /holds 21 proposals but .*pred_labels\.txt's sidecar records 20/,
  },
  {
    name: "detect: a node file truncated",
    cls: "proposal folder",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => truncateFile(at(`${P0_PROPOSALS}/4_node.npz`), 60),
    names: `${P0_PROPOSALS}/4_node.npz`,
    problem: /corrupt or truncated zip archive/,
  },
  {
    name: "detect: a node outside the feature rows",
    cls: "proposal folder",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) =>
      writeNpzFile(at(`${P0_PROPOSALS}/0_node.npz`), {
        data: { dtype: "i8", shape: [3], data: BigInt64Array.of(0n, 1n, 500n) },
      }),
    names: `${P0_PROPOSALS}/0_node.npz`,
    problem: /node 500 is outside the 200 feature rows/,
  },
  {
    name: "detect: a one-node proposal",
    cls: "proposal folder",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) =>
      writeNpzFile(at(`${P0_PROPOSALS}/2_node.npz`), { data: { dtype: "i8", shape: [1], data: BigInt64Array.of(7n) } }),
    names: `${P0_PROPOSALS}/2_node.npz`,
    problem: /a proposal needs at least 2 nodes, this one has 1/,
  },
  {
    name: "upper-bound: a node file without its edge file (renamed)",
    cls: "proposal folder",
    stage: "upper_bound",
    args: ["--cluster-path", P0, "--gt-labels", LABELS, "--output-folder", "ub"],
    setup: (at) => Deno.renameSync(at(`${P0_PROPOSALS}/5_edge.npz`), at(`${P0_PROPOSALS}/5x_edge.npz`)),
    names: `${P0_PROPOSALS}/5_node.npz`,
    problem: /has no matching edge file/,
  },
  {
    name: "upper-bound: a foreign folder (kNN files as proposals)",
    cls: "proposal folder",
    stage: "upper_bound",
    args: ["--cluster-path", "foreign", "--gt-labels", LABELS, "--output-folder", "ub"],
    setup: (at) => {
      Deno.mkdirSync(at("foreign"));
      Deno.copyFileSync(at(KNN), at("foreign/0_node.npz"));
      Deno.copyFileSync(at(KNN), at("foreign/0_edge.npz"));
    },
    names: "foreign/0_node.npz",
    problem: /node array must be 1-D, got \(200, 2, 10\)/,
  },
  {
    name: "deoverlap: --proposal-folders names a file",
    cls: "proposal folder",
    stage: "deoverlap",
    args: [...deoverlapArgs, "--proposal-folders", FEATS],
    names: FEATS,
    problem: /proposal folder does not exist/,
  },
  // ---- sidecars: stale, interrupted, corrupt --------------------------------------------------------------------
  {
    name: "proposals: the kNN file's sidecar is truncated JSON",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => truncateFile(at(`${KNN}.meta.json`), 40),
    names: `${KNN}.meta.json`,
    problem: /not valid JSON \(truncated or corrupt sidecar\)/,
  },
  {
    name: "proposals: the kNN file's run was interrupted (in_progress sidecar)",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => Deno.writeTextFileSync(at(`${KNN}.meta.json`), JSON.stringify({ stage: "knn", in_progress: true })),
    names: KNN,
    problem: /its run was interrupted before it finished/,
  },
  {
    name: "proposals: the kNN file was built from features that changed since",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: nudgeFeatures,
    names: FEATS,
    problem: /was built from data\/features\/t\.bin, which has changed since; rebuild it/,
  },
  {
    name: "baseline knn_dbscan: the kNN file's run was interrupted",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "baseline",
    args: ["--method", "knn_dbscan", ...FEATS_ARGS_BASELINE, "--knn", String(K)],
    setup: (at) => Deno.writeTextFileSync(at(`${KNN}.meta.json`), JSON.stringify({ stage: "knn", in_progress: true })),
    names: KNN,
    problem: /its run was interrupted before it finished/,
  },
  {
    name: "detect: the proposal folder's run was interrupted",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) =>
      Deno.writeTextFileSync(
        at(`${P0}/pred_labels.txt.meta.json`),
        JSON.stringify({ stage: "proposals", in_progress: true }),
      ),
    names: `${P0}/pred_labels.txt`,
    problem: /its run was interrupted before it finished; rerun the proposals stage/,
  },
  {
    name: "detect: proposals built from other features",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "detect",
    args: DETECT_ARGS,
    setup: nudgeFeatures,
    names: FEATS,
    problem: /was built from data\/features\/t\.bin, which has changed since; rerun the proposals stage/,
  },
  {
    name: "detect: the proposal folder's sidecar is not an object",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "detect",
    args: DETECT_ARGS,
    setup: (at) => Deno.writeTextFileSync(at(`${P0}/pred_labels.txt.meta.json`), "[1, 2]\n"),
    names: `${P0}/pred_labels.txt.meta.json`,
    problem: /not a sidecar \(expected a JSON object\)/,
  },
  {
    name: "train: proposals built from other features",
    cls: "sidecar: stale / interrupted / corrupt",
    stage: "train",
    args: trainArgs("configs/train.yaml"),
    setup: nudgeFeatures,
    names: FEATS,
    problem: /which has changed since/,
  },
  // ---- k ≥ N ----------------------------------------------------------------------------------------------------
  {
    name: "knn: k = N",
    cls: "k ≥ N",
    stage: "knn",
    args: [...DATA_ARGS, "--k", String(N), "--backend", "cpu"],
    names: FEATS,
    problem: /k = 200 must be smaller than its 200 rows/,
  },
  {
    name: "knn: k = 5·N",
    cls: "k ≥ N",
    stage: "knn",
    args: [...DATA_ARGS, "--k", String(5 * N), "--backend", "cpu"],
    names: FEATS,
    problem: /k = 1000 must be smaller than its 200 rows/,
  },
  {
    name: "proposals: k > N (the kNN file must be built)",
    cls: "k ≥ N",
    stage: "proposals",
    args: [...DATA_ARGS, "--k", "250", "--th-knn", "0.5", "--backend", "cpu"],
    names: FEATS,
    problem: /k = 250 must be smaller than its 200 rows/,
  },
  {
    name: "baseline knn_dbscan: k > N",
    cls: "k ≥ N",
    stage: "baseline",
    args: ["--method", "knn_dbscan", ...FEATS_ARGS_BASELINE, "--knn", "300"],
    names: FEATS,
    problem: /k = 300 must be smaller than its 200 rows/,
  },
  {
    name: "proposals --sv-labels: k ≥ the number of super vertices",
    cls: "k ≥ N",
    stage: "proposals",
    args: [...DATA_ARGS, "--sv-labels", `${P0}/pred_labels.txt`, "--k", "50", "--backend", "cpu"],
    names: `${P0}/pred_labels.txt`,
    problem: /only 20 super vertices, need more than k = 50/,
  },
  // ---- empty inputs ---------------------------------------------------------------------------------------------
  {
    name: "knn: an empty features file",
    cls: "empty input",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => Deno.writeFileSync(at(FEATS), new Uint8Array(0)),
    names: FEATS,
    problem: /feature file is empty/,
  },
  {
    name: "evaluate: an empty ground truth",
    cls: "empty input",
    stage: "evaluate",
    args: ["--gt-labels", LABELS, "--pred-labels", "work/pred_labels.txt"],
    setup: (at) => Deno.writeTextFileSync(at(LABELS), ""),
    names: LABELS,
    problem: /label file is empty/,
  },
  {
    name: "report: an empty prediction",
    cls: "empty input",
    stage: "report",
    args: ["--run-dir", "run", "--gt-labels", LABELS, "--method", "X=empty.txt"],
    setup: (at) => Deno.writeTextFileSync(at("empty.txt"), ""),
    names: "empty.txt",
    problem: /label file is empty/,
  },
  {
    name: "proposals: an empty kNN file",
    cls: "empty input",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => Deno.writeFileSync(at(KNN), new Uint8Array(0)),
    names: KNN,
    problem: /too short for an end-of-central-directory record/,
  },
  {
    name: "proposals: a kNN archive with no arrays",
    cls: "empty input",
    stage: "proposals",
    args: PROPOSAL_ARGS,
    setup: (at) => writeNpzFile(at(KNN), {}),
    names: KNN,
    problem: /no array 'data' \(has: none\)/,
  },
  {
    name: "deoverlap: no scores",
    cls: "empty input",
    stage: "deoverlap",
    args: deoverlapArgs,
    setup: (at) => editZipMember(at("work/random.npz"), { member: "data.npy", edit: () => npyHeader("<f4", [0]) }),
    names: P0_PROPOSALS,
    problem: /0 scores but 20 proposals/,
  },
  {
    name: "detect: an empty proposal folder",
    cls: "empty input",
    stage: "detect",
    args: [...DETECT_ARGS.slice(0, 4), "--proposal-folders", "emptyp", ...DETECT_ARGS.slice(6)],
    setup: (at) => Deno.mkdirSync(at("emptyp")),
    names: "emptyp",
    problem: /proposal folder holds no \*_node\.npz files/,
  },
  {
    name: "proposals --config: an empty file",
    cls: "empty input",
    stage: "proposals",
    args: [...DATA_ARGS, "--config", "configs/p.yaml"],
    setup: (at) => Deno.writeTextFileSync(at("configs/p.yaml"), ""),
    names: "configs/p.yaml",
    problem: /proposal_params: must be a non-empty list/,
  },
  {
    name: "train --config: an empty file",
    cls: "empty input",
    stage: "train",
    args: trainArgs("configs/t.yaml"),
    setup: (at) => Deno.writeTextFileSync(at("configs/t.yaml"), ""),
    names: "configs/t.yaml",
    problem: /has no train_data section/,
  },
  // ---- unwritable outputs ---------------------------------------------------------------------------------------
  {
    name: "knn: the kNN folder is read-only",
    cls: "unwritable output",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => {
      Deno.removeSync(at(KNN));
      Deno.removeSync(at(`${KNN}.meta.json`));
    },
    names: KNN,
    problem: /cannot write data\/knns\/t\/faiss_k_10\.npz here \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "proposals --force: the parameter folder is read-only",
    cls: "unwritable output",
    stage: "proposals",
    args: [...PROPOSAL_ARGS, "--force"],
    names: `${P0}/pred_labels.txt`,
    problem: /permission denied/,
    unprivileged: true,
  },
  {
    name: "detect: the work folder cannot be created",
    cls: "unwritable output",
    stage: "detect",
    args: DETECT_ARGS,
    names: "work2",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "baseline: the output root cannot be created",
    cls: "unwritable output",
    stage: "baseline",
    args: ["--method", "knn_dbscan", ...FEATS_ARGS_BASELINE, "--knn", String(K)],
    names: "bl",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "deoverlap: the scores' folder is read-only",
    cls: "unwritable output",
    stage: "deoverlap",
    args: deoverlapArgs,
    names: "work/random_th_iou_1.0_pos_-1.0_pred_label.txt",
    problem: /permission denied/,
    unprivileged: true,
  },
  {
    name: "upper-bound: the output folder cannot be created",
    cls: "unwritable output",
    stage: "upper_bound",
    args: ["--cluster-path", P0, "--gt-labels", LABELS, "--output-folder", "ub"],
    names: "ub",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "evaluate: --json into a read-only folder",
    cls: "unwritable output",
    stage: "evaluate",
    args: ["--gt-labels", LABELS, "--pred-labels", "work/pred_labels.txt", "--json", "work/m.json"],
    names: "work/m.json",
    problem: /permission denied/,
    unprivileged: true,
  },
  {
    name: "report: the run folder cannot be created",
    cls: "unwritable output",
    stage: "report",
    args: ["--run-dir", "run", "--gt-labels", LABELS, "--method", "X=work/pred_labels.txt"],
    names: "run",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "split: the output root cannot be created",
    cls: "unwritable output",
    stage: "split",
    args: [...DATA_ARGS, "--oprefix", "sp"],
    names: "sp",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "train: the work folder cannot be created",
    cls: "unwritable output",
    stage: "train",
    args: trainArgs("configs/train.yaml"),
    names: "train2",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "synth: the prefix cannot be created",
    cls: "unwritable output",
    stage: "synth",
    args: ["--prefix", "syn", "--ids", "3", "--dim", "16"],
    names: "syn",
    problem: /cannot create folder \(permission denied\)/,
    unprivileged: true,
  },
  {
    name: "knn: a file stands where the kNN folder goes (any user)",
    cls: "unwritable output",
    stage: "knn",
    args: KNN_ARGS,
    setup: (at) => {
      Deno.removeSync(at("data/knns"), { recursive: true });
      Deno.writeTextFileSync(at("data/knns"), "a file\n");
    },
    names: "data/knns",
    problem: /a parent of this folder is a file|exists and is not a folder/,
  },
  {
    name: "detect: --work-dir is an existing file (any user)",
    cls: "unwritable output",
    stage: "detect",
    args: [...DETECT_ARGS.slice(0, -4), "--work-dir", LABELS, "--backend", "cpu"],
    names: LABELS,
    problem: /exists and is not a folder|a parent of this folder is a file/,
  },
  // ---- bad options ----------------------------------------------------------------------------------------------
  {
    name: "proposals: --th-knn outside [0, 1]",
    cls: "bad option",
    stage: "proposals",
    args: [...PROPOSAL_ARGS, "--th-knn", "1.5"],
    names: "th_knn",
    problem: /must be a similarity in \[0, 1\], got 1\.5/,
  },
  {
    name: "detect: neither --load-from nor --random-init",
    cls: "bad option",
    stage: "detect",
    args: DETECT_ARGS.filter((a) => a !== "--random-init"),
    names: "--load-from",
    problem: /no checkpoint given/,
  },
  {
    name: "knn: --k 0",
    cls: "bad option",
    stage: "knn",
    args: [...DATA_ARGS, "--k", "0"],
    names: "--k",
    problem: /must be a positive integer, got 0/,
  },
];

/** Run `work` over `items` with at most `limit` at a time, keeping the order of results. */
async function pool<T, R>(items: T[], work: (item: T) => Promise<R>, options: { limit: number }): Promise<R[]> {
  const { limit } = options;
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  }));
  return out;
}

/** Run one case in its own copy of the base dataset; returns what is wrong with the outcome (empty: passed). */
async function runCase(c: BadCase, where: { base: string; dir: string }): Promise<string[]> {
  const { dir } = where;
  copyTree(where.base, dir);
  const at = (rel: string) => join(dir, rel);
  c.setup?.(at);
  if (c.unprivileged) openForReading(dir);
  const before = snapshot(dir);
  const r = await runIn(c.stage, c.args, { cwd: dir, unprivileged: c.unprivileged });
  const after = snapshot(dir);
  const wrong: string[] = [];
  const one = oneErrorLine(r);
  if ("problem" in one) wrong.push(one.problem);
  else {
    if (!one.line.includes(c.names)) wrong.push(`the error does not name ${c.names}`);
    if (!c.problem.test(one.line)) wrong.push(`the error does not match ${c.problem}`);
  }
  wrong.push(...snapshotChanges(before, after));
  if (wrong.length) wrong.push(`stderr: ${r.stderr.trim().split("\n").slice(-6).join("\n        ")}`);
  return wrong;
}

Deno.test(`bad input: ${CASES.length} cases over every stage — exit 2, one error line naming the file, nothing written`, async () => {
  const root = Deno.makeTempDirSync({ prefix: "ltc-bad-input-" });
  Deno.chmodSync(root, 0o755);
  const base = join(root, "base");
  await buildBase(base);
  const canDrop = await unprivileged();
  const skipped: string[] = [];
  const runnable = CASES.filter((c) => {
    if (c.needsShared && !HAS_SHARED) return skipped.push(`${c.name} (needs ${SHARED})`), false;
    if (c.unprivileged && !canDrop.ok) return skipped.push(`${c.name} (${canDrop.ok ? "" : canDrop.why})`), false;
    return true;
  });
  const t0 = performance.now();
  const results = await pool(
    runnable.map((c, i) => ({ c, i })),
    ({ c, i }) => runCase(c, { base, dir: join(root, `case_${i}`) }),
    { limit: 2 },
  );
  const failures = results.flatMap((wrong, i) =>
    wrong.length ? [`✗ ${runnable[i]!.name}\n    ${wrong.join("\n    ")}`] : []
  );
  const byClass = new Map<string, number>();
  for (const c of runnable) byClass.set(c.cls, (byClass.get(c.cls) ?? 0) + 1);
  console.error(
    `bad input: ${runnable.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s — ` +
      [...byClass].map(([k, v]) => `${k} ${v}`).join(", "),
  );
  for (const s of skipped) console.error(`  skipped: ${s}`);
  for (const f of failures) console.error(f);
  Deno.removeSync(root, { recursive: true });
  removeUnprivilegedHome();
  assert.equal(failures.length, 0, `${failures.length} of ${runnable.length} cases failed (listed above)`);
  assert.ok(CASES.length >= 60, "the issue asks for at least 60 cases");
});
