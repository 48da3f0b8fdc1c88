// Shared inner-product tile for the kNN and similarity-pair kernels (prepended to knn_tile.wgsl / pairs_tile.wgsl by
// gpu/knn/webgpu.ts). A workgroup of 16×16 threads computes the 64×64 tile sims[r][c] = ⟨q_r, b_c⟩ of 64 query rows
// and 64 base rows; thread (tx, ty) holds rows 4ty..4ty+3 × cols 4tx..4tx+3 in four vec4 accumulators. Dims are
// staged TD at a time through workgroup memory, each staged dim a padded row of 16 vec4 (rows 4g..4g+3 in slot g);
// global reads are coalesced along dims. Layouts: qFeat / bFeat row-major f32 [rows][dim]; rows past the bound
// count read as zeros.

// Dims staged per barrier pair: an override constant the host sets from the device's workgroup-memory limit (32
// where ~18 KiB are granted, else 16, which fits WebGPU's guaranteed 16 KiB). Must stay >= 16: the staging array
// doubles as the kNN kernel's HALF x TB similarity exchange.
override TD: u32 = 16u;
const TQ: u32 = 64u; // query rows per workgroup
const TB: u32 = 64u; // base rows per tile
const HALF: u32 = 32u; // query rows exchanged per selection pass
const SROW: u32 = 17u; // vec4 slots per staged dim: 16 used + 1 pad (spreads rows over memory banks)
override STAGE: u32 = TD * SROW * 2u; // Q then B staging; reused as a [HALF][TB] sim exchange

@group(0) @binding(0) var<storage, read> qFeat: array<f32>;
@group(0) @binding(1) var<storage, read> bFeat: array<f32>;

// stage[t*SROW + g] = dim t of query rows 4g..4g+3; stage[TD*SROW + t*SROW + g] = the same for base rows.
var<workgroup> stage: array<vec4f, STAGE>;

// A thread's 4×4 block of a tile: row i of the block in ri, columns in the vector lanes.
struct Block {
  r0: vec4f,
  r1: vec4f,
  r2: vec4f,
  r3: vec4f,
}

// The 64×64 tile of query rows q0.. (qRows bound) against base rows c0.. (bRows bound). Call from uniform control
// flow with every thread of the workgroup (it synchronises through workgroup barriers).
fn tileDot(q0: u32, c0: u32, qRows: u32, bRows: u32, dim: u32, tid: u32, tx: u32, ty: u32) -> Block {
  var acc = Block(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  for (var d0 = 0u; d0 < dim; d0 += TD) {
    // each thread stages dim t of rows 4g..4g+3 as one vec4, for Q and for B (consecutive threads: consecutive dims)
    for (var e = tid; e < TD * 16u; e += 256u) {
      let t = e % TD;
      let g = e / TD;
      let dd = d0 + t;
      var qv = vec4f(0.0);
      var bv = vec4f(0.0);
      for (var i = 0u; i < 4u; i++) {
        let qr = q0 + 4u * g + i;
        if (qr < qRows && dd < dim) {
          qv[i] = qFeat[qr * dim + dd];
        }
        let br = c0 + 4u * g + i;
        if (br < bRows && dd < dim) {
          bv[i] = bFeat[br * dim + dd];
        }
      }
      stage[t * SROW + g] = qv;
      stage[TD * SROW + t * SROW + g] = bv;
    }
    workgroupBarrier();
    for (var t = 0u; t < TD; t++) {
      let a = stage[t * SROW + ty];
      let b = stage[TD * SROW + t * SROW + tx];
      acc.r0 = fma(vec4f(a.x), b, acc.r0);
      acc.r1 = fma(vec4f(a.y), b, acc.r1);
      acc.r2 = fma(vec4f(a.z), b, acc.r2);
      acc.r3 = fma(vec4f(a.w), b, acc.r3);
    }
    workgroupBarrier();
  }
  return acc;
}
