/**
 * The tests' one folder walk: every entry under a folder, as paths relative to it.
 * @module
 */
import { join, relative } from "node:path";

/** Every folder and every other entry (files, links) under `dir`, relative to it, each list sorted. */
export function listTree(dir: string): { files: string[]; dirs: string[] } {
  const files: string[] = [], dirs: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) {
        dirs.push(relative(dir, p));
        walk(p);
      } else files.push(relative(dir, p));
    }
  };
  walk(dir);
  return { files: files.sort(), dirs: dirs.sort() };
}
