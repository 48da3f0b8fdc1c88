// Exact kNN by inner product with a fused per-row top-k (appended to tile_common.wgsl). A workgroup owns 64 query
// rows and walks the 64-row base tiles of its split of the base range; per tile (tileDot) every thread tests its 16
// sims against the rows' current worst kept pair, and only when some sim can enter does the tile go through
// workgroup memory, 32 rows at a time, to one thread per query row that offers the row's 64 sims to its heap.
// Layouts: heapSim / heapId row-major [qRows][splits][k], each (row, split) slot a binary min-heap of the k best
// (sim desc, id asc) seen so far, root = worst kept; empty slots hold (-3e38, -1). The first dispatch of a query
// batch (FRESH) empties the heaps itself, so a batch needs no host-side fill; the last one (LAST) heap-sorts every
// slot in place, best first, for knn_merge.wgsl. The N×N similarity matrix never exists: only one 64×64 tile per
// workgroup at a time.

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

var<workgroup> thrSim: array<f32, 64>; // heap root (worst kept) per query row
var<workgroup> thrId: array<i32, 64>;
var<workgroup> anyPass: atomic<u32>;

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

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * 16u + tx;
  let q0 = wid.x * TQ;
  let split = wid.y;
  let tileBegin = split * P.tilesPerSplit;
  let tileEnd = min(P.bTiles, tileBegin + P.tilesPerSplit);

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
  if (tid < TQ) {
    let row = q0 + tid;
    if (row < P.qRows && (P.flags & FRESH) != 0u) {
      thrSim[tid] = EMPTY_SIM;
      thrId[tid] = -1;
    } else if (row < P.qRows) {
      let hb = (row * P.splits + split) * P.k;
      thrSim[tid] = heapSim[hb];
      thrId[tid] = heapId[hb];
    } else {
      thrSim[tid] = 3e38; // rows past the end accept nothing
      thrId[tid] = -1;
    }
  }
  if (tid == 0u) {
    atomicStore(&anyPass, 0u);
  }
  storageBarrier(); // the emptied heaps, before any thread offers to them

  for (var tile = tileBegin; tile < tileEnd; tile++) {
    let c0 = tile * TB;
    let acc = tileDot(q0, c0, P.qRows, P.bRows, P.dim, tid, tx, ty);
    let nValid = min(TB, P.bRows - c0);
    let id0 = i32(P.baseId0 + c0 + tx * 4u);
    let r0 = ty * 4u;
    if (rowPasses(r0, acc.r0, id0, tx * 4u, nValid) || rowPasses(r0 + 1u, acc.r1, id0, tx * 4u, nValid) ||
        rowPasses(r0 + 2u, acc.r2, id0, tx * 4u, nValid) || rowPasses(r0 + 3u, acc.r3, id0, tx * 4u, nValid)) {
      atomicOr(&anyPass, 1u);
    }
    let exchange = workgroupUniformLoad(&anyPass);
    if (exchange != 0u) {
      for (var h = 0u; h < 2u; h++) {
        if (ty / 8u == h) {
          let r = r0 - h * HALF;
          stage[(r + 0u) * 16u + tx] = acc.r0;
          stage[(r + 1u) * 16u + tx] = acc.r1;
          stage[(r + 2u) * 16u + tx] = acc.r2;
          stage[(r + 3u) * 16u + tx] = acc.r3;
        }
        workgroupBarrier();
        if (tid < HALF) {
          let r = h * HALF + tid;
          let row = q0 + r;
          if (row < P.qRows) {
            let hb = (row * P.splits + split) * P.k;
            var ts = thrSim[r];
            var ti = thrId[r];
            for (var c = 0u; c < nValid; c++) {
              let s = stage[tid * 16u + c / 4u][c % 4u];
              let id = i32(P.baseId0 + c0 + c);
              if (beats(s, id, ts, ti)) {
                heapReplaceRoot(hb, P.k, s, id);
                ts = heapSim[hb];
                ti = heapId[hb];
              }
            }
            thrSim[r] = ts;
            thrId[r] = ti;
          }
        }
        workgroupBarrier();
      }
    }
    if (tid == 0u) {
      atomicStore(&anyPass, 0u);
    }
    workgroupBarrier();
  }
  if ((P.flags & LAST) != 0u) {
    storageBarrier(); // every offer of this dispatch, before the sort reads the heaps
    let row = q0 + tid;
    if (tid < TQ && row < P.qRows) {
      // heap sort: move the root (worst kept) to the end of the shrinking heap, so slot 0 ends up the best
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
