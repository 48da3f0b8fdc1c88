// The sum of split-K partials: out[i] = Σ_{s < slices} part[s·len + i] for i < len (f32, slices added in order).
// Grid: 256 threads per workgroup over i, x then y workgroups (x ≤ 65535), each thread one output.
struct Params {
  len: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 256u + gid.x;
  if (i >= p.len) {
    return;
  }
  var s = 0.0;
  for (var t = 0u; t < p.slices; t++) {
    s += part[t * p.len + i];
  }
  out[i] = s;
}
