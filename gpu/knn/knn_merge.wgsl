// The final top-k of each query row on the GPU: merges the row's `splits` sorted candidate lists (left by
// knn_tile.wgsl's LAST pass) into its k best by (sim desc, id asc) and writes the faiss row: ids, and distances
// 1 − sim in f32 (empty slots: id −1, distance 1). A workgroup per row; each candidate's rank is its position in its
// own list plus, per other list, how many of that list's entries come before it (binary search; on an exact tie the
// lower list comes first, so ranks are distinct). Candidates ranked below k are written at their rank.
// Layouts: heapSim / heapId [qRows][splits][k], each list sorted best first; outId / outDist [qRows][k] row-major.

struct Params {
  qRows: u32,
  k: u32,
  splits: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> heapSim: array<f32>;
@group(0) @binding(1) var<storage, read> heapId: array<i32>;
@group(0) @binding(2) var<storage, read_write> outId: array<i32>;
@group(0) @binding(3) var<storage, read_write> outDist: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

// Whether (s, id) comes before (ts, ti): higher sim, or equal sim and lower id.
fn before(s: f32, id: i32, ts: f32, ti: i32) -> bool {
  return s > ts || (s == ts && id < ti);
}

// Entries of the sorted list at `base` that come before (s, id); with `orEqual`, an identical entry counts too.
fn countBefore(base: u32, s: f32, id: i32, orEqual: bool) -> u32 {
  var lo = 0u;
  var hi = P.k;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    let ms = heapSim[base + mid];
    let mi = heapId[base + mid];
    if (before(ms, mi, s, id) || (orEqual && ms == s && mi == id)) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(num_workgroups) nwg: vec3u) {
  let k = P.k;
  let m = P.splits * k;
  for (var row = wid.x; row < P.qRows; row += nwg.x) {
    let rowBase = row * m;
    for (var c = lid.x; c < m; c += 64u) {
      let list = c / k;
      let s = heapSim[rowBase + c];
      let id = heapId[rowBase + c];
      var rank = c % k;
      for (var other = 0u; other < P.splits && rank < k; other++) {
        if (other != list) {
          rank += countBefore(rowBase + other * k, s, id, other < list);
        }
      }
      if (rank < k) {
        let at = row * k + rank;
        if (id < 0) {
          outId[at] = -1;
          outDist[at] = 1.0;
        } else {
          outId[at] = id;
          outDist[at] = 1.0 - s;
        }
      }
    }
  }
}
