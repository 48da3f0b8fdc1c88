// Backward of one GraphConv aggregation + ReLU + Dropout2d, over many packed proposals:
//   out[j, c] = Σ_{k ∈ CSRᵀ row j} vals_t[k] · g(cols_t[k], c),
//   g(i, c)   = (h[i, c] > 0 ? d_h[i, c] · mask[i] : 0) / deg[i]
// i.e. dP = Aᵀ · (dZ / D) with dZ = dH · M · [H > 0], where H is the layer output after dropout (H > 0 exactly where
// the ReLU passed and the row was kept). CSRᵀ (row_ptr_t, cols_t, vals_t) is the transpose of the forward adjacency.
// Layout: d_h, h, out are rows × C row-major f32. Grid as in aggregate.wgsl.
struct Params {
  rows: u32,
  channels: u32,
  use_mask: u32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_ptr_t: array<i32>;
@group(0) @binding(2) var<storage, read> cols_t: array<i32>;
@group(0) @binding(3) var<storage, read> vals_t: array<f32>;
@group(0) @binding(4) var<storage, read> deg: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read> h: array<f32>;
@group(0) @binding(7) var<storage, read> d_h: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= p.channels) {
    return;
  }
  for (var j = wg.y; j < p.rows; j += nwg.y) {
    var acc = 0.0;
    let k1 = u32(row_ptr_t[j + 1u]);
    for (var k = u32(row_ptr_t[j]); k < k1; k++) {
      let i = u32(cols_t[k]);
      let at = i * p.channels + c;
      var m = 1.0;
      if (p.use_mask == 1u) {
        m = mask[i];
      }
      let g = select(0.0, d_h[at] * m, h[at] > 0.0) / deg[i];
      acc += vals_t[k] * g;
    }
    out[j * p.channels + c] = acc;
  }
}
