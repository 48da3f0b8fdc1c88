// Backward of MSE loss, classifier and max-pool for one batch (a single workgroup; batches hold tens of proposals):
//   d_pred[q] = 2 (pred[q] − label[q]) / count                (nn.MSELoss, mean reduction)
//   d_cls_w[c] = Σ_q d_pred[q] · pooled[q, c];  d_cls_b = Σ_q d_pred[q]
//   d_h[arg[q, c], c] = d_pred[q] · cls_w[c]                   (d_h must be zeroed before; arg rows are distinct)
// Layout: pooled/arg count × C row-major; d_h rows × C.
struct Params {
  count: u32,
  channels: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> label: array<f32>;
@group(0) @binding(3) var<storage, read> pooled: array<f32>;
@group(0) @binding(4) var<storage, read> arg: array<i32>;
@group(0) @binding(5) var<storage, read> cls_w: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_cls_w: array<f32>;
@group(0) @binding(7) var<storage, read_write> d_cls_b: array<f32>;
@group(0) @binding(8) var<storage, read_write> d_h: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let scale = 2.0 / f32(p.count);
  for (var c = lid.x; c < p.channels; c += 64u) {
    var acc = 0.0;
    for (var q = 0u; q < p.count; q++) {
      let g = scale * (pred[q] - label[q]);
      acc += g * pooled[q * p.channels + c];
      let r = u32(arg[q * p.channels + c]);
      d_h[r * p.channels + c] = g * cls_w[c];
    }
    d_cls_w[c] = acc;
  }
  if (lid.x == 0u) {
    var acc = 0.0;
    for (var q = 0u; q < p.count; q++) {
      acc += scale * (pred[q] - label[q]);
    }
    d_cls_b[0] = acc;
  }
}
