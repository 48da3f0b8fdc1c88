// Max-pool each proposal's node rows and apply the classifier (GCN-D's head), one workgroup per proposal:
//   pooled[q, c] = max_{r ∈ rows of q} h[r, c],  arg[q, c] = first such r (packed row index)
//   pred[q]      = Σ_c pooled[q, c] · cls_w[c] + cls_b
// Layout: h is rows × C row-major; row_start has count + 1 offsets; pooled/arg are count × C.
// The dot product is reduced in a fixed tree order, so results are deterministic.
struct Params {
  count: u32,
  channels: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_start: array<i32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read> cls_w: array<f32>;
@group(0) @binding(4) var<storage, read> cls_b: array<f32>;
@group(0) @binding(5) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(6) var<storage, read_write> arg: array<i32>;
@group(0) @binding(7) var<storage, read_write> pred: array<f32>;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var q = wg.x; q < p.count; q += nwg.x) {
    let r0 = u32(row_start[q]);
    let r1 = u32(row_start[q + 1u]);
    var dot = 0.0;
    for (var c = lid.x; c < p.channels; c += 64u) {
      var best = h[r0 * p.channels + c];
      var best_r = r0;
      for (var r = r0 + 1u; r < r1; r++) {
        let v = h[r * p.channels + c];
        if (v > best) {
          best = v;
          best_r = r;
        }
      }
      pooled[q * p.channels + c] = best;
      arg[q * p.channels + c] = i32(best_r);
      dot += best * cls_w[c];
    }
    partial[lid.x] = dot;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
      if (lid.x < s) {
        partial[lid.x] += partial[lid.x + s];
      }
      workgroupBarrier();
    }
    if (lid.x == 0u) {
      pred[q] = partial[0] + cls_b[0];
    }
    workgroupBarrier();
  }
}
