import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * One temp root per test run: every data dir a test makes goes under it (tempDir()), and
 * it is removed when the run ends, pass or fail. (A test file's own exit hooks do not run
 * when vitest ends its worker process.)
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), "stream-db-tests-"));
  process.env.STREAM_DB_TEST_ROOT = root;
  return () => rmSync(root, { recursive: true, force: true });
}
