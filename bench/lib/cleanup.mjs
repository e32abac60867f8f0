// Everything the bench starts is registered here, so that it is killed and deleted at the
// end, on failure, and on SIGINT/SIGTERM: child processes (by their own pid) and temp dirs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const children = new Set();
const dirs = new Set();

export function trackChild(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function tempDir(label) {
  const dir = mkdtempSync(join(tmpdir(), `stream-db-bench-${label}-`));
  dirs.add(dir);
  return dir;
}

const RM = { recursive: true, force: true, maxRetries: 5, retryDelay: 100 };

export function removeDir(dir) {
  rmSync(dir, RM);
  dirs.delete(dir);
}

/** Kill every child still running (each by its pid) and delete every temp dir. Synchronous. */
export function cleanupAll() {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  children.clear();
  for (const dir of dirs) {
    try {
      rmSync(dir, RM); // retried: a process killed a moment ago may still be writing into it
    } catch (err) {
      console.error(`could not remove ${dir}: ${err.message}`);
    }
  }
  dirs.clear();
}

process.once("exit", cleanupAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}
