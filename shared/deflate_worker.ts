/**
 * Worker of `deflateMemberParallel` (shared/zip.ts): deflates each piece it is sent and posts the bytes back. A task
 * names its piece index, where the piece lies (a SharedArrayBuffer holding the whole member, read in place, or a
 * transferred copy of the piece alone), the zlib level and whether the piece ends the member.
 * @module
 */
import { deflatePiece } from "./zip.ts";

/** One piece to deflate. */
export interface PieceTask {
  piece: number;
  buffer: ArrayBuffer | SharedArrayBuffer;
  byteOffset: number;
  byteLength: number;
  level: number;
  last: boolean;
}

const scope = self as unknown as {
  onmessage: (e: MessageEvent<PieceTask>) => void;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = (e) => {
  const t = e.data;
  try {
    const out = deflatePiece(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), { level: t.level, last: t.last });
    scope.postMessage({ piece: t.piece, out }, [out.buffer as ArrayBuffer]);
  } catch (err) {
    scope.postMessage({ piece: t.piece, error: (err as Error).message });
  }
};
