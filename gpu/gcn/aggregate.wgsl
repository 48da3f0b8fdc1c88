// GraphConv aggregation over many packed proposals at once (forward):
//   out[r, c] = relu( (Σ_{k ∈ CSR row r} vals[k] · inp[src(cols[k]), c]) / deg[r] ) · mask[r]
// src(j) = row_source[j] when p.gather = 1 (inference layer 0 reads the shared first-layer table x·W₀),
// else j. mask[r] is the Dropout2d row scale (0 or 1/(1−p)); p.use_mask = 0 means 1.
// Layout: inp is (rows of the source) × C, out is rows × C, row-major f32; CSR columns are batch-absolute rows.
// Grid: x covers channels in blocks of 64, y strides over rows (≤ 65535 workgroups, loop for more).
struct Params {
  rows: u32,
  channels: u32,
  gather: u32,
  use_mask: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_ptr: array<i32>;
@group(0) @binding(2) var<storage, read> cols: array<i32>;
@group(0) @binding(3) var<storage, read> vals: array<f32>;
@group(0) @binding(4) var<storage, read> deg: array<f32>;
@group(0) @binding(5) var<storage, read> row_source: array<i32>;
@group(0) @binding(6) var<storage, read> mask: array<f32>;
@group(0) @binding(7) var<storage, read> inp: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= p.channels) {
    return;
  }
  for (var r = wg.y; r < p.rows; r += nwg.y) {
    var acc = 0.0;
    let k1 = u32(row_ptr[r + 1u]);
    for (var k = u32(row_ptr[r]); k < k1; k++) {
      var j = u32(cols[k]);
      if (p.gather == 1u) {
        j = u32(row_source[j]);
      }
      acc += vals[k] * inp[j * p.channels + c];
    }
    let z = acc / deg[r];
    var m = 1.0;
    if (p.use_mask == 1u) {
      m = mask[r];
    }
    out[r * p.channels + c] = select(0.0, z * m, z > 0.0);
  }
}
