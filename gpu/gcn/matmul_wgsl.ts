/**
 * The one dense product kernel of GCN-D on WebGPU, specialised per transpose case (the loads differ, so it is built
 * from a template rather than branching per element).
 * @module
 */

/** Tile edge (outputs per workgroup side) and K-step of {@linkcode matmulWgsl}. */
export const MATMUL_TILE = 64;

/**
 * WGSL computing `C[M×N] = op(A)[M×K] · op(B)[K×N]`.
 * - `transA`: A is stored K×M (so the kernel reads Aᵀ; used for dW = Hᵀ·dP over all packed rows);
 * - `transB`: B is stored N×K (used for dH = dP·Wᵀ).
 * C is M×N row-major, written from row `c_row_offset` on (one call fills a slice of the first-layer table).
 * Workgroup 16×16 threads computes a 64×64 tile; thread (x, y) owns rows y + 16i and columns x + 16j (i, j < 4) so
 * stores are coalesced; K advances 16 at a time through workgroup memory, with loads ordered for coalescing.
 */
export function matmulWgsl(transA: boolean, transB: boolean): string {
  const aIndex = transA ? "kk * p.m + row" : "row * p.k + kk";
  const bIndex = transB ? "col * p.k + kk" : "kk * p.n + col";
  // Element e of the 1024-entry tile → (tile row/col, k) so that consecutive threads read consecutive addresses.
  const aSplit = transA ? "let kk = e / 64u; let mm = e % 64u;" : "let mm = e / 16u; let kk = e % 16u;";
  const bSplit = transB ? "let nn = e / 16u; let kk = e % 16u;" : "let kk = e / 64u; let nn = e % 64u;";
  return `// C[M×N] = op(A)·op(B), A ${transA ? "stored K×M (transposed)" : "M×K"}, B ${
    transB ? "stored N×K (transposed)" : "K×N"
  }, all row-major f32; C rows start at c_row_offset.
struct Params {
  m: u32,
  n: u32,
  k: u32,
  c_row_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> tile_a: array<f32, 1024>; // [kk * 64 + mm]
var<workgroup> tile_b: array<f32, 1024>; // [kk * 64 + nn]

fn load_a(row: u32, kk: u32) -> f32 {
  if (row >= p.m || kk >= p.k) {
    return 0.0;
  }
  return a[${aIndex}];
}

fn load_b(kk: u32, col: u32) -> f32 {
  if (col >= p.n || kk >= p.k) {
    return 0.0;
  }
  return b[${bIndex}];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * 16u + lid.x;
  let row0 = wg.y * 64u;
  let col0 = wg.x * 64u;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.k; k0 += 16u) {
    for (var t = 0u; t < 4u; t++) {
      let e = tid + t * 256u;
      {
        ${aSplit}
        tile_a[kk * 64u + mm] = load_a(row0 + mm, k0 + kk);
      }
      {
        ${bSplit}
        tile_b[kk * 64u + nn] = load_b(k0 + kk, col0 + nn);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        av[i] = tile_a[kk * 64u + lid.y + 16u * i];
        bv[i] = tile_b[kk * 64u + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] += av[i] * bv[j];
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + lid.x + 16u * j;
      if (row < p.m && col < p.n) {
        c[(row + p.c_row_offset) * p.n + col] = acc[i * 4u + j];
      }
    }
  }
}
`;
}
