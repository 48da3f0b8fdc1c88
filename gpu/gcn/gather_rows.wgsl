// Training's first-layer input, gathered on the device from the resident feature matrix:
//   out[r, c] = feat[row_source[r], c]
// Layout: feat is N × C and out rows × C, row-major f32; row_source holds one feature row per packed row.
// Grid: x covers channels in blocks of 64, y strides over rows (≤ 65535 workgroups, loop for more).
struct Params {
  rows: u32,
  channels: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_source: array<i32>;
@group(0) @binding(2) var<storage, read> feat: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= p.channels) {
    return;
  }
  for (var r = wg.y; r < p.rows; r += nwg.y) {
    out[r * p.channels + c] = feat[u32(row_source[r]) * p.channels + c];
  }
}
