// Split-K partial products for weight gradients over many rows: partial s = A[slice s]ᵀ · B[slice s], where A is
// k × m and B is k × n (row-major f32, k = rows of the graph) and slice s = workgroup z covers rows
// [s·chunk, min(k, (s + 1)·chunk)). Partial s is written to part[s·m·n + i·n + j] (then summed by sum_slices.wgsl).
// A sum over all k rows in one workgroup would leave most of a large GPU idle (an m × n = 512 × 512 gradient is 64
// tiles); slices give every tile many workgroups. Tiles: 64 × 64 outputs per workgroup, 16 × 16 threads with 4 × 4
// outputs each (rows lid.y + 16i, columns lid.x + 16j), K advancing 16 rows at a time through workgroup memory.
struct Params {
  m: u32,
  n: u32,
  k: u32,
  chunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

var<workgroup> tile_a: array<f32, 1024>; // [kk * 64 + mm]
var<workgroup> tile_b: array<f32, 1024>; // [kk * 64 + nn]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * 16u + lid.x;
  let row0 = wg.y * 64u;
  let col0 = wg.x * 64u;
  let k0 = wg.z * p.chunk;
  let k1 = min(p.k, k0 + p.chunk);
  var acc: array<f32, 16>;
  for (var kb = k0; kb < k1; kb += 16u) {
    for (var t = 0u; t < 4u; t++) {
      let e = tid + t * 256u;
      let kk = e / 64u;
      let mm = e % 64u;
      let r = kb + kk;
      var va = 0.0;
      var vb = 0.0;
      if (r < k1 && row0 + mm < p.m) {
        va = a[r * p.m + row0 + mm];
      }
      if (r < k1 && col0 + mm < p.n) {
        vb = b[r * p.n + col0 + mm];
      }
      tile_a[kk * 64u + mm] = va;
      tile_b[kk * 64u + mm] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        av[i] = tile_a[kk * 64u + lid.y + 16u * i];
        bv[i] = tile_b[kk * 64u + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] += av[i] * bv[j];
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let row = row0 + lid.y + 16u * i;
      let col = col0 + lid.x + 16u * j;
      if (row < p.m && col < p.n) {
        part[wg.z * p.m * p.n + row * p.n + col] = acc[i * 4u + j];
      }
    }
  }
}
