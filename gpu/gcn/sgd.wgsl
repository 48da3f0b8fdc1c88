// torch.optim.SGD (no dampening, no Nesterov) on one parameter tensor, elementwise:
//   d = grad + weight_decay · w;  buf = first ? d : momentum · buf + d;  w = w − lr · buf
// Layout: w, grad, buf are flat f32 arrays of p.count elements.
struct Params {
  count: u32,
  first: u32,
  lr: f32,
  momentum: f32,
  weight_decay: f32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.count; i += nwg.x * 256u) {
    let d = grad[i] + p.weight_decay * w[i];
    var step = d;
    if (p.first == 0u) {
      step = p.momentum * buf[i] + d;
    }
    buf[i] = step;
    w[i] = w[i] - p.lr * step;
  }
}
