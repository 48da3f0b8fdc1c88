// Exact kNN by inner product with a fused per-row top-k, 64×64 tiles (tile_common.wgsl + this + knn_heap.wgsl). A
// workgroup owns 64 query rows and walks the 64-row base tiles of its split of the base range; per tile (tileDot)
// every thread tests its 16 sims against the rows' current worst kept pair, and only when some sim can enter does
// the tile go through workgroup memory, 32 rows at a time, to one thread per query row that offers the row's 64 sims
// to its heap (knn_heap.wgsl). The N×N similarity matrix never exists: only one 64×64 tile per workgroup at a time.

// Tile row `slot` of the current exchange (stage holds HALF rows × 16 vec4), column c.
fn exchangedSim(slot: u32, c: u32) -> f32 {
  return stage[slot * 16u + c / 4u][c % 4u];
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
  beginHeaps(q0, split, tid);

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
          offerRow(h * HALF + tid, tid, q0, split, P.baseId0 + c0, nValid);
        }
        workgroupBarrier();
      }
    }
    if (tid == 0u) {
      atomicStore(&anyPass, 0u);
    }
    workgroupBarrier();
  }
  finishHeaps(q0, split, tid);
}
