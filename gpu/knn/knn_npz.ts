/**
 * Writing a kNN graph in the original's dense `(N, 2, k)` float64 `.npz` layout with one copy fewer than
 * `writeKnn` (shared/knn_file.ts): the `.npy` member (header + float64 rows) is built directly in one buffer and
 * deflated from there, so at part1 scale (584K × 80: a 748 MB member) the write never holds the member twice. The
 * bytes are identical to `writeKnn`'s (same npy header, same zip layout, same zlib level).
 * @module
 */
import { writeFileAtomic } from "../../shared/artifact.ts";
import type { KnnGraph } from "../../shared/knn_file.ts";
import { buildZip } from "../../shared/zip.ts";

/**
 * A version-1.0 `.npy` header for a C-order little-endian float64 array, as numpy writes it: magic, version, header
 * length, then the dict literal padded with spaces and a newline to a multiple of 64 bytes.
 */
function npyHeaderF8(shape: number[]): Uint8Array {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '<f8', 'fortran_order': False, 'shape': ${dims}, }`;
  dict += " ".repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + "\n";
  const head = new Uint8Array(10 + dict.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0); // \x93NUMPY v1.0
  new DataView(head.buffer).setUint16(8, dict.length, true);
  head.set(new TextEncoder().encode(dict), 10);
  return head;
}

/** Write `g` as `np.savez_compressed(path, data=(N, 2, k) float64)`, atomically. */
export function writeKnnCompact(path: string, g: KnnGraph): void {
  const { n, k } = g;
  const head = npyHeaderF8([n, 2, k]);
  const member = new Uint8Array(head.length + n * 2 * k * 8);
  member.set(head, 0);
  // npy pads its header to a multiple of 64 bytes, so the float64 view is aligned
  const values = new Float64Array(member.buffer, head.length, n * 2 * k);
  for (let i = 0; i < n; i++) {
    const base = i * 2 * k;
    for (let j = 0; j < k; j++) {
      values[base + j] = g.nbrs[i * k + j]!;
      values[base + k + j] = g.dists[i * k + j]!;
    }
  }
  writeFileAtomic(path, buildZip([{ name: "data.npy", chunks: [member] }], { compress: true }));
}
