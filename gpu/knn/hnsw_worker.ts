/**
 * Worker thread of a sharded HNSW run: builds the index of one contiguous shard of the (shared) base rows and
 * searches every query row in it; posts progress, then the per-query (similarity, id) lists.
 * @module
 */
import { type HnswParams, hnswShard } from "./hnsw.ts";

interface Job {
  base: Float32Array;
  queries: Float32Array;
  dim: number;
  nq: number;
  r0: number;
  r1: number;
  k: number;
  params: HnswParams;
}

const scope = self as unknown as {
  onmessage: ((ev: MessageEvent<Job>) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = async (ev: MessageEvent<Job>) => {
  const job = ev.data;
  try {
    const r = await hnswShard(job.base, job.dim, { r0: job.r0, r1: job.r1, queries: job.queries, nq: job.nq }, job.k, {
      ...job.params,
      onProgress: (fraction) => scope.postMessage({ kind: "progress", fraction }),
    });
    scope.postMessage({ kind: "done", ...r }, [
      r.sims.buffer as ArrayBuffer,
      r.ids.buffer as ArrayBuffer,
    ]);
  } catch (err) {
    scope.postMessage({ kind: "error", message: (err as Error).message });
  }
};
