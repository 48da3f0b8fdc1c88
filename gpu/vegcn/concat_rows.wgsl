// GraphConv's input rows [x ‖ A·x] for a block of rows: out[r, c] = x[row0 + r, c] for c < width and
// ax[row0 + r, c − width] for width ≤ c < 2·width, r < rows.
// Layout: x and ax are (all rows) × width, out is rows × (2·width), row-major f32.
// Grid: x covers the 2·width output columns in blocks of 64, y strides over rows (≤ 65535 workgroups, each loops).
struct Params {
  rows: u32,
  width: u32,
  row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ax: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= 2u * p.width) {
    return;
  }
  for (var r = wg.y; r < p.rows; r += nwg.y) {
    let src = (p.row0 + r) * p.width;
    var v: f32;
    if (c < p.width) {
      v = x[src + c];
    } else {
      v = ax[src + c - p.width];
    }
    out[r * 2u * p.width + c] = v;
  }
}
