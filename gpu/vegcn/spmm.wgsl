// Sparse × dense product for GCN-V/E's mean aggregation: out[r, c] = Σ_{e ∈ CSR row r} vals[e] · x[cols[e], c].
// A·X with the CSR of A; Aᵀ·Y with the CSR of Aᵀ. No normalisation here: A is already row-normalised.
// Layout: x is (source rows) × C and out is rows × C, row-major f32; row_ptr has rows + 1 entries.
// Grid: x covers channels in blocks of 64 (one thread per channel, so neighbouring threads read neighbouring
// addresses of the same source row), y strides over rows (≤ 65535 workgroups, each loops for more).
struct Params {
  rows: u32,
  channels: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_ptr: array<i32>;
@group(0) @binding(2) var<storage, read> cols: array<i32>;
@group(0) @binding(3) var<storage, read> vals: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= p.channels) {
    return;
  }
  for (var r = wg.y; r < p.rows; r += nwg.y) {
    var acc = 0.0;
    let e1 = u32(row_ptr[r + 1u]);
    for (var e = u32(row_ptr[r]); e < e1; e++) {
      acc += vals[e] * x[u32(cols[e]) * p.channels + c];
    }
    out[r * p.channels + c] = acc;
  }
}
