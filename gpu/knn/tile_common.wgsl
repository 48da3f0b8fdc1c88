// Shared inner-product tile for the kNN and similarity-pair kernels (prepended to knn_tile.wgsl / pairs_tile.wgsl by
// gpu/knn/webgpu.ts). A workgroup of 16×16 threads computes the 64×64 tile sims[r][c] = ⟨q_r, b_c⟩ of 64 query rows
// and 64 base rows; thread (tx, ty) holds rows 4ty..4ty+3 × cols 4tx..4tx+3 in four vec4 accumulators. Dims are
// staged TD at a time through workgroup memory as vec4 columns. Layouts: qFeat / bFeat row-major f32 [rows][dim];
// rows past the bound count read as zeros. TD is specialised by the host from the device's workgroup-memory limit.

const TD: u32 = 16u;
const TQ: u32 = 64u; // query rows per workgroup
const TB: u32 = 64u; // base rows per tile
const HALF: u32 = 32u; // query rows exchanged per selection pass
const STAGE: u32 = TD * 32u; // vec4 slots: TD×16 for Q, TD×16 for B; reused as a [HALF][TB] sim exchange

@group(0) @binding(0) var<storage, read> qFeat: array<f32>;
@group(0) @binding(1) var<storage, read> bFeat: array<f32>;

// stage[t*16 + g] = dims t of query rows 4g..4g+3; stage[TD*16 + t*16 + g] = the same for base rows.
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
    // each thread stages TD/4 × 4 values of Q and of B: row = e / (TD/4), dims (e % (TD/4))·4 .. +3
    for (var e = tid; e < TQ * TD / 4u; e += 256u) {
      let r = e / (TD / 4u);
      let t0 = (e % (TD / 4u)) * 4u;
      let qr = q0 + r;
      let br = c0 + r;
      for (var j = 0u; j < 4u; j++) {
        let dd = d0 + t0 + j;
        var qv = 0.0;
        if (qr < qRows && dd < dim) {
          qv = qFeat[qr * dim + dd];
        }
        stage[(t0 + j) * 16u + r / 4u][r % 4u] = qv;
        var bv = 0.0;
        if (br < bRows && dd < dim) {
          bv = bFeat[br * dim + dd];
        }
        stage[TD * 16u + (t0 + j) * 16u + r / 4u][r % 4u] = bv;
      }
    }
    workgroupBarrier();
    for (var t = 0u; t < TD; t++) {
      let a = stage[t * 16u + ty];
      let b = stage[TD * 16u + t * 16u + tx];
      acc.r0 = fma(vec4f(a.x), b, acc.r0);
      acc.r1 = fma(vec4f(a.y), b, acc.r1);
      acc.r2 = fma(vec4f(a.z), b, acc.r2);
      acc.r3 = fma(vec4f(a.w), b, acc.r3);
    }
    workgroupBarrier();
  }
  return acc;
}
