// All pairs (i, j), i < j, with ⟨x_i, x_j⟩ ≥ minSim (appended to tile_common.wgsl). A workgroup owns 64 query rows
// and walks the 64-row base tiles of its split; tiles wholly at or below the diagonal (every base id ≤ every query
// id) are skipped. Each thread appends its passing (i, j, sim) to the output lists through an atomic counter;
// entries past `capacity` are counted but not written, so the host can size the lists and run the range again.
// Layouts: outI / outJ / outSim parallel arrays of length capacity, unordered; count[0] = number of passing pairs.

struct Params {
  qRows: u32, // query rows bound in qFeat
  bRows: u32, // base rows bound in bFeat
  dim: u32,
  capacity: u32,
  qId0: u32, // global id of qFeat's first row
  baseId0: u32, // global id of bFeat's first row
  tilesPerSplit: u32,
  bTiles: u32,
  minSim: f32,
}

@group(0) @binding(2) var<storage, read_write> outI: array<i32>;
@group(0) @binding(3) var<storage, read_write> outJ: array<i32>;
@group(0) @binding(4) var<storage, read_write> outSim: array<f32>;
@group(0) @binding(5) var<storage, read_write> count: array<atomic<u32>>;
@group(0) @binding(6) var<uniform> P: Params;

// Append row r's sims v (columns c..c+3 of the tile) that pass.
fn emitRow(r: u32, v: vec4f, q0: u32, c0: u32, c: u32) {
  let row = q0 + r;
  if (row >= P.qRows) {
    return;
  }
  let gi = P.qId0 + row;
  for (var j = 0u; j < 4u; j++) {
    let col = c0 + c + j;
    let gj = P.baseId0 + col;
    if (col < P.bRows && gj > gi && v[j] >= P.minSim) {
      let slot = atomicAdd(&count[0], 1u);
      if (slot < P.capacity) {
        outI[slot] = i32(gi);
        outJ[slot] = i32(gj);
        outSim[slot] = v[j];
      }
    }
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * 16u + tx;
  let q0 = wid.x * TQ;
  let tileBegin = wid.y * P.tilesPerSplit;
  let tileEnd = min(P.bTiles, tileBegin + P.tilesPerSplit);
  for (var tile = tileBegin; tile < tileEnd; tile++) {
    let c0 = tile * TB;
    // the tile's largest base id must exceed the block's smallest query id for any i < j pair
    if (P.baseId0 + min(P.bRows, c0 + TB) - 1u <= P.qId0 + q0) {
      continue;
    }
    let acc = tileDot(q0, c0, P.qRows, P.bRows, P.dim, tid, tx, ty);
    let r0 = ty * 4u;
    emitRow(r0, acc.r0, q0, c0, tx * 4u);
    emitRow(r0 + 1u, acc.r1, q0, c0, tx * 4u);
    emitRow(r0 + 2u, acc.r2, q0, c0, tx * 4u);
    emitRow(r0 + 3u, acc.r3, q0, c0, tx * 4u);
  }
}
