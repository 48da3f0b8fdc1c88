// Element-wise steps of GCN-V's backward pass, one kernel with three modes over a rows × cols matrix (row-major f32):
// - mode 0, the MSE loss (cols = 1): e = a − b (a the output, b the target); out1 = 2e / rows (∂loss/∂output, as
//   nn.MSELoss's mean) and out2 = e² (summed afterwards for the loss);
// - mode 1, PReLU: a = ∂/∂PReLU output, b = its input u; out1 = u > 0 ? a : slope[c]·a (∂/∂u) and
//   out2 = u > 0 ? 0 : u·a (summed over rows afterwards: ∂/∂slope, as PyTorch, only where u is not positive);
// - mode 2, ReLU: a = ∂/∂ReLU output, b = that output h; out1 = h > 0 ? a : 0 (out2 untouched).
// Grid: x covers columns in blocks of 64, y strides over rows (≤ 65535 workgroups, each loops).
struct Params {
  rows: u32,
  cols: u32,
  mode: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> slope: array<f32>;
@group(0) @binding(4) var<storage, read_write> out1: array<f32>;
@group(0) @binding(5) var<storage, read_write> out2: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wg.x * 64u + lid.x;
  if (c >= p.cols) {
    return;
  }
  for (var r = wg.y; r < p.rows; r += nwg.y) {
    let i = r * p.cols + c;
    let g = a[i];
    let v = b[i];
    if (p.mode == 0u) {
      let e = g - v;
      out1[i] = (2.0 * e) / f32(p.rows);
      out2[i] = e * e;
    } else if (p.mode == 1u) {
      if (v > 0.0) {
        out1[i] = g;
        out2[i] = 0.0;
      } else {
        out1[i] = slope[c] * g;
        out2[i] = v * g;
      }
    } else {
      if (v > 0.0) {
        out1[i] = g;
      } else {
        out1[i] = 0.0;
      }
    }
  }
}
