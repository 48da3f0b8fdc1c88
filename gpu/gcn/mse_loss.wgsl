// A training batch's loss kept on the device (read back once per run of batches, not per batch):
//   loss[slot] = Σ_q (pred[q] − label[q])² / count     (nn.MSELoss, mean reduction; summed in q order)
// One invocation: batches hold tens of proposals. Layout: pred and label hold count f32; loss one f32 per step.
struct Params {
  count: u32,
  slot: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> label: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

@compute @workgroup_size(1)
fn main() {
  var acc = 0.0;
  for (var q = 0u; q < p.count; q++) {
    let d = pred[q] - label[q];
    acc += d * d;
  }
  loss[p.slot] = acc / f32(p.count);
}
