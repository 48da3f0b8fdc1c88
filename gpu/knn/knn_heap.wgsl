// Per-row top-k heaps shared by the kNN tile kernels (appended to knn_tile.wgsl's 64×64 or knn_tile128.wgsl's
// 128×128 kernel, which define TQ, the query rows of a workgroup, and exchangedSim, how a tile row's sims are read back
// from workgroup memory). Layouts: heapSim / heapId row-major [qRows][splits][k], each (row, split) slot a binary
// min-heap of the k best (sim desc, id asc) seen so far, root = worst kept; empty slots hold (-3e38, -1). The first
// dispatch of a query batch (FRESH) empties the heaps, so a batch needs no host-side fill; the last one (LAST)
// heap-sorts every slot in place, best first, for knn_merge.wgsl. Workgroups are 256 threads.

struct Params {
  qRows: u32, // query rows bound in qFeat
  bRows: u32, // base rows bound in bFeat
  dim: u32,
  k: u32,
  splits: u32, // base splits (grid y); each owns its own heap per query row
  tilesPerSplit: u32,
  baseId0: u32, // global id of bFeat's first row
  bTiles: u32, // ceil(bRows / TB)
  flags: u32, // FRESH | LAST
}

const FRESH: u32 = 1u; // first base range of the batch: start from empty heaps
const LAST: u32 = 2u; // last base range: leave every heap sorted best first
const EMPTY_SIM: f32 = -3e38;

@group(0) @binding(2) var<storage, read_write> heapSim: array<f32>;
@group(0) @binding(3) var<storage, read_write> heapId: array<i32>;
@group(0) @binding(4) var<uniform> P: Params;

var<workgroup> thrSim: array<f32, TQ>; // heap root (worst kept) per query row of the workgroup
var<workgroup> thrId: array<i32, TQ>;
var<workgroup> anyPass: atomic<u32>; // some thread's sims can enter a heap: exchange this tile

// Replace the root of the heap of `k` entries at `base` by (s, id) and sift it down; "worse" = lower sim, or equal
// sim and higher id.
fn heapReplaceRoot(base: u32, k: u32, s: f32, id: i32) {
  var pos = 0u;
  loop {
    let l = 2u * pos + 1u;
    if (l >= k) {
      break;
    }
    var c = l;
    let r = l + 1u;
    if (r < k) {
      let ls = heapSim[base + l];
      let rs = heapSim[base + r];
      if (rs < ls || (rs == ls && heapId[base + r] > heapId[base + l])) {
        c = r;
      }
    }
    let cs = heapSim[base + c];
    let ci = heapId[base + c];
    if (cs < s || (cs == s && ci > id)) {
      heapSim[base + pos] = cs;
      heapId[base + pos] = ci;
      pos = c;
    } else {
      break;
    }
  }
  heapSim[base + pos] = s;
  heapId[base + pos] = id;
}

// Whether (s, id) beats the worst kept pair (ts, ti).
fn beats(s: f32, id: i32, ts: f32, ti: i32) -> bool {
  return s > ts || (s == ts && id < ti);
}

// Whether any of row r's four sims (ids id0..id0+3; column c of nValid) beats the row's threshold.
fn rowPasses(r: u32, v: vec4f, id0: i32, c: u32, nValid: u32) -> bool {
  let ts = thrSim[r];
  let ti = thrId[r];
  var passes = false;
  for (var j = 0u; j < 4u; j++) {
    if (c + j < nValid && beats(v[j], id0 + i32(j), ts, ti)) {
      passes = true;
    }
  }
  return passes;
}

// Empty the workgroup's heaps on a FRESH dispatch and load every row's threshold (rows past the end accept nothing).
// Call from uniform control flow with every thread.
fn beginHeaps(q0: u32, split: u32, tid: u32) {
  if ((P.flags & FRESH) != 0u) {
    for (var e = tid; e < TQ * P.k; e += 256u) {
      let row = q0 + e / P.k;
      if (row < P.qRows) {
        let at = (row * P.splits + split) * P.k + e % P.k;
        heapSim[at] = EMPTY_SIM;
        heapId[at] = -1;
      }
    }
  }
  for (var r = tid; r < TQ; r += 256u) {
    let row = q0 + r;
    if (row < P.qRows && (P.flags & FRESH) != 0u) {
      thrSim[r] = EMPTY_SIM;
      thrId[r] = -1;
    } else if (row < P.qRows) {
      let hb = (row * P.splits + split) * P.k;
      thrSim[r] = heapSim[hb];
      thrId[r] = heapId[hb];
    } else {
      thrSim[r] = 3e38;
      thrId[r] = -1;
    }
  }
  if (tid == 0u) {
    atomicStore(&anyPass, 0u);
  }
  storageBarrier(); // the emptied heaps, before any thread offers to them
}

// Offer tile row r's nValid exchanged sims (slot `slot` of the exchange; ids id0, id0 + 1, …) to the row's heap.
fn offerRow(r: u32, slot: u32, q0: u32, split: u32, id0: u32, nValid: u32) {
  let row = q0 + r;
  if (row >= P.qRows) {
    return;
  }
  let hb = (row * P.splits + split) * P.k;
  var ts = thrSim[r];
  var ti = thrId[r];
  for (var c = 0u; c < nValid; c++) {
    let s = exchangedSim(slot, c);
    let id = i32(id0 + c);
    if (beats(s, id, ts, ti)) {
      heapReplaceRoot(hb, P.k, s, id);
      ts = heapSim[hb];
      ti = heapId[hb];
    }
  }
  thrSim[r] = ts;
  thrId[r] = ti;
}

// On the LAST dispatch, heap-sort every row's heap in place, best first. Call from uniform control flow.
fn finishHeaps(q0: u32, split: u32, tid: u32) {
  if ((P.flags & LAST) == 0u) {
    return;
  }
  storageBarrier(); // every offer of this dispatch, before the sort reads the heaps
  for (var r = tid; r < TQ; r += 256u) {
    let row = q0 + r;
    if (row < P.qRows) {
      // move the root (worst kept) to the end of the shrinking heap, so slot 0 ends up the best
      let hb = (row * P.splits + split) * P.k;
      for (var end = P.k - 1u; end > 0u; end--) {
        let worstSim = heapSim[hb];
        let worstId = heapId[hb];
        let s = heapSim[hb + end];
        let id = heapId[hb + end];
        heapSim[hb + end] = worstSim;
        heapId[hb + end] = worstId;
        heapReplaceRoot(hb, end, s, id);
      }
    }
  }
}
