import { closeSync, fsyncSync, openSync } from "node:fs";

/** fsync of a directory: a file created, renamed or removed in it survives a power cut. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
