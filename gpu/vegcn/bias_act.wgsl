// Bias and activation in place, after a dense product: h[r, c] = act(h[r, c] + bias[c]) for r < rows, c < cols, where
// act is the identity (mode 0), ReLU (mode 1: NaN and ≤ 0 give 0, as the CPU twin's `!(v > 0)`) or PReLU with one
// slope per column (mode 2: v > 0 ? v : slope[c]·v).
// Layout: h is rows × cols row-major f32 from row row0 on; bias and slope have cols entries (slope unused unless 2).
// Grid: x covers columns in blocks of 64, y strides over rows (≤ 65535 workgroups, each loops).
struct Params {
  rows: u32,
  cols: u32,
  mode: u32,
  row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read> slope: array<f32>;
@group(0) @binding(3) var<storage, read_write> h: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= p.cols) {
    return;
  }
  for (var r = wg.y; r < p.rows; r += nwg.y) {
    let i = (p.row0 + r) * p.cols + c;
    var v = h[i] + bias[c];
    if (p.mode == 1u) {
      if (!(v > 0.0)) {
        v = 0.0;
      }
    } else if (p.mode == 2u) {
      if (!(v > 0.0)) {
        v = slope[c] * v;
      }
    }
    h[i] = v;
  }
}
