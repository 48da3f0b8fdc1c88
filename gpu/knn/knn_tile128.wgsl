// Exact kNN by inner product with a fused per-row top-k, register-tiled (this + knn_heap.wgsl): a workgroup of 16×16
// threads computes 128×128 tiles, each thread an 8×8 block — rows 4ty..4ty+3 and 64+4ty..64+4ty+3, columns 4tx..4tx+3
// and 64+4tx..64+4tx+3, in sixteen vec4 accumulators (acc[2i + h]: block row i, column half h) — so every four vec4
// reads of workgroup memory feed 64 FMAs. Dims are staged CD at a time in two buffers: while one is multiplied the
// next chunk's global loads are in flight, stored to the other after, one barrier per chunk. Each staged dim is a
// padded row of 32 vec4, slot g holding rows 4g..4g+3. After a tile, as knn_tile.wgsl: rows whose sims can enter a
// heap go through workgroup memory 32 rows at a time to one thread per row (knn_heap.wgsl).
// Layouts: qFeat / bFeat row-major f32 [rows][dim] (rows past the bound read as zeros); heaps as knn_heap.wgsl.

const TQ: u32 = 128u; // query rows per workgroup
const TB: u32 = 128u; // base rows per tile
const HALF: u32 = 32u; // tile rows exchanged per selection pass
const CD: u32 = 8u; // dims per staged chunk
const SROW: u32 = 33u; // vec4 slots per staged dim: 32 used + 1 pad
const BUF: u32 = 2u * CD * SROW; // one staging buffer: query dims, then base dims

@group(0) @binding(0) var<storage, read> qFeat: array<f32>;
@group(0) @binding(1) var<storage, read> bFeat: array<f32>;

// Two staging buffers; reused after a tile's products as the exchange (HALF rows × 32 vec4 = 1024 ≤ 2 × BUF).
var<workgroup> stage: array<vec4f, 2u * BUF>;

// Tile row `slot` of the current exchange, column c.
fn exchangedSim(slot: u32, c: u32) -> f32 {
  return stage[slot * 32u + c / 4u][c % 4u];
}

// This thread's share of dims d0..d0+CD: dim t of query rows 4g..4g+3 and of base rows 4g..4g+3 (consecutive
// threads read consecutive dims).
struct Chunk {
  q: vec4f,
  b: vec4f,
}

fn loadChunk(q0: u32, c0: u32, d0: u32, tid: u32) -> Chunk {
  let t = tid % CD;
  let g = tid / CD;
  let dd = d0 + t;
  var out = Chunk(vec4f(0.0), vec4f(0.0));
  if (dd < P.dim) {
    for (var i = 0u; i < 4u; i++) {
      let qr = q0 + 4u * g + i;
      if (qr < P.qRows) {
        out.q[i] = qFeat[qr * P.dim + dd];
      }
      let br = c0 + 4u * g + i;
      if (br < P.bRows) {
        out.b[i] = bFeat[br * P.dim + dd];
      }
    }
  }
  return out;
}

fn storeChunk(buf: u32, tid: u32, v: Chunk) {
  let t = tid % CD;
  let g = tid / CD;
  stage[buf * BUF + t * SROW + g] = v.q;
  stage[buf * BUF + CD * SROW + t * SROW + g] = v.b;
}

// Tile row of block row i (0..7) of thread row ty.
fn blockRow(ty: u32, i: u32) -> u32 {
  return select(64u + 4u * ty + i - 4u, 4u * ty + i, i < 4u);
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
  let chunks = (P.dim + CD - 1u) / CD;
  beginHeaps(q0, split, tid);

  for (var tile = tileBegin; tile < tileEnd; tile++) {
    let c0 = tile * TB;
    var acc: array<vec4f, 16>;
    for (var i = 0u; i < 16u; i++) {
      acc[i] = vec4f(0.0);
    }
    storeChunk(0u, tid, loadChunk(q0, c0, 0u, tid));
    workgroupBarrier();
    for (var c = 0u; c < chunks; c++) {
      let cur = c % 2u;
      let more = c + 1u < chunks;
      var next = Chunk(vec4f(0.0), vec4f(0.0));
      if (more) {
        next = loadChunk(q0, c0, (c + 1u) * CD, tid);
      }
      let qs = cur * BUF;
      let bs = qs + CD * SROW;
      for (var t = 0u; t < CD; t++) {
        let a0 = stage[qs + t * SROW + ty];
        let a1 = stage[qs + t * SROW + 16u + ty];
        let b0 = stage[bs + t * SROW + tx];
        let b1 = stage[bs + t * SROW + 16u + tx];
        for (var i = 0u; i < 4u; i++) {
          acc[2u * i] = fma(vec4f(a0[i]), b0, acc[2u * i]);
          acc[2u * i + 1u] = fma(vec4f(a0[i]), b1, acc[2u * i + 1u]);
          acc[8u + 2u * i] = fma(vec4f(a1[i]), b0, acc[8u + 2u * i]);
          acc[9u + 2u * i] = fma(vec4f(a1[i]), b1, acc[9u + 2u * i]);
        }
      }
      if (more) {
        storeChunk(1u - cur, tid, next);
      }
      workgroupBarrier();
    }

    let nValid = min(TB, P.bRows - c0);
    var passes = false;
    for (var i = 0u; i < 8u; i++) {
      for (var h = 0u; h < 2u; h++) {
        let col = h * 64u + tx * 4u;
        if (rowPasses(blockRow(ty, i), acc[2u * i + h], i32(P.baseId0 + c0 + col), col, nValid)) {
          passes = true;
        }
      }
    }
    if (passes) {
      atomicOr(&anyPass, 1u);
    }
    let exchange = workgroupUniformLoad(&anyPass);
    if (exchange != 0u) {
      // pass p exchanges tile rows 32p..32p+31: block rows 0..3 (p = 0, 1) or 4..7 (p = 2, 3) of half the threads
      for (var p = 0u; p < 4u; p++) {
        if (ty / 8u == p % 2u) {
          let first = 4u * (p / 2u);
          for (var i = 0u; i < 4u; i++) {
            let slot = 4u * ty + i - 32u * (p % 2u);
            stage[slot * 32u + tx] = acc[2u * (first + i)];
            stage[slot * 32u + 16u + tx] = acc[2u * (first + i) + 1u];
          }
        }
        workgroupBarrier();
        if (tid < HALF) {
          offerRow(p * HALF + tid, tid, q0, split, P.baseId0 + c0, nValid);
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
